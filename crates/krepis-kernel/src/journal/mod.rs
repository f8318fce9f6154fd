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
//! One way down: this module keeps the table of open journals and opens,
//! closes and lists them; [`restore`] undoes and rolls back through an
//! open journal, [`opened`] (the `Journal` type and its work); neither
//! imports the module above it.
//!
//! A journal is held by one process at a time (sled's file lock): a second
//! process gets `KREPIS_RESULT_BUSY`. Reading the history ([`list`]) takes
//! no lock.

mod guard;
mod opened;
mod paths;
mod record;
pub(crate) mod restore;
mod snapshot;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::files::describe;
use crate::proto::JournalRecovery;
use crate::result::{Failure, KrepisResult};
use opened::now_ms;
pub use opened::{Journal, public};
use paths::Root;
use record::Log;
use store::{Store, Transaction};

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

#[cfg(test)]
mod tests;
