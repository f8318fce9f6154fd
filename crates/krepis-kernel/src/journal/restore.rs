//! Undo and rollback: writing snapshots back, in two phases that survive a
//! killed process.
//!
//! 1. **Plan.** The files to restore are checked (still inside the root, not
//!    a folder now) and the plan, naming every staged copy, is saved.
//! 2. **Stage.** Each snapshot is streamed into a new file beside its
//!    target (`.<name>.<plan>-<random>.krepis-restore`), checked against its
//!    recorded size and SHA-256, given its recorded permissions, and synced
//!    with its folder. Until this phase ends no project file has changed: a
//!    failure or a crash here removes the staged copies and changes nothing.
//! 3. **Apply.** The plan is marked applying, then each staged copy is
//!    renamed over its target (atomic per file) and each file the
//!    transactions created is removed. A crash here is finished by the next
//!    `open` (roll forward), so an undo is never left half-applied.
//! 4. **Finish.** The undone transactions and the plan are forgotten in one
//!    sled transaction, then their snapshots are removed.
//!
//! A plan left by a failure in this process (an apply that stopped part
//! way) is settled the same way before any new work.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::paths::Inside;
use super::snapshot::{copy_new, sync_dir};
use super::store::{Item, Plan, Transaction};
use super::{Journal, public};
use crate::control::Failure;
use crate::fault;
use crate::files::{Links, describe, failed, open_regular};
use crate::proto::{JournalRecovery, JournalRestored};

/// The error for a snapshot whose bytes no longer match their hash.
pub fn damaged(path: &str) -> Failure {
    failed(format!(
        "Cannot restore {path}: its snapshot in .krepis/snapshots is damaged (size or SHA-256 differs)\nHint: nothing was changed; the snapshot cannot be trusted, restore the file from elsewhere"
    ))
}

/// Undoes the last `steps` committed transactions.
pub fn undo(journal: &Journal, steps: u32) -> Result<JournalRestored, Failure> {
    // First a plan a failure left: its transactions may be the ones asked for.
    settle(journal)?;
    let steps = steps.max(1) as usize;
    let all = journal.store.transactions()?;
    if let Some(open) = all.iter().find(|t| !t.committed) {
        return Err(failed(format!(
            "Cannot undo while transaction {} is open\nHint: commit or roll it back first",
            open.id
        )));
    }
    let history = journal.history()?;
    if history.is_empty() {
        return Err(failed(
            "Cannot undo: the journal holds no committed transaction\nHint: `krepis undo --list` shows the history"
                .to_owned(),
        ));
    }
    if steps > history.len() {
        return Err(failed(format!(
            "Cannot undo {steps} transactions: the journal holds {}; nothing was changed\nHint: `krepis undo --list` shows them",
            history.len()
        )));
    }
    run(journal, &history[..steps], false)
}

/// Rolls back the open transaction `id`.
pub fn rollback(journal: &Journal, id: u64) -> Result<JournalRestored, Failure> {
    settle(journal)?;
    let transaction = journal.open_transaction(id, "roll back")?;
    run(journal, std::slice::from_ref(&transaction), true)
}

/// Recovers what a killed process left: an interrupted restore is finished
/// (if it was applying) or abandoned (if it was staging, when no file had
/// changed); a transaction never committed is rolled back; snapshot folders
/// of forgotten transactions are removed.
pub fn recover(journal: &Journal) -> Result<Vec<JournalRecovery>, Failure> {
    let mut report = Vec::new();
    if let Some(plan) = settle(journal)? {
        let paths = plan_paths(&plan);
        let action = match (plan.applying, plan.rollback) {
            (true, true) => "rollback completed",
            (true, false) => "undo completed",
            (false, true) => "",
            (false, false) => "undo abandoned, nothing changed",
        };
        if !action.is_empty() {
            report.extend(plan.transactions.iter().map(|&id| recovery(id, action, &paths)));
        }
    }
    for transaction in journal.store.transactions()? {
        if !transaction.committed {
            let restored = rollback(journal, transaction.id)?;
            let mut paths = restored.restored;
            paths.extend(restored.removed);
            report.push(recovery(transaction.id, "rolled back", &paths));
        }
    }
    remove_forgotten_snapshots(journal)?;
    Ok(report)
}

/// Settles a plan left unfinished (by a killed process, or by a failure in
/// this one): finished if it was applying, abandoned (staged copies
/// removed, nothing changed) if it was staging. Returns it, if there was one.
pub fn settle(journal: &Journal) -> Result<Option<Plan>, Failure> {
    let Some(plan) = journal.store.plan()? else {
        return Ok(None);
    };
    if plan.applying {
        apply(journal, &plan, true)?;
        finish(journal, &plan)?;
    } else {
        discard_staged(journal, &plan);
        journal.store.remove_plan()?;
    }
    Ok(Some(plan))
}

fn recovery(transaction: u64, action: &str, paths: &[String]) -> JournalRecovery {
    JournalRecovery {
        transaction,
        action: action.to_owned(),
        paths: paths.to_vec(),
    }
}

fn plan_paths(plan: &Plan) -> Vec<String> {
    plan.items
        .iter()
        .filter_map(|item| item.entry.as_ref().map(|e| e.path.clone()))
        .collect()
}

/// Restores `transactions` (newest first): each path gets the snapshot of
/// the oldest transaction that tracked it.
fn run(journal: &Journal, transactions: &[Transaction], rollback: bool) -> Result<JournalRestored, Failure> {
    let mut oldest: BTreeMap<String, Item> = BTreeMap::new();
    for transaction in transactions {
        for entry in &transaction.entries {
            oldest.insert(
                entry.path.clone(),
                Item {
                    entry: Some(entry.clone()),
                    transaction: transaction.id,
                    temp: String::new(),
                },
            );
        }
    }
    let mut plan = Plan {
        id: journal.store.new_id()?,
        rollback,
        transactions: transactions.iter().map(|t| t.id).collect(),
        items: oldest.into_values().collect(),
        applying: false,
    };
    let targets = check_targets(journal, &plan)?;
    let tag = format!("{}-{:016x}", plan.id, random());
    for (item, target) in plan.items.iter_mut().zip(&targets) {
        if item.entry.as_ref().is_some_and(|e| e.existed) {
            item.temp = staged_name(&target.relative, &tag);
        }
    }
    journal.store.put_plan(&plan)?;
    fault::point("restore:planned");
    if let Err(failure) = stage(journal, &plan, &targets) {
        discard_staged(journal, &plan);
        journal.store.remove_plan()?;
        return Err(failure);
    }
    fault::point("restore:staged");
    plan.applying = true;
    if let Err(failure) = journal.store.put_plan(&plan) {
        // Not known to be applying: abandon it, as recovery would.
        discard_staged(journal, &plan);
        let _ = journal.store.remove_plan();
        return Err(failure);
    }
    apply(journal, &plan, false)?;
    finish(journal, &plan)?;
    let mut restored = JournalRestored {
        transactions: transactions.iter().map(public).collect(),
        ..JournalRestored::default()
    };
    for item in &plan.items {
        let entry = item.entry.as_ref().expect("every item has an entry");
        if entry.existed {
            &mut restored.restored
        } else {
            &mut restored.removed
        }
        .push(entry.path.clone());
    }
    Ok(restored)
}

/// Every target still resolves inside the root and is not a folder now.
fn check_targets(journal: &Journal, plan: &Plan) -> Result<Vec<Inside>, Failure> {
    plan.items
        .iter()
        .map(|item| {
            let entry = item.entry.as_ref().ok_or_else(|| failed("Cannot restore: the journal holds an empty item".into()))?;
            let target = journal.root.resolve_stored(&entry.path)?;
            if let Ok(metadata) = std::fs::symlink_metadata(&target.absolute)
                && metadata.is_dir()
            {
                return Err(failed(format!(
                    "Cannot restore {}: a folder stands there now; nothing was changed\nHint: move the folder away, then undo again",
                    entry.path
                )));
            }
            Ok(target)
        })
        .collect()
}

/// `dir/.<name>.<tag>.krepis-restore` for the target `dir/name`.
fn staged_name(relative: &str, tag: &str) -> String {
    let (dir, name) = relative.rsplit_once('/').map_or(("", relative), |(d, n)| (d, n));
    let file = format!(".{name}.{tag}.krepis-restore");
    if dir.is_empty() { file } else { format!("{dir}/{file}") }
}

/// 64 random bits (the standard library's per-process hash seed), so that a
/// staged name never meets a file left by another journal's plan.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

fn native(journal: &Journal, relative: &str) -> PathBuf {
    relative
        .split('/')
        .fold(journal.root.path().to_path_buf(), |path, part| path.join(part))
}

fn stage(journal: &Journal, plan: &Plan, targets: &[Inside]) -> Result<(), Failure> {
    let mut folders: Vec<PathBuf> = Vec::new();
    for (item, target) in plan.items.iter().zip(targets) {
        let entry = item.entry.as_ref().expect("checked by check_targets");
        if !entry.existed {
            continue;
        }
        let fail = |why: String| failed(format!("Cannot restore {}: {why}; nothing was changed", entry.path));
        if let Some(parent) = target.absolute.parent() {
            std::fs::create_dir_all(parent).map_err(|err| fail(describe(&err)))?;
        }
        let blob = journal.snapshot_dir(item.transaction).join(&entry.blob);
        let (mut source, _) = open_regular(&blob, Links::Refuse)
            .map_err(|err| fail(format!("its snapshot cannot be read ({})", describe(&err))))?;
        let temp = native(journal, &item.temp);
        let copied =
            copy_new(&mut source, &temp, Some((entry.mode, entry.readonly))).map_err(|err| fail(describe(&err)))?;
        if copied.size != entry.size || copied.sha256 != entry.sha256 {
            return Err(damaged(&entry.path));
        }
        if let Some(parent) = temp.parent()
            && !folders.iter().any(|folder| folder == parent)
        {
            folders.push(parent.to_path_buf());
        }
    }
    // The staged names must be on disk before the plan says "applying".
    for folder in folders {
        sync_dir(&folder).map_err(|err| failed(format!("Cannot restore: {}; nothing was changed", describe(&err))))?;
    }
    Ok(())
}

/// Removes the staged copies of a plan that is abandoned.
fn discard_staged(journal: &Journal, plan: &Plan) {
    for item in plan.items.iter().filter(|item| !item.temp.is_empty()) {
        let _ = std::fs::remove_file(native(journal, &item.temp));
    }
}

/// Renames each staged copy over its target and removes created files.
/// When `resuming` a plan that was interrupted, a staged copy that is gone
/// was renamed already and a file already removed is absent; otherwise a
/// missing staged copy is an error.
fn apply(journal: &Journal, plan: &Plan, resuming: bool) -> Result<(), Failure> {
    let mut folders: Vec<PathBuf> = Vec::new();
    for (index, item) in plan.items.iter().enumerate() {
        let entry = item
            .entry
            .as_ref()
            .ok_or_else(|| failed("Cannot restore: the journal holds an empty item".into()))?;
        let target = journal.root.resolve_stored(&entry.path)?;
        let stop = |err: io::Error| {
            failed(format!(
                "Cannot restore {}: {}; the undo stopped part way\nHint: fix the cause, then open the journal again (for example `krepis undo --list`): it finishes the undo",
                entry.path,
                describe(&err)
            ))
        };
        if entry.existed {
            let temp = native(journal, &item.temp);
            match std::fs::symlink_metadata(&temp) {
                Ok(_) => {
                    make_replaceable(&target.absolute);
                    std::fs::rename(&temp, &target.absolute).map_err(stop)?;
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound && resuming => {}
                Err(err) => return Err(stop(err)),
            }
        } else {
            match std::fs::remove_file(&target.absolute) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(stop(err)),
                _ => {}
            }
        }
        if let Some(parent) = target.absolute.parent()
            && !folders.iter().any(|folder| folder == parent)
        {
            folders.push(parent.to_path_buf());
        }
        if index == 0 {
            fault::point("restore:applied-one");
        }
    }
    for folder in folders {
        let _ = sync_dir(&folder);
    }
    Ok(())
}

/// Windows refuses to rename over a read-only file: clear the attribute
/// (the restored file brings its own).
fn make_replaceable(target: &Path) {
    #[cfg(windows)]
    if let Ok(metadata) = std::fs::symlink_metadata(target) {
        let mut permissions = metadata.permissions();
        if permissions.readonly() {
            permissions.set_readonly(false);
            let _ = std::fs::set_permissions(target, permissions);
        }
    }
    #[cfg(not(windows))]
    let _ = target;
}

/// Forgets the restored transactions and the plan (atomically), then
/// removes their snapshots.
fn finish(journal: &Journal, plan: &Plan) -> Result<(), Failure> {
    journal.store.finish_plan(&plan.transactions)?;
    for id in &plan.transactions {
        let _ = std::fs::remove_dir_all(journal.snapshot_dir(*id));
    }
    Ok(())
}

/// Removes snapshot folders (numeric names only) of transactions the store
/// no longer holds: left when a process died between forgetting a
/// transaction and removing its folder.
fn remove_forgotten_snapshots(journal: &Journal) -> Result<(), Failure> {
    let known: Vec<u64> = journal.store.transactions()?.iter().map(|t| t.id).collect();
    let Ok(folders) = std::fs::read_dir(&journal.snapshots) else {
        return Ok(());
    };
    for folder in folders.flatten() {
        let name = folder.file_name();
        let Some(id) = name.to_str().and_then(|name| name.parse::<u64>().ok()) else {
            continue;
        };
        if !known.contains(&id) && folder.file_type().is_ok_and(|kind| kind.is_dir()) {
            let _ = std::fs::remove_dir_all(folder.path());
        }
    }
    Ok(())
}
