//! The transactional file journal of a project, in `<root>/.krepis/`.
//!
//! A transaction snapshots each file (bytes and permissions) before the
//! caller changes it, or records that it did not exist; `undo` writes the
//! snapshots back and removes the files the transactions created. The
//! records live in sled ([`store`]); snapshot bytes are files streamed in
//! bounded chunks ([`snapshot`]); undo and rollback are two-phase and
//! resumable after a crash ([`restore`]); paths never leave the root
//! ([`paths`]).
//!
//! A journal is held by one process at a time (sled's file lock): a second
//! process gets `KREPIS_RESULT_BUSY`.

pub mod paths;
pub mod restore;
pub mod snapshot;
pub mod store;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::control::Failure;
use crate::fault;
use crate::files::{Links, describe, failed, open_regular, read_whole};
use crate::proto::{JournalRecovery, JournalTransaction, TrackedFile};
use crate::result::KrepisResult;
use paths::Root;
use store::{Entry, Store, Transaction};

/// One open journal.
pub struct Journal {
    root: Root,
    store: Store,
    snapshots: PathBuf,
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
    (
        KrepisResult::UnknownHandle,
        format!("Cannot use journal {handle}: it is not open (never opened, or closed)"),
    )
}

/// Runs `body` on the open journal `handle`.
pub fn with<T>(handle: u64, body: impl FnOnce(&Journal) -> Result<T, Failure>) -> Result<T, Failure> {
    let journal = open_journals()
        .as_ref()
        .and_then(|map| map.get(&handle).map(|(_, journal)| Arc::clone(journal)))
        .ok_or_else(|| unknown_journal(handle))?;
    let guard = lock(&journal);
    body(&guard)
}

/// Opens the journal of the project at `root`, recovering what a killed
/// process left unfinished; returns its handle, the resolved root and what
/// was recovered.
pub fn open(root: &str) -> Result<(u64, String, Vec<JournalRecovery>), Failure> {
    let root = Root::new(root)?;
    // Held through open and recovery, so that two opens of one root in this
    // process cannot both pass the check below.
    let mut guard = open_journals();
    let map = guard.get_or_insert_with(HashMap::new);
    if map.values().any(|(open_root, _)| open_root == root.path()) {
        return Err((
            KrepisResult::Busy,
            format!(
                "Cannot open the journal in {}: this process has it open already\nHint: use the Journal you opened, or close it first",
                root.display()
            ),
        ));
    }
    let dir = root.journal_dir();
    let shown = paths::plain(&dir);
    create_journal_dir(&dir, &shown)?;
    // Before sled starts its worker threads, which run kernel code.
    crate::pin::keep_loaded();
    let store = Store::open(&dir.join("journal"), &shown)?;
    let snapshots = dir.join("snapshots");
    std::fs::create_dir_all(&snapshots).map_err(|err| {
        failed(format!(
            "Cannot create {}: {}",
            paths::plain(&snapshots),
            describe(&err)
        ))
    })?;
    let journal = Journal { root, store, snapshots };
    let recovered = restore::recover(&journal)?;
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    let shown_root = journal.root.display();
    map.insert(
        handle,
        (journal.root.path().to_path_buf(), Arc::new(Mutex::new(journal))),
    );
    Ok((handle, shown_root, recovered))
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
        .store
        .transactions()?
        .iter()
        .filter(|t| !t.committed)
        .map(|t| t.id)
        .collect();
    for id in &open {
        restore::rollback(&journal, *id)?;
    }
    Ok(open)
}

/// Makes `.krepis/` (a real folder, not a link) with a `.gitignore` that
/// keeps it out of git.
fn create_journal_dir(dir: &std::path::Path, shown: &str) -> Result<(), Failure> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => {
            return Err(failed(format!(
                "Cannot open the journal in {shown}: it is not a folder (a link or a file stands there)\nHint: move it away; Krepis keeps its journal in a real .krepis folder"
            )));
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(dir).map_err(|err| failed(format!("Cannot create {shown}: {}", describe(&err))))?;
        }
        Err(err) => {
            return Err(failed(format!(
                "Cannot open the journal in {shown}: {}",
                describe(&err)
            )));
        }
    }
    let ignore = dir.join(".gitignore");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&ignore) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(b"# Krepis's undo journal: local to this checkout.\n*\n")
                .map_err(|err| failed(format!("Cannot write {}: {}", paths::plain(&ignore), describe(&err))))
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(failed(format!(
            "Cannot write {}: {}",
            paths::plain(&ignore),
            describe(&err)
        ))),
    }
}

impl Journal {
    fn open_transaction(&self, id: u64, action: &str) -> Result<Transaction, Failure> {
        let transaction = self.store.transaction(id)?.ok_or_else(|| {
            (
                KrepisResult::UnknownHandle,
                format!(
                    "Cannot {action}: transaction {id} is not in this journal (rolled back, undone, or never begun)"
                ),
            )
        })?;
        if transaction.committed {
            return Err(failed(format!(
                "Cannot {action}: transaction {id} is committed already\nHint: begin a new transaction"
            )));
        }
        Ok(transaction)
    }

    /// Begins a transaction (after settling a restore a failure left).
    pub fn begin(&self, message: &str) -> Result<u64, Failure> {
        restore::settle(self)?;
        let id = self.store.new_id()?;
        self.store.put_transaction(&Transaction {
            id,
            message: message.to_owned(),
            ..Transaction::default()
        })?;
        Ok(id)
    }

    /// Snapshots `path` into transaction `id` (once: tracking it again
    /// keeps the first snapshot).
    pub fn track(&self, id: u64, path: &str) -> Result<TrackedFile, Failure> {
        let mut transaction = self.open_transaction(id, &format!("track {path}"))?;
        let inside = self.root.resolve(path)?;
        if let Some(entry) = transaction.entries.iter().find(|entry| entry.path == inside.relative) {
            return Ok(tracked(entry));
        }
        let refuse = |why: &str| failed(format!("Cannot track {path}: {why}"));
        let mut entry = Entry {
            path: inside.relative.clone(),
            ..Entry::default()
        };
        match std::fs::symlink_metadata(&inside.absolute) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(refuse(&describe(&err))),
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(refuse("it is a symbolic link\nHint: track the file it points to"));
            }
            Ok(metadata) if metadata.is_dir() => {
                return Err(refuse("it is a folder\nHint: track the files in it one by one"));
            }
            Ok(_) => {
                let (mut file, metadata) =
                    open_regular(&inside.absolute, Links::Refuse).map_err(|err| refuse(&describe(&err)))?;
                let folder = self.snapshot_dir(id);
                std::fs::create_dir_all(&folder).map_err(|err| refuse(&describe(&err)))?;
                let blob = transaction.entries.len().to_string();
                let partial = folder.join(format!("{blob}.partial"));
                let copied = snapshot::copy_new(&mut file, &partial, None)
                    .map_err(|err| refuse(&format!("its snapshot could not be written ({})", describe(&err))))?;
                std::fs::rename(&partial, folder.join(&blob)).map_err(|err| refuse(&describe(&err)))?;
                snapshot::sync_dir(&folder).map_err(|err| refuse(&describe(&err)))?;
                entry.existed = true;
                entry.size = copied.size;
                entry.sha256 = copied.sha256;
                entry.mode = snapshot::mode_of(&metadata.permissions());
                entry.readonly = metadata.permissions().readonly();
                entry.blob = blob;
                fault::point("track:copied");
            }
        }
        let answer = tracked(&entry);
        transaction.entries.push(entry);
        self.store.put_transaction(&transaction)?;
        Ok(answer)
    }

    /// Commits transaction `id`.
    pub fn commit(&self, id: u64) -> Result<JournalTransaction, Failure> {
        let mut transaction = self.open_transaction(id, "commit")?;
        transaction.committed = true;
        transaction.time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        transaction.sequence = self.store.new_id()?;
        self.store.put_transaction(&transaction)?;
        Ok(public(&transaction))
    }

    /// Committed transactions, newest (last committed) first.
    pub fn history(&self) -> Result<Vec<Transaction>, Failure> {
        let mut committed: Vec<Transaction> = self.store.transactions()?.into_iter().filter(|t| t.committed).collect();
        committed.sort_by_key(|t| std::cmp::Reverse(t.sequence));
        Ok(committed)
    }

    /// The bytes `path` had before transaction `id`, checked against their
    /// recorded hash.
    pub fn snapshot(&self, id: u64, path: &str) -> Result<Vec<u8>, Failure> {
        let transaction = self.store.transaction(id)?.ok_or_else(|| {
            (
                KrepisResult::UnknownHandle,
                format!("Cannot read the snapshot of {path}: transaction {id} is not in this journal"),
            )
        })?;
        let inside = self.root.resolve(path)?;
        let entry = transaction
            .entries
            .iter()
            .find(|entry| entry.path == inside.relative)
            .ok_or_else(|| {
                failed(format!(
                    "Cannot read the snapshot of {path}: transaction {id} did not track it"
                ))
            })?;
        if !entry.existed {
            return Err(failed(format!(
                "Cannot read the snapshot of {path}: it did not exist before transaction {id}"
            )));
        }
        let bytes = read_whole(&self.snapshot_dir(id).join(&entry.blob), Links::Refuse, "the snapshot")?;
        use sha2::Digest;
        if sha2::Sha256::digest(&bytes).as_slice() != entry.sha256.as_slice() {
            return Err(restore::damaged(&entry.path));
        }
        Ok(bytes)
    }

    fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
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
    JournalTransaction {
        id: transaction.id,
        message: transaction.message.clone(),
        time_ms: transaction.time_ms,
        files: transaction.entries.iter().map(tracked).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Project(PathBuf);

    impl Project {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("krepis-journal-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
        fn root(&self) -> &str {
            self.0.to_str().unwrap()
        }
        fn write(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.0.join(name), bytes).unwrap();
        }
        fn read(&self, name: &str) -> Option<Vec<u8>> {
            std::fs::read(self.0.join(name)).ok()
        }
    }

    impl Drop for Project {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn edit(handle: u64, message: &str, changes: &[(&str, Option<&[u8]>)], project: &Project) -> u64 {
        let id = with(handle, |j| j.begin(message)).unwrap();
        for (name, bytes) in changes {
            with(handle, |j| j.track(id, name)).unwrap();
            match bytes {
                Some(bytes) => project.write(name, bytes),
                None => std::fs::remove_file(project.0.join(name)).unwrap(),
            }
        }
        with(handle, |j| j.commit(id)).unwrap();
        id
    }

    #[test]
    fn undo_restores_bytes_and_removes_created_files() {
        let project = Project::new("undo");
        project.write("a.txt", b"one");
        let (handle, _, recovered) = open(project.root()).unwrap();
        assert!(recovered.is_empty());
        edit(
            handle,
            "first",
            &[("a.txt", Some(b"two")), ("new.txt", Some(b"made"))],
            &project,
        );
        edit(handle, "second", &[("a.txt", Some(b"three"))], &project);
        let history = with(handle, |j| j.history()).unwrap();
        assert_eq!(
            history.iter().map(|t| t.message.as_str()).collect::<Vec<_>>(),
            ["second", "first"]
        );
        let undone = with(handle, |j| restore::undo(j, 2)).unwrap();
        assert_eq!(undone.restored, ["a.txt"]);
        assert_eq!(undone.removed, ["new.txt"]);
        assert_eq!(project.read("a.txt").unwrap(), b"one", "the oldest snapshot wins");
        assert_eq!(project.read("new.txt"), None);
        assert!(with(handle, |j| j.history()).unwrap().is_empty());
        let err = with(handle, |j| restore::undo(j, 1)).unwrap_err();
        assert!(err.1.contains("no committed transaction"), "{}", err.1);
        close(handle).unwrap();
    }

    #[test]
    fn a_second_open_is_busy_and_close_rolls_back() {
        let project = Project::new("busy");
        project.write("a.txt", b"before");
        let (handle, _, _) = open(project.root()).unwrap();
        assert_eq!(open(project.root()).unwrap_err().0, KrepisResult::Busy);
        let id = with(handle, |j| j.begin("left open")).unwrap();
        with(handle, |j| j.track(id, "a.txt")).unwrap();
        project.write("a.txt", b"after");
        assert_eq!(close(handle).unwrap(), [id]);
        assert_eq!(project.read("a.txt").unwrap(), b"before");
        assert_eq!(close(handle).unwrap_err().0, KrepisResult::UnknownHandle);
    }

    #[test]
    fn an_uncommitted_transaction_is_rolled_back_at_the_next_open() {
        let project = Project::new("recover");
        project.write("a.txt", b"before");
        let (handle, _, _) = open(project.root()).unwrap();
        let id = with(handle, |j| j.begin("crashed")).unwrap();
        with(handle, |j| j.track(id, "a.txt")).unwrap();
        with(handle, |j| j.track(id, "b.txt")).unwrap();
        project.write("a.txt", b"half");
        project.write("b.txt", b"new");
        // As if the process died: the journal is dropped without close().
        let (_, journal) = open_journals().as_mut().unwrap().remove(&handle).unwrap();
        drop(Arc::into_inner(journal));
        let (handle, _, recovered) = open(project.root()).unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].action, "rolled back");
        assert_eq!(project.read("a.txt").unwrap(), b"before");
        assert_eq!(project.read("b.txt"), None);
        close(handle).unwrap();
    }

    #[test]
    fn an_undo_left_applying_in_this_process_is_finished_before_new_work() {
        let project = Project::new("pending");
        project.write("a.txt", b"one");
        let (handle, _, _) = open(project.root()).unwrap();
        let id = edit(handle, "edit", &[("a.txt", Some(b"two"))], &project);
        // As if an apply had stopped part way: the plan says applying and
        // its staged copy is still beside the target.
        with(handle, |j| {
            let entry = j.store.transaction(id)?.unwrap().entries[0].clone();
            project.write(".a.txt.test.krepis-restore", b"one");
            j.store.put_plan(&store::Plan {
                id: 1_000,
                rollback: false,
                transactions: vec![id],
                items: vec![store::Item {
                    entry: Some(entry),
                    transaction: id,
                    temp: ".a.txt.test.krepis-restore".into(),
                }],
                applying: true,
            })
        })
        .unwrap();
        let next = with(handle, |j| j.begin("next")).unwrap();
        assert_eq!(project.read("a.txt").unwrap(), b"one", "the pending undo was finished");
        assert_eq!(project.read(".a.txt.test.krepis-restore"), None);
        assert!(with(handle, |j| j.history()).unwrap().is_empty());
        assert!(with(handle, |j| j.store.plan()).unwrap().is_none());
        with(handle, |j| restore::rollback(j, next)).unwrap();
        close(handle).unwrap();
    }

    #[test]
    fn a_damaged_snapshot_changes_nothing() {
        let project = Project::new("damaged");
        project.write("a.txt", b"original");
        let (handle, _, _) = open(project.root()).unwrap();
        let id = edit(handle, "edit", &[("a.txt", Some(b"edited"))], &project);
        let blob = project
            .0
            .join(".krepis")
            .join("snapshots")
            .join(id.to_string())
            .join("0");
        let mut permissions = std::fs::metadata(&blob).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&blob, permissions).unwrap();
        std::fs::write(&blob, b"origin4l").unwrap();
        let err = with(handle, |j| restore::undo(j, 1)).unwrap_err();
        assert!(err.1.contains("is damaged"), "{}", err.1);
        assert_eq!(project.read("a.txt").unwrap(), b"edited");
        let leftovers: Vec<_> = std::fs::read_dir(&project.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".krepis-restore"))
            .collect();
        assert!(leftovers.is_empty(), "staged copies are removed");
        assert_eq!(with(handle, |j| j.history()).unwrap().len(), 1, "the transaction stays");
        close(handle).unwrap();
    }

    #[test]
    fn tracking_refuses_folders_the_journal_and_paths_outside() {
        let project = Project::new("refuse");
        std::fs::create_dir(project.0.join("dir")).unwrap();
        let (handle, _, _) = open(project.root()).unwrap();
        let id = with(handle, |j| j.begin("")).unwrap();
        for path in ["dir", ".krepis/journal/db", "../elsewhere", ""] {
            assert!(with(handle, |j| j.track(id, path)).is_err(), "{path} was tracked");
        }
        close(handle).unwrap();
    }
}
