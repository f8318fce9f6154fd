//! One open journal: the [`Journal`] type and the work it does on its
//! store, its commit record and its snapshots. Undo and rollback, which
//! read and write through it, are in `restore`; the table of open journals
//! is in the module above.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::guard;
use super::paths::{self, Root};
use super::record::{self, Log, Record};
use super::snapshot;
use super::store::{Entry, Header, State, Store, Transaction};
use crate::fault;
use crate::files::{Links, describe, open_regular, read_whole};
use crate::proto::{JournalTransaction, TrackedFile};
use crate::result::{Failure, KrepisResult};

/// How many committed transactions a journal keeps by default: committing
/// one more forgets the oldest (and frees its snapshots).
pub(super) const DEFAULT_KEEP: u64 = 100;

/// One open journal.
pub struct Journal {
    pub(super) root: Root,
    /// The sled store; `None` only while it is opened again.
    pub(super) db: Option<Store>,
    /// `.krepis/journal` (sled), to open it again after a full disk.
    pub(super) store_dir: PathBuf,
    pub(super) snapshots: PathBuf,
    /// `.krepis/commits`.
    pub(super) commits: PathBuf,
    /// Its length in whole records, and the highest id and sequence it
    /// names (floors for new ones), kept current by this process.
    pub(super) commits_valid: AtomicU64,
    pub(super) id_floor: AtomicU64,
    pub(super) sequence_floor: AtomicU64,
    /// Bytes of records of transactions since forgotten: compacted away
    /// when they outweigh the live ones.
    pub(super) dead_bytes: AtomicU64,
    pub(super) live_bytes: AtomicU64,
}

pub(super) fn now_ms() -> u64 {
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
    pub(super) fn reopen_store(&mut self) -> Result<(), Failure> {
        let shown = paths::plain(&self.store_dir);
        // sled's lock is released only when the old database is dropped.
        self.db = None;
        self.db = Some(Store::open(&self.store_dir, &shown)?);
        Ok(())
    }

    /// The store (always open outside a failed reopen, which `with` retries).
    pub(super) fn store(&self) -> &Store {
        self.db.as_ref().expect("the store is open")
    }

    /// Checks the store against the commit record: every transaction the
    /// record says is committed must be in the store, committed, with as
    /// many entries; what the store committed after the record's last
    /// append (a process killed between the two) is appended; what the
    /// record forgot and the store still holds (killed between the two) is
    /// forgotten in the store too.
    pub(super) fn reconcile(&self, log: &Log, shown: &str) -> Result<(), Failure> {
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
    pub(super) fn id_floor_from(&self, log: &Log) -> Result<u64, Failure> {
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
    pub(super) fn append(&self, records: &[Record]) -> Result<(), Failure> {
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
    pub(super) fn forget_ids(&self, ids: &[u64], plan_too: bool, committed: bool) -> Result<(), Failure> {
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

    pub(super) fn compact_if_worth_it(&self) -> Result<(), Failure> {
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

    pub(super) fn new_id(&self) -> Result<u64, Failure> {
        let id = self.store().next_id(self.id_floor.load(Ordering::Relaxed))?;
        self.id_floor.store(id + 1, Ordering::Relaxed);
        Ok(id)
    }

    pub(super) fn open_header(&self, id: u64, action: &str) -> Result<Header, Failure> {
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

    /// Begins a transaction on a settled journal (`Journal::begin`, in
    /// `restore`, settles it first).
    pub(super) fn begin_settled(&self, message: &str) -> Result<u64, Failure> {
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
    pub(super) fn track_one(
        &self,
        header: &mut Header,
        path: &str,
        written: &mut Vec<PathBuf>,
    ) -> Result<TrackedFile, Failure> {
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
    pub(super) fn commit_with(
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
            return Err(snapshot::damaged(&entry.path));
        }
        Ok(bytes)
    }

    pub(super) fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
    }

    /// The snapshot of entry `index` of transaction `id`: a name the journal
    /// derives (never one read from the store), in a folder checked to be a
    /// real folder; the file itself is opened without following links.
    pub(super) fn blob(&self, id: u64, index: u64) -> Result<PathBuf, Failure> {
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
