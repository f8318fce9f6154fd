//! The journal's unit tests, on real files in a temporary folder.

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

fn steps(steps: u32) -> restore::UndoOptions {
    restore::UndoOptions {
        steps,
        ..restore::UndoOptions::default()
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
    let (handle, _, recovered) = open(project.root(), false).unwrap();
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
        history.iter().map(|t| t.head().message.as_str()).collect::<Vec<_>>(),
        ["second", "first"]
    );
    let undone = with(handle, |j| restore::undo(j, steps(2))).unwrap();
    assert_eq!(undone.restored, ["a.txt"]);
    assert_eq!(undone.removed, ["new.txt"]);
    assert_eq!(project.read("a.txt").unwrap(), b"one", "the oldest snapshot wins");
    assert_eq!(project.read("new.txt"), None);
    assert!(with(handle, |j| j.history()).unwrap().is_empty());
    let err = with(handle, |j| restore::undo(j, steps(1))).unwrap_err();
    assert!(err.render().contains("no committed transaction"), "{}", err.render());
    close(handle).unwrap();
}

#[test]
fn a_second_open_is_busy_and_close_rolls_back() {
    let project = Project::new("busy");
    project.write("a.txt", b"before");
    let (handle, _, _) = open(project.root(), false).unwrap();
    assert_eq!(open(project.root(), false).unwrap_err().code, KrepisResult::Busy);
    let id = with(handle, |j| j.begin("left open")).unwrap();
    with(handle, |j| j.track(id, "a.txt")).unwrap();
    project.write("a.txt", b"after");
    assert_eq!(close(handle).unwrap(), [id]);
    assert_eq!(project.read("a.txt").unwrap(), b"before");
    assert_eq!(close(handle).unwrap_err().code, KrepisResult::UnknownHandle);
}

#[test]
fn an_uncommitted_transaction_is_rolled_back_at_the_next_open() {
    let project = Project::new("recover");
    project.write("a.txt", b"before");
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = with(handle, |j| j.begin("crashed")).unwrap();
    with(handle, |j| j.track(id, "a.txt")).unwrap();
    with(handle, |j| j.track(id, "b.txt")).unwrap();
    project.write("a.txt", b"half");
    project.write("b.txt", b"new");
    // As if the process died: the journal is dropped without close().
    let (_, journal) = open_journals().as_mut().unwrap().remove(&handle).unwrap();
    drop(Arc::into_inner(journal));
    let (handle, _, recovered) = open(project.root(), false).unwrap();
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
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = edit(handle, "edit", &[("a.txt", Some(b"two"))], &project);
    // As if an apply had stopped part way: the plan says applying and
    // its staged copy is still beside the target.
    with(handle, |j| {
        let entry = j.store().transaction(id)?.unwrap().entries[0].clone();
        project.write(".00000000000003e8-0.krepis-restore", b"one");
        j.store().put_plan(&store::Plan {
            tag: 1_000,
            rollback: false,
            transactions: vec![id],
            items: vec![store::Item {
                entry: Some(entry),
                transaction: id,
                index: 0,
            }],
            applying: true,
        })
    })
    .unwrap();
    let next = with(handle, |j| j.begin("next")).unwrap();
    assert_eq!(project.read("a.txt").unwrap(), b"one", "the pending undo was finished");
    assert_eq!(project.read(".00000000000003e8-0.krepis-restore"), None);
    assert!(with(handle, |j| j.history()).unwrap().is_empty());
    assert!(with(handle, |j| j.store().plan()).unwrap().is_none());
    with(handle, |j| restore::rollback(j, next)).unwrap();
    close(handle).unwrap();
}

#[test]
fn a_damaged_snapshot_changes_nothing() {
    let project = Project::new("damaged");
    project.write("a.txt", b"original");
    let (handle, _, _) = open(project.root(), false).unwrap();
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
    let err = with(handle, |j| restore::undo(j, steps(1))).unwrap_err();
    assert!(err.render().contains("is damaged"), "{}", err.render());
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
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = with(handle, |j| j.begin("")).unwrap();
    for path in ["dir", ".krepis/journal/db", "../elsewhere", ""] {
        assert!(with(handle, |j| j.track(id, path)).is_err(), "{path} was tracked");
    }
    close(handle).unwrap();
}

/// Drops an open journal as a killed process would: no close, no rollback.
fn crash(handle: u64) {
    let (_, journal) = open_journals().as_mut().unwrap().remove(&handle).unwrap();
    drop(Arc::into_inner(journal));
}

fn force(steps: u32) -> restore::UndoOptions {
    restore::UndoOptions {
        steps,
        force: true,
        dry_run: false,
    }
}

#[test]
fn undo_refuses_a_file_changed_since_and_a_forced_undo_can_be_undone() {
    let project = Project::new("changed");
    project.write("a.txt", b"one");
    let (handle, _, _) = open(project.root(), false).unwrap();
    edit(
        handle,
        "tool",
        &[("a.txt", Some(b"two")), ("b.txt", Some(b"made"))],
        &project,
    );
    project.write("a.txt", b"by hand");
    let err = with(handle, |j| restore::undo(j, steps(1))).unwrap_err();
    assert!(
        err.render().contains("1 file changed since (a.txt)"),
        "{}",
        err.render()
    );
    assert_eq!(project.read("a.txt").unwrap(), b"by hand", "nothing was changed");
    let dry = with(handle, |j| {
        restore::undo(
            j,
            restore::UndoOptions {
                steps: 1,
                force: false,
                dry_run: true,
            },
        )
    })
    .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.changed, ["a.txt"]);
    assert_eq!(dry.restored, ["a.txt"]);
    assert_eq!(dry.removed, ["b.txt"]);
    assert_eq!(project.read("a.txt").unwrap(), b"by hand", "a dry run changes nothing");
    let forced = with(handle, |j| restore::undo(j, force(1))).unwrap();
    assert_ne!(forced.kept, 0);
    assert_eq!(project.read("a.txt").unwrap(), b"one");
    assert_eq!(project.read("b.txt"), None);
    let history = with(handle, |j| j.history()).unwrap();
    assert_eq!(history.len(), 1, "the kept content is a transaction");
    assert_eq!(history[0].id(), forced.kept);
    // Undoing it again is a redo of the content the forced undo replaced.
    with(handle, |j| restore::undo(j, steps(1))).unwrap();
    assert_eq!(project.read("a.txt").unwrap(), b"by hand");
    assert_eq!(project.read("b.txt").unwrap(), b"made");
    close(handle).unwrap();
}

#[test]
fn overlapping_transactions_undo_to_the_earliest_snapshot() {
    let project = Project::new("overlap");
    project.write("a.txt", b"a0");
    let (handle, _, _) = open(project.root(), false).unwrap();
    let first = with(handle, |j| j.begin("first")).unwrap();
    with(handle, |j| j.track(first, "a.txt")).unwrap();
    project.write("a.txt", b"a1");
    let second = with(handle, |j| j.begin("second")).unwrap();
    with(handle, |j| j.track(second, "a.txt")).unwrap();
    project.write("a.txt", b"a2");
    // The second commits first: commit order is not tracking order.
    with(handle, |j| j.commit(second)).unwrap();
    with(handle, |j| j.commit(first)).unwrap();
    with(handle, |j| restore::undo(j, steps(2))).unwrap();
    assert_eq!(project.read("a.txt").unwrap(), b"a0");
    close(handle).unwrap();
}

#[test]
fn ids_are_sequential_across_reopen() {
    let project = Project::new("ids");
    let (handle, _, _) = open(project.root(), false).unwrap();
    let a = edit(handle, "a", &[("a.txt", Some(b"1"))], &project);
    let b = edit(handle, "b", &[("a.txt", Some(b"2"))], &project);
    close(handle).unwrap();
    let (handle, _, _) = open(project.root(), false).unwrap();
    let c = edit(handle, "c", &[("a.txt", Some(b"3"))], &project);
    assert_eq!([a, b, c], [1, 2, 3]);
    close(handle).unwrap();
}

#[test]
fn the_longest_name_the_os_allows_is_tracked_and_restored() {
    let project = Project::new("long");
    let name = "n".repeat(255);
    project.write(&name, b"before");
    let (handle, _, _) = open(project.root(), false).unwrap();
    edit(handle, "long", &[(name.as_str(), Some(b"after"))], &project);
    with(handle, |j| restore::undo(j, steps(1))).unwrap();
    assert_eq!(project.read(&name).unwrap(), b"before");
    close(handle).unwrap();
    let (handle, _, recovered) = open(project.root(), false).unwrap();
    assert!(recovered.is_empty());
    close(handle).unwrap();
}

#[test]
fn forget_keeps_the_newest_and_frees_their_snapshots() {
    let project = Project::new("forget");
    project.write("a.txt", &[7u8; 1000]);
    let (handle, _, _) = open(project.root(), false).unwrap();
    let ids: Vec<u64> = (0..4u8)
        .map(|i| edit(handle, "edit", &[("a.txt", Some(&[i; 1000]))], &project))
        .collect();
    let history = with(handle, |j| j.history()).unwrap();
    assert_eq!(public(&history[0]).snapshot_bytes, 1000);
    let forgotten = with(handle, |j| j.forget(1)).unwrap();
    assert_eq!(forgotten, ids[..3]);
    let folders: Vec<String> = std::fs::read_dir(project.0.join(".krepis").join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, [ids[3].to_string()]);
    close(handle).unwrap();
    let listed = list(project.root()).unwrap();
    assert_eq!(listed.iter().map(Transaction::id).collect::<Vec<_>>(), [ids[3]]);
}

#[test]
fn list_reads_without_the_lock_and_creates_nothing() {
    let project = Project::new("list");
    assert!(list(project.root()).is_err(), "no journal: an error");
    assert!(!project.0.join(".krepis").exists(), "and nothing created");
    let (handle, _, _) = open(project.root(), false).unwrap();
    edit(handle, "one", &[("a.txt", Some(b"1"))], &project);
    // The journal is open (and locked) here.
    let listed = list(project.root()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].head().message, "one");
    close(handle).unwrap();
}

#[test]
fn a_store_that_lost_a_committed_transaction_is_refused_and_repaired() {
    let project = Project::new("lost");
    project.write("a.txt", b"a0");
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = edit(
        handle,
        "kept",
        &[("a.txt", Some(b"a1")), ("new.txt", Some(b"n"))],
        &project,
    );
    // As sled does with a torn tail: the commit is gone from the store.
    with(handle, |j| j.store().remove(&[id], false)).unwrap();
    crash(handle);
    let err = open(project.root(), false).unwrap_err();
    assert!(
        err.render().contains("holds less than its commit record"),
        "{}",
        err.render()
    );
    assert!(err.render().contains("--repair"), "{}", err.render());
    assert_eq!(project.read("a.txt").unwrap(), b"a1", "nothing was rolled back");
    assert_eq!(project.read("new.txt").unwrap(), b"n");
    let (handle, _, recovered) = open(project.root(), true).unwrap();
    assert!(recovered[0].action.starts_with("repaired"), "{:?}", recovered);
    assert_eq!(with(handle, |j| j.history()).unwrap().len(), 1);
    with(handle, |j| restore::undo(j, steps(1))).unwrap();
    assert_eq!(project.read("a.txt").unwrap(), b"a0");
    assert_eq!(project.read("new.txt"), None);
    close(handle).unwrap();
}

/// Copies a folder tree (files and folders only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_flip_or_a_cut_anywhere_in_the_store_never_rolls_back_a_commit() {
    let project = Project::new("damage");
    project.write("a.txt", b"a0");
    let (handle, _, _) = open(project.root(), false).unwrap();
    for i in 0..3u8 {
        edit(
            handle,
            "edit",
            &[("a.txt", Some(&[b'a', b'1' + i])), ("b.txt", Some(&[i]))],
            &project,
        );
    }
    close(handle).unwrap();
    let pristine = project.0.join("pristine");
    copy_tree(&project.0.join(".krepis"), &pristine);
    let db = project.0.join(".krepis").join("journal").join("db");
    let length = std::fs::metadata(&db).unwrap().len();
    let (mut refused, mut intact) = (0, 0);
    let step = (length / 40).max(1);
    for offset in (0..length).step_by(usize::try_from(step).unwrap()) {
        for cut in [false, true] {
            let _ = std::fs::remove_dir_all(project.0.join(".krepis"));
            copy_tree(&pristine, &project.0.join(".krepis"));
            let mut bytes = std::fs::read(&db).unwrap();
            if cut {
                bytes.truncate(usize::try_from(offset).unwrap());
            } else {
                bytes[usize::try_from(offset).unwrap()] ^= 0x5a;
            }
            std::fs::write(&db, &bytes).unwrap();
            match open(project.root(), false) {
                Err(_) => refused += 1,
                Ok((handle, _, _)) => {
                    let history = with(handle, |j| j.history()).unwrap();
                    close(handle).unwrap();
                    assert_eq!(
                        history.len(),
                        3,
                        "offset {offset} cut {cut}: a commit was lost silently"
                    );
                    intact += 1;
                }
            }
            assert_eq!(
                project.read("a.txt").unwrap(),
                b"a3",
                "offset {offset} cut {cut}: a file changed"
            );
            assert_eq!(project.read("b.txt").unwrap(), [2]);
        }
    }
    assert!(
        refused > 0 && refused + intact > 40,
        "refused {refused}, intact {intact}"
    );
}

#[test]
fn a_flip_in_the_commit_record_is_refused() {
    let project = Project::new("record");
    let (handle, _, _) = open(project.root(), false).unwrap();
    edit(handle, "edit", &[("a.txt", Some(b"1"))], &project);
    close(handle).unwrap();
    let commits = project.0.join(".krepis").join("commits");
    let mut bytes = std::fs::read(&commits).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&commits, &bytes).unwrap();
    let err = open(project.root(), false).unwrap_err();
    assert!(err.render().contains("is damaged at byte"), "{}", err.render());
    assert_eq!(project.read("a.txt").unwrap(), b"1");
}

#[cfg(unix)]
#[test]
fn a_sparse_or_hard_linked_commit_record_is_refused_before_it_is_read() {
    let project = Project::new("record-hostile");
    let (handle, _, _) = open(project.root(), false).unwrap();
    edit(handle, "edit", &[("a.txt", Some(b"1"))], &project);
    close(handle).unwrap();
    let commits = project.0.join(".krepis").join("commits");
    let whole = std::fs::read(&commits).unwrap();
    // A hole of 1 GiB after the records: nothing on disk, all of it in memory
    // for a reader that reads the file whole.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&commits)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let err = open(project.root(), false).unwrap_err();
    assert!(err.render().contains("sparse"), "{}", err.render());
    assert!(list(project.root()).unwrap_err().render().contains("sparse"));
    assert_eq!(project.read("a.txt").unwrap(), b"1", "nothing rolled back");
    std::fs::write(&commits, &whole).unwrap();
    // A second name for the record, as if it were a file elsewhere.
    let elsewhere = project.0.join("elsewhere");
    std::fs::hard_link(&commits, &elsewhere).unwrap();
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = with(handle, |j| j.begin("more")).unwrap();
    with(handle, |j| j.track(id, "a.txt")).unwrap();
    let err = with(handle, |j| j.commit(id)).unwrap_err();
    assert!(err.render().contains("hard link"), "{}", err.render());
    assert_eq!(std::fs::read(&elsewhere).unwrap(), whole, "the other name is unchanged");
    close(handle).unwrap();
}

#[test]
fn a_store_of_the_previous_format_is_refused_with_a_hint() {
    let project = Project::new("format1");
    std::fs::create_dir_all(project.0.join(".krepis").join("journal")).unwrap();
    {
        let db = sled::open(project.0.join(".krepis").join("journal")).unwrap();
        db.open_tree("transactions")
            .unwrap()
            .insert(1u64.to_be_bytes(), b"x".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let err = open(project.root(), false).unwrap_err();
    assert!(err.render().contains("written by an older Krepis"), "{}", err.render());
    assert!(err.render().contains("Hint:"), "{}", err.render());
    let db = sled::open(project.0.join(".krepis").join("journal")).unwrap();
    assert_eq!(db.tree_names().len(), 2, "nothing was added to the old store");
    drop(db);
    assert!(!project.0.join(".krepis").join("commits").exists());
}

#[test]
fn a_stored_path_edited_to_leave_the_root_is_refused() {
    let project = Project::new("stored");
    let outside = project
        .0
        .with_file_name(format!("krepis-journal-victim-{}", std::process::id()));
    std::fs::write(&outside, b"victim").unwrap();
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = edit(handle, "edit", &[("a.txt", Some(b"1"))], &project);
    let name = outside.file_name().unwrap().to_str().unwrap().to_owned();
    with(handle, |j| {
        let mut entry = j.store().entry(id, 0)?.unwrap();
        entry.path = format!("../{name}");
        j.store().set_entry(id, 0, &entry)?;
        j.store().flush()
    })
    .unwrap();
    assert!(with(handle, |j| restore::undo(j, force(1))).is_err());
    assert_eq!(std::fs::read(&outside).unwrap(), b"victim");
    close(handle).unwrap();
    std::fs::remove_file(outside).unwrap();
}

#[cfg(unix)]
#[test]
fn links_at_every_level_of_the_journal_folder_are_refused() {
    let project = Project::new("links");
    project.write("a.txt", b"0");
    let (handle, _, _) = open(project.root(), false).unwrap();
    let id = edit(handle, "edit", &[("a.txt", Some(b"1"))], &project);
    close(handle).unwrap();
    let krepis = project.0.join(".krepis");
    let pristine = project.0.join("pristine");
    copy_tree(&krepis, &pristine);
    let elsewhere = project
        .0
        .with_file_name(format!("krepis-journal-elsewhere-{}", std::process::id()));
    for level in [
        PathBuf::new(),
        PathBuf::from("journal"),
        PathBuf::from("snapshots"),
        PathBuf::from("snapshots").join(id.to_string()),
        PathBuf::from("journal").join("db"),
        PathBuf::from("journal").join("conf"),
        PathBuf::from("commits"),
    ] {
        let _ = std::fs::remove_dir_all(&krepis);
        let _ = std::fs::remove_dir_all(&elsewhere);
        copy_tree(&pristine, &krepis);
        let linked = if level.as_os_str().is_empty() {
            krepis.clone()
        } else {
            krepis.join(&level)
        };
        // The link points at a copy of what it replaces, outside the project.
        if linked.is_dir() {
            copy_tree(&linked, &elsewhere);
            std::fs::remove_dir_all(&linked).unwrap();
        } else {
            std::fs::create_dir_all(&elsewhere).unwrap();
            std::fs::copy(&linked, elsewhere.join("file")).unwrap_or_else(|err| panic!("{level:?}: {err}"));
            std::fs::remove_file(&linked).unwrap();
        }
        let target = if elsewhere.join("file").exists() {
            elsewhere.join("file")
        } else {
            elsewhere.clone()
        };
        std::os::unix::fs::symlink(&target, &linked).unwrap();
        let before = tree_listing(&elsewhere);
        let err = open(project.root(), false).unwrap_err();
        assert!(err.render().contains("symbolic link"), "{level:?}: {}", err.render());
        assert!(err.render().contains("Hint:"), "{}", err.render());
        assert_eq!(tree_listing(&elsewhere), before, "{level:?}: something outside changed");
        assert!(list(project.root()).is_err() || level != PathBuf::new(), "{level:?}");
    }
    std::fs::remove_dir_all(&elsewhere).unwrap();
}

/// Every file under `dir` with its bytes.
#[cfg(unix)]
fn tree_listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if dir.is_file() {
        return vec![(dir.to_path_buf(), std::fs::read(dir).unwrap())];
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(tree_listing(&entry.path()));
        } else {
            out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_flip_or_a_cut_anywhere_in_the_commit_record_never_loses_a_commit() {
    let project = Project::new("record-damage");
    project.write("a.txt", b"a0");
    let (handle, _, _) = open(project.root(), false).unwrap();
    for i in 0..3u8 {
        edit(handle, "edit", &[("a.txt", Some(&[b'a', b'1' + i]))], &project);
    }
    close(handle).unwrap();
    let pristine = project.0.join("pristine");
    copy_tree(&project.0.join(".krepis"), &pristine);
    let commits = project.0.join(".krepis").join("commits");
    let length = std::fs::metadata(&commits).unwrap().len();
    let (mut refused, mut intact) = (0, 0);
    for offset in (0..length).step_by(usize::try_from((length / 60).max(1)).unwrap()) {
        for cut in [false, true] {
            let _ = std::fs::remove_dir_all(project.0.join(".krepis"));
            copy_tree(&pristine, &project.0.join(".krepis"));
            let mut bytes = std::fs::read(&commits).unwrap();
            if cut {
                bytes.truncate(usize::try_from(offset).unwrap());
            } else {
                bytes[usize::try_from(offset).unwrap()] ^= 0x01;
            }
            std::fs::write(&commits, &bytes).unwrap();
            match open(project.root(), false) {
                Err(_) => refused += 1,
                Ok((handle, _, _)) => {
                    let history = with(handle, |j| j.history()).unwrap();
                    close(handle).unwrap();
                    assert_eq!(history.len(), 3, "offset {offset} cut {cut}: a commit was lost");
                    // What the store had, the record holds again.
                    assert_eq!(list(project.root()).unwrap().len(), 3, "offset {offset} cut {cut}");
                    intact += 1;
                }
            }
            assert_eq!(
                project.read("a.txt").unwrap(),
                b"a3",
                "offset {offset} cut {cut}: a file changed"
            );
        }
    }
    assert!(refused > 0 && intact > 0, "refused {refused}, intact {intact}");
}
