//! The transactional file journal of a project, in `<root>/.krepis/`.
//!
//! A transaction snapshots each file (bytes, permissions, owner) before the
//! caller changes it, or records that it did not exist; its commit records
//! what it left. `undo` writes the snapshots back and removes the files the
//! transactions created, and refuses when a file changed since. The records
//! live in sled ([`store`]) and, for what was committed, also in an
//! independent commit record ([`record`]) checked at every open; snapshot
//! bytes are files streamed in bounded chunks ([`snapshot`]); undo and
//! rollback are two-phase and resumable after a crash ([`restore`]); paths
//! never leave the root ([`paths`]); nothing under `.krepis/` is trusted
//! ([`guard`]).
//!
//! A journal is held by one process at a time (sled's file lock): a second
//! process gets `KREPIS_RESULT_BUSY`. Reading the history ([`list`]) takes
//! no lock.

mod guard;
mod paths;
mod record;
pub(crate) mod restore;
mod snapshot;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fault;
use crate::files::{Links, describe, open_regular, read_whole};
use crate::proto::{JournalRecovery, JournalTransaction, TrackedFile};
use crate::result::{Failure, KrepisResult};
use paths::Root;
use prost::Message;
use record::{Log, Record};
use store::{Entry, Header, State, Store, Transaction};

/// How many committed transactions a journal keeps by default: committing
/// one more forgets the oldest (and frees its snapshots).
pub(crate) const DEFAULT_KEEP: u64 = 100;

/// One open journal.
pub struct Journal {
    root: Root,
    /// The sled store; `None` only while it is opened again.
    db: Option<Store>,
    /// `.krepis/journal` (sled), to open it again after a full disk.
    store_dir: PathBuf,
    snapshots: PathBuf,
    /// `.krepis/commits`.
    commits: PathBuf,
    /// Its length in whole records, and the highest id and sequence it
    /// names (floors for new ones), kept current by this process.
    commits_valid: AtomicU64,
    id_floor: AtomicU64,
    sequence_floor: AtomicU64,
    /// Bytes of records of transactions since forgotten: compacted away
    /// when they outweigh the live ones.
    dead_bytes: AtomicU64,
    live_bytes: AtomicU64,
}

/// An open journal, locked while one call works on it, and its root (to
/// find it without waiting for that lock).
type Shared = (PathBuf, Arc<Mutex<Journal>>);

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
// Held only to find, add or remove a journal, never during file work: a
// long undo in one journal does not stop another.
static OPEN: Mutex<Option<HashMap<u64, Shared>>> = Mutex::new(None);

fn open_journals() -> MutexGuard<'static, Option<HashMap<u64, Shared>>> {
    // Each operation leaves the map consistent (one insert or remove), so a
    // panic while it was held does not make it unusable.
    OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock(journal: &Mutex<Journal>) -> MutexGuard<'_, Journal> {
    // Journal calls flush every change before acting on it and settle an
    // unfinished plan before new work, so one interrupted by a panic leaves
    // nothing a later call could misread.
    journal.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown_journal(handle: u64) -> Failure {
    Failure::new(
        KrepisResult::UnknownHandle,
        format!("Cannot use journal {handle}: it is not open (never opened, or closed)"),
    )
}

/// Runs `body` on the open journal `handle`. A store that an I/O error
/// stopped (sled refuses everything after one, e.g. a full disk) is opened
/// again first, so the journal works again once the disk has room.
pub fn with<T>(handle: u64, body: impl FnOnce(&Journal) -> Result<T, Failure>) -> Result<T, Failure> {
    let journal = open_journals()
        .as_ref()
        .and_then(|map| map.get(&handle).map(|(_, journal)| Arc::clone(journal)))
        .ok_or_else(|| unknown_journal(handle))?;
    let mut guard = lock(&journal);
    if guard.db.as_ref().is_none_or(Store::broken) {
        guard.reopen_store()?;
    }
    body(&guard)
}

/// The history of the project at `root`, read from its commit record
/// alone: no lock is taken and nothing is created, so it works while
/// another process holds the journal.
pub fn list(root: &str) -> Result<Vec<Transaction>, Failure> {
    let root = Root::new(root)?;
    let dir = root.journal_dir();
    let shown = paths::plain(&dir);
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => guard::existing_dir(&dir, &shown)?,
        Err(_) => {
            return Err(
                Failure::failed(format!("Cannot read the journal in {shown}: there is none"))
                    .with_hint("tools record changes with kernel.journal; until one has, there is nothing to list"),
            );
        }
    }
    // Refused like open() refuses it, though only the record is read.
    guard::check_tree(&dir, &shown)?;
    let commits = dir.join("commits");
    if std::fs::symlink_metadata(&commits).is_err() {
        if std::fs::symlink_metadata(dir.join("journal")).is_ok() {
            return Err(store::old_format(&shown));
        }
        return Ok(Vec::new());
    }
    // A torn last record is a writer appending now; a checksum that fails
    // on a whole record is damage, refused.
    let log = record::read(&commits, &shown, true)?;
    let mut all: Vec<Transaction> = log.live.into_values().collect();
    all.sort_by_key(|t| std::cmp::Reverse(t.head().sequence));
    Ok(all)
}

/// Opens the journal of the project at `root`, recovering what a killed
/// process left unfinished; returns its handle, the resolved root and what
/// was recovered (or is still pending). With `repair`, a store that lost
/// committed transactions is rebuilt from the commit record first.
pub fn open(root: &str, repair: bool) -> Result<(u64, String, Vec<JournalRecovery>), Failure> {
    let root = Root::new(root)?;
    // Held through open and recovery, so that two opens of one root in this
    // process cannot both pass the check below.
    let mut guard_map = open_journals();
    let map = guard_map.get_or_insert_with(HashMap::new);
    if map.values().any(|(open_root, _)| open_root == root.path()) {
        return Err(Failure::new(
            KrepisResult::Busy,
            format!(
                "Cannot open the journal in {}: this process has it open already",
                root.display()
            ),
        )
        .with_hint("use the Journal you opened, or close it first"));
    }
    let dir = root.journal_dir();
    let shown = paths::plain(&dir);
    let created = guard::real_dir(&dir, &shown, &shown)?;
    if created {
        write_gitignore(&dir)?;
    }
    // Nothing under .krepis/ is a link: sled and the snapshots are opened
    // only once that holds.
    guard::check_tree(&dir, &shown)?;
    let store_dir = dir.join("journal");
    let snapshots = dir.join("snapshots");
    let commits = dir.join("commits");
    let had_commits = std::fs::symlink_metadata(&commits).is_ok();
    // Before sled starts its worker threads, which run kernel code.
    crate::pin::keep_loaded();
    guard::real_dir(&store_dir, &shown, &paths::plain(&store_dir))?;
    let mut store = Store::open(&store_dir, &shown)?;
    guard::real_dir(&snapshots, &shown, &paths::plain(&snapshots))?;
    let mut recovered = Vec::new();
    let log = if !had_commits {
        if !store.is_new()? {
            if store.format()? == 0 {
                return Err(store::old_format(&shown));
            }
            if !repair {
                return Err(record::damaged(&shown, "is missing"));
            }
        }
        store.mark_format()?;
        record::write_new(&commits, &[])?;
        record::read(&commits, &shown, true)?
    } else {
        let mut log = record::read(&commits, &shown, !repair)?;
        if repair {
            // What the store still holds that the record lacks (a record
            // damaged part way) is kept too.
            if let Ok(headers) = store.headers() {
                for header in headers.iter().filter(|h| h.committed) {
                    if !log.live.contains_key(&header.id)
                        && !log.forgotten.contains(&header.id)
                        && let Ok(Some(transaction)) = store.transaction(header.id)
                    {
                        log.max_id = log.max_id.max(header.id);
                        log.max_sequence = log.max_sequence.max(header.sequence);
                        log.live.insert(header.id, transaction);
                    }
                }
            }
            drop(store);
            store = rebuild(&store_dir, &commits, &log, &shown)?;
            recovered.push(JournalRecovery {
                transaction: 0,
                action: format!(
                    "repaired: the store was rebuilt from the commit record ({} committed transactions kept, with their snapshots)",
                    log.live.len()
                ),
                paths: Vec::new(),
            });
            record::read(&commits, &shown, true)?
        } else if store.is_new()? {
            // An empty store beside a record of commits: it lost them all.
            if !log.live.is_empty() {
                return Err(Failure::failed(format!("Cannot open the journal in {shown}: its store is empty but its commit record holds {} committed transactions; nothing was changed", log.live.len())).with_hint("`krepis undo --repair` rebuilds the store from the commit record, keeping every snapshot"));
            }
            store.mark_format()?;
            log
        } else {
            if store.format()? != store::FORMAT {
                return Err(store::old_format(&shown));
            }
            log
        }
    };
    let journal = Journal {
        root,
        db: Some(store),
        store_dir,
        snapshots,
        commits,
        commits_valid: AtomicU64::new(log.valid),
        id_floor: AtomicU64::new(0),
        sequence_floor: AtomicU64::new(log.max_sequence + 1),
        dead_bytes: AtomicU64::new(log.valid.saturating_sub(log.live_bytes)),
        live_bytes: AtomicU64::new(log.live_bytes),
    };
    journal.reconcile(&log, &shown)?;
    let floor = journal.id_floor_from(&log)?;
    journal.id_floor.store(floor, Ordering::Relaxed);
    // A recovery that fails does not wedge the journal: it opens, says what
    // is pending, and the next call that needs it tries again.
    match restore::recover(&journal, &log) {
        Ok(done) => recovered.extend(done),
        Err(failure) => recovered.push(JournalRecovery {
            transaction: 0,
            action: format!("pending: {failure}"),
            paths: Vec::new(),
        }),
    }
    journal.store().flush()?;
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    let shown_root = journal.root.display();
    let key = journal.root.path().to_path_buf();
    map.insert(handle, (key, Arc::new(Mutex::new(journal))));
    Ok((handle, shown_root, recovered))
}

/// Builds a new store from the commit record: the damaged one is kept
/// beside it as `journal.damaged-<ms>`, the snapshots are left as they are.
fn rebuild(store_dir: &Path, commits: &Path, log: &Log, shown: &str) -> Result<Store, Failure> {
    let aside = store_dir.with_file_name(format!("journal.damaged-{}", now_ms()));
    std::fs::rename(store_dir, &aside).map_err(|err| {
        Failure::failed(format!(
            "Cannot repair the journal in {shown}: its store cannot be moved aside ({})",
            describe(&err)
        ))
    })?;
    std::fs::create_dir(store_dir)
        .map_err(|err| Failure::failed(format!("Cannot repair the journal in {shown}: {}", describe(&err))))?;
    let store = Store::open(store_dir, shown)?;
    store.mark_format()?;
    let mut next_id = log.max_id + 1;
    let mut next_sequence = log.max_sequence + 1;
    for transaction in log.live.values() {
        store.put_transaction(transaction)?;
        next_id = next_id.max(transaction.id() + 1);
        next_sequence = next_sequence.max(transaction.head().sequence + 1);
    }
    store.next_id(next_id)?;
    store.next_sequence(next_sequence)?;
    store.flush()?;
    // The record is written again whole: a damaged tail is dropped.
    let records = log.records();
    record::write_new(commits, &records)?;
    Ok(store)
}

/// Closes the journal `handle`, rolling back the transactions still open.
/// The journal is closed (and its lock released) even when a rollback
/// fails: the next open rolls back what remains.
pub fn close(handle: u64) -> Result<Vec<u64>, Failure> {
    let (_, shared) = open_journals()
        .as_mut()
        .and_then(|map| map.remove(&handle))
        .ok_or_else(|| unknown_journal(handle))?;
    let journal = lock(&shared);
    let open: Vec<u64> = journal
        .store()
        .headers()?
        .iter()
        .filter(|t| !t.committed)
        .map(|t| t.id)
        .collect();
    for id in &open {
        restore::rollback(&journal, *id)?;
    }
    Ok(open)
}

/// A `.gitignore` that keeps `.krepis/` out of git.
fn write_gitignore(dir: &Path) -> Result<(), Failure> {
    let ignore = dir.join(".gitignore");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&ignore) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(b"# Krepis's undo journal: local to this checkout.\n*\n")
                .map_err(|err| Failure::failed(format!("Cannot write {}: {}", paths::plain(&ignore), describe(&err))))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(Failure::failed(format!(
            "Cannot write {}: {}",
            paths::plain(&ignore),
            describe(&err)
        ))),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// What `absolute` is now: absent, a regular file (size, hash, mode), or
/// something else.
pub fn state_of(absolute: &Path) -> std::io::Result<State> {
    match std::fs::symlink_metadata(absolute) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(err) => Err(err),
        Ok(metadata) if !metadata.is_file() => Ok(State {
            exists: true,
            other: true,
            ..State::default()
        }),
        Ok(_) => {
            let (mut file, metadata) = open_regular(absolute, Links::Refuse)?;
            let hashed = snapshot::hash(&mut file)?;
            Ok(State {
                exists: true,
                size: hashed.size,
                sha256: hashed.sha256,
                mode: snapshot::mode_of(&metadata.permissions()),
                other: false,
            })
        }
    }
}

impl Journal {
    fn reopen_store(&mut self) -> Result<(), Failure> {
        let shown = paths::plain(&self.store_dir);
        // sled's lock is released only when the old database is dropped.
        self.db = None;
        self.db = Some(Store::open(&self.store_dir, &shown)?);
        Ok(())
    }

    /// The store (always open outside a failed reopen, which `with` retries).
    fn store(&self) -> &Store {
        self.db.as_ref().expect("the store is open")
    }

    /// Checks the store against the commit record: every transaction the
    /// record says is committed must be in the store, committed, with as
    /// many entries; what the store committed after the record's last
    /// append (a process killed between the two) is appended; what the
    /// record forgot and the store still holds (killed between the two) is
    /// forgotten in the store too.
    fn reconcile(&self, log: &Log, shown: &str) -> Result<(), Failure> {
        let headers = self.store().headers()?;
        let stored: HashMap<u64, &Header> = headers.iter().map(|h| (h.id, h)).collect();
        for (id, transaction) in &log.live {
            let lost = match stored.get(id) {
                None => true,
                Some(header) => !header.committed || header.count != transaction.entries.len() as u64,
            };
            if lost {
                return Err(Failure::failed(format!("Cannot open the journal in {shown}: its store holds less than its commit record (committed transaction {id} is missing or incomplete); nothing was changed")).with_hint("`krepis undo --repair` rebuilds the store from the commit record, keeping every snapshot"));
            }
        }
        let forgotten: Vec<u64> = headers
            .iter()
            .map(|h| h.id)
            .filter(|id| log.forgotten.contains(id))
            .collect();
        if !forgotten.is_empty() {
            let plan_too = self
                .store()
                .plan()?
                .is_some_and(|plan| plan.transactions.iter().all(|id| forgotten.contains(id)));
            self.store().remove(&forgotten, plan_too)?;
        }
        let mut missing = Vec::new();
        for header in &headers {
            if header.committed
                && !log.live.contains_key(&header.id)
                && !log.forgotten.contains(&header.id)
                && let Some(transaction) = self.store().transaction(header.id)?
            {
                missing.push(Record {
                    committed: Some(transaction),
                    forgotten: Vec::new(),
                });
            }
        }
        if !missing.is_empty() {
            self.append(&missing)?;
        }
        Ok(())
    }

    /// The lowest id a new transaction may take: above every id the
    /// record, the store or a snapshot folder names.
    fn id_floor_from(&self, log: &Log) -> Result<u64, Failure> {
        let mut floor = log.max_id;
        for header in self.store().headers()? {
            floor = floor.max(header.id);
        }
        if let Ok(folders) = std::fs::read_dir(&self.snapshots) {
            for folder in folders.flatten() {
                if let Some(id) = folder.file_name().to_str().and_then(|name| name.parse::<u64>().ok()) {
                    floor = floor.max(id);
                }
            }
        }
        Ok(floor + 1)
    }

    /// Appends records to the commit record.
    fn append(&self, records: &[Record]) -> Result<(), Failure> {
        let before = self.commits_valid.load(Ordering::Relaxed);
        let after = record::append(&self.commits, before, records)?;
        self.commits_valid.store(after, Ordering::Relaxed);
        for record in records {
            let size = record.encoded_len() as u64 + 12;
            if record.committed.is_some() {
                self.live_bytes.fetch_add(size, Ordering::Relaxed);
            } else {
                self.dead_bytes.fetch_add(size, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Records in the commit record (when they were `committed`), then in
    /// the store, that `ids` are forgotten; removes their snapshots; compacts the record when most of
    /// it is about forgotten transactions.
    fn forget_ids(&self, ids: &[u64], plan_too: bool, committed: bool) -> Result<(), Failure> {
        if committed {
            self.append(&[Record {
                committed: None,
                forgotten: ids.to_vec(),
            }])?;
        }
        self.store().remove(ids, plan_too)?;
        for id in ids {
            let folder = self.snapshot_dir(*id);
            if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir_all(&folder);
            }
        }
        if committed { self.compact_if_worth_it() } else { Ok(()) }
    }

    fn compact_if_worth_it(&self) -> Result<(), Failure> {
        let dead = self.dead_bytes.load(Ordering::Relaxed);
        let live = self.live_bytes.load(Ordering::Relaxed);
        if dead < 64 * 1024 || dead < live {
            return Ok(());
        }
        let shown = paths::plain(&self.root.journal_dir());
        let log = record::read(&self.commits, &shown, true)?;
        let records = log.records();
        let length = record::write_new(&self.commits, &records)?;
        self.commits_valid.store(length, Ordering::Relaxed);
        self.live_bytes.store(log.live_bytes, Ordering::Relaxed);
        self.dead_bytes.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn new_id(&self) -> Result<u64, Failure> {
        let id = self.store().next_id(self.id_floor.load(Ordering::Relaxed))?;
        self.id_floor.store(id + 1, Ordering::Relaxed);
        Ok(id)
    }

    fn open_header(&self, id: u64, action: &str) -> Result<Header, Failure> {
        let header = self.store().header(id)?.ok_or_else(|| {
            Failure::new(
                KrepisResult::UnknownHandle,
                format!(
                    "Cannot {action}: transaction {id} is not in this journal (rolled back, undone, or never begun)"
                ),
            )
        })?;
        if header.committed {
            return Err(
                Failure::failed(format!("Cannot {action}: transaction {id} is committed already"))
                    .with_hint("begin a new transaction"),
            );
        }
        Ok(header)
    }

    /// Begins a transaction (after settling a restore a failure left).
    pub fn begin(&self, message: &str) -> Result<u64, Failure> {
        restore::settle(self)?;
        let id = self.new_id()?;
        self.store().put_header(&Header {
            id,
            message: message.to_owned(),
            ..Header::default()
        })?;
        Ok(id)
    }

    /// Snapshots `path` into transaction `id` (once: tracking it again
    /// keeps the first snapshot).
    pub fn track(&self, id: u64, path: &str) -> Result<TrackedFile, Failure> {
        let mut tracked = self.track_many(id, &[path.to_owned()])?;
        Ok(tracked.remove(0))
    }

    /// Snapshots each of `paths` into transaction `id`, then syncs every
    /// snapshot and the store to disk at once. A path that fails stops
    /// there: those before it are tracked (and synced), it and those after
    /// it are not.
    pub fn track_many(&self, id: u64, paths: &[String]) -> Result<Vec<TrackedFile>, Failure> {
        let action = match paths {
            [one] => format!("track {one}"),
            _ => format!("track {} files", paths.len()),
        };
        let mut header = self.open_header(id, &action)?;
        let mut answers = Vec::with_capacity(paths.len());
        let mut written = Vec::new();
        let mut outcome = Ok(());
        for path in paths {
            match self.track_one(&mut header, path, &mut written) {
                Ok(answer) => answers.push(answer),
                Err(failure) => {
                    outcome = Err(failure);
                    break;
                }
            }
        }
        if !written.is_empty() {
            let folder = self.snapshot_dir(id);
            let synced = snapshot::sync_files(&written, &[folder]);
            if let Err(err) = synced {
                let failure = Failure::failed(format!(
                    "Cannot {action}: the snapshots could not be synced ({})",
                    describe(&err)
                ));
                // Not known to be on disk: not recorded either.
                return Err(failure);
            }
        }
        fault::point("track:copied");
        if !answers.is_empty() {
            self.store().put_header(&header)?;
        }
        outcome.map(|()| answers)
    }

    /// Tracks one path (no sync): records its entry, unflushed.
    fn track_one(&self, header: &mut Header, path: &str, written: &mut Vec<PathBuf>) -> Result<TrackedFile, Failure> {
        let id = header.id;
        let inside = self.root.resolve(path)?;
        if let Some(index) = self.store().entry_index(id, &inside.relative)?
            && index < header.count
            && let Some(entry) = self.store().entry(id, index)?
        {
            return Ok(tracked(&entry));
        }
        let refuse = |why: &str| Failure::failed(format!("Cannot track {path}: {why}"));
        let mut entry = Entry {
            path: inside.relative.clone(),
            order: self.store().next_order()?,
            ..Entry::default()
        };
        match std::fs::symlink_metadata(&inside.absolute) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(refuse(&describe(&err))),
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(refuse("it is a symbolic link").with_hint("track the file it points to"));
            }
            Ok(metadata) if metadata.is_dir() => {
                return Err(refuse("it is a folder").with_hint("track the files in it one by one"));
            }
            Ok(_) => {
                let (mut file, metadata) =
                    open_regular(&inside.absolute, Links::Refuse).map_err(|err| refuse(&describe(&err)))?;
                let folder = self.snapshot_dir(id);
                if written.is_empty() {
                    let shown = paths::plain(&self.root.journal_dir());
                    guard::real_dir(&folder, &shown, &paths::plain(&folder))?;
                }
                let blob = folder.join(header.count.to_string());
                // A leftover of a killed track under the name this entry
                // takes: the journal's own (its name is derived), replaced.
                if std::fs::symlink_metadata(&blob).is_ok_and(|m| m.is_file()) {
                    let _ = std::fs::remove_file(&blob);
                }
                let copied = snapshot::copy_new_with(&mut file, &blob, None, false)
                    .map_err(|err| refuse(&format!("its snapshot could not be written ({})", describe(&err))))?;
                written.push(blob);
                entry.existed = true;
                entry.size = copied.size;
                entry.sha256 = copied.sha256;
                entry.mode = snapshot::mode_of(&metadata.permissions());
                entry.readonly = metadata.permissions().readonly();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    entry.owned = true;
                    entry.uid = metadata.uid();
                    entry.gid = metadata.gid();
                }
            }
        }
        let answer = tracked(&entry);
        self.store().add_entry_unflushed(header, &entry)?;
        Ok(answer)
    }

    /// Commits transaction `id`: records what it left of each file, then
    /// forgets the oldest transactions beyond [`DEFAULT_KEEP`].
    pub fn commit(&self, id: u64) -> Result<JournalTransaction, Failure> {
        self.open_header(id, "commit")?;
        let transaction = self
            .store()
            .transaction(id)?
            .ok_or_else(|| Failure::failed(format!("Cannot commit: transaction {id} is not in this journal")))?;
        let mut after = Vec::with_capacity(transaction.entries.len());
        for entry in &transaction.entries {
            let target = self.root.resolve_stored(&entry.path)?;
            let state = state_of(&target.absolute).map_err(|err| {
                Failure::failed(format!(
                    "Cannot commit: {} cannot be read ({})",
                    entry.path,
                    describe(&err)
                ))
            })?;
            after.push(state);
        }
        self.commit_with(transaction, after, true)
    }

    /// Commits `transaction` with the given states left (one per entry).
    fn commit_with(
        &self,
        mut transaction: Transaction,
        after: Vec<State>,
        retain: bool,
    ) -> Result<JournalTransaction, Failure> {
        let id = transaction.id();
        for (index, (entry, state)) in transaction.entries.iter_mut().zip(after).enumerate() {
            entry.after = Some(state);
            self.store().set_entry(id, index as u64, entry)?;
        }
        let mut header = transaction.head().clone();
        header.committed = true;
        header.time_ms = now_ms();
        header.sequence = self
            .store()
            .next_sequence(self.sequence_floor.load(Ordering::Relaxed))?;
        self.sequence_floor.store(header.sequence + 1, Ordering::Relaxed);
        self.store().put_header(&header)?;
        transaction.header = Some(header);
        fault::point("commit:stored");
        self.append(&[Record {
            committed: Some(transaction.clone()),
            forgotten: Vec::new(),
        }])
        .map_err(|failure| {
            failure.with_last_line(&format!(
                "Transaction {id} is committed in the store; the next open records it"
            ))
        })?;
        if retain {
            self.forget(DEFAULT_KEEP)?;
        }
        Ok(public(&transaction))
    }

    /// Forgets the oldest committed transactions, keeping the newest
    /// `keep`, and frees their snapshots. Returns the ids forgotten, oldest
    /// first.
    pub fn forget(&self, keep: u64) -> Result<Vec<u64>, Failure> {
        let mut committed: Vec<Header> = self.store().headers()?.into_iter().filter(|h| h.committed).collect();
        committed.sort_by_key(|h| std::cmp::Reverse(h.sequence));
        let mut old: Vec<u64> = committed
            .iter()
            .skip(usize::try_from(keep).unwrap_or(usize::MAX))
            .map(|h| h.id)
            .collect();
        old.reverse();
        if !old.is_empty() {
            self.forget_ids(&old, false, true)?;
        }
        Ok(old)
    }

    /// Committed transactions, newest (last committed) first.
    pub fn history(&self) -> Result<Vec<Transaction>, Failure> {
        let mut committed: Vec<Header> = self.store().headers()?.into_iter().filter(|h| h.committed).collect();
        committed.sort_by_key(|h| std::cmp::Reverse(h.sequence));
        committed
            .iter()
            .map(|h| {
                self.store()
                    .transaction(h.id)?
                    .ok_or_else(|| Failure::failed(format!("Cannot read transaction {}: it is gone", h.id)))
            })
            .collect()
    }

    /// The bytes `path` had before transaction `id`, checked against their
    /// recorded hash.
    pub fn snapshot(&self, id: u64, path: &str) -> Result<Vec<u8>, Failure> {
        let transaction = self.store().transaction(id)?.ok_or_else(|| {
            Failure::new(
                KrepisResult::UnknownHandle,
                format!("Cannot read the snapshot of {path}: transaction {id} is not in this journal"),
            )
        })?;
        let inside = self.root.resolve(path)?;
        let (index, entry) = transaction
            .entries
            .iter()
            .enumerate()
            .find(|(_, entry)| entry.path == inside.relative)
            .ok_or_else(|| {
                Failure::failed(format!(
                    "Cannot read the snapshot of {path}: transaction {id} did not track it"
                ))
            })?;
        if !entry.existed {
            return Err(Failure::failed(format!(
                "Cannot read the snapshot of {path}: it did not exist before transaction {id}"
            )));
        }
        let bytes = read_whole(&self.blob(id, index as u64)?, Links::Refuse, "the snapshot")?;
        use sha2::Digest;
        if sha2::Sha256::digest(&bytes).as_slice() != entry.sha256.as_slice() {
            return Err(restore::damaged(&entry.path));
        }
        Ok(bytes)
    }

    fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
    }

    /// The snapshot of entry `index` of transaction `id`: a name the journal
    /// derives (never one read from the store), in a folder checked to be a
    /// real folder; the file itself is opened without following links.
    fn blob(&self, id: u64, index: u64) -> Result<PathBuf, Failure> {
        let folder = self.snapshot_dir(id);
        let shown = paths::plain(&self.root.journal_dir());
        guard::existing_dir(&folder, &shown)?;
        Ok(folder.join(index.to_string()))
    }
}

fn tracked(entry: &Entry) -> TrackedFile {
    TrackedFile {
        path: entry.path.clone(),
        existed: entry.existed,
        size: entry.size,
    }
}

/// A transaction as the control plane reports it.
pub fn public(transaction: &Transaction) -> JournalTransaction {
    let header = transaction.head();
    JournalTransaction {
        id: header.id,
        message: header.message.clone(),
        time_ms: header.time_ms,
        files: transaction.entries.iter().map(tracked).collect(),
        snapshot_bytes: transaction.entries.iter().filter(|e| e.existed).map(|e| e.size).sum(),
    }
}

#[cfg(test)]
mod tests;
