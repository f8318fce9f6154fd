//! Undo and rollback: writing snapshots back, in two phases that survive a
//! killed process.
//!
//! 0. **Check.** An undo compares each file with what the undone
//!    transactions left (size, SHA-256, mode, recorded at commit). A file
//!    changed since is refused, listed, unless forced; a forced undo first
//!    keeps the current content as a new committed transaction, so the
//!    undo can itself be undone.
//! 1. **Plan.** The files to restore are checked (still inside the root, not
//!    a folder now) and the plan is saved. Each path gets the snapshot taken
//!    first (the earliest tracking), whatever the commit order.
//! 2. **Stage.** Each snapshot is streamed into a new file beside its
//!    target (`.<tag>-<n>.krepis-restore`: a fixed-length name, so any name
//!    the OS allows can be restored), checked against its recorded size and
//!    SHA-256, given its recorded permissions and owner (where the process
//!    may), and synced with its folder. Until this phase ends no project
//!    file has changed: a failure or a crash here removes the staged copies
//!    and changes nothing.
//! 3. **Apply.** The plan is marked applying, then each staged copy is
//!    renamed over its target (atomic per file) and each file the
//!    transactions created is removed. A crash here is finished by the next
//!    `open` (roll forward), so an undo is never left half-applied.
//! 4. **Finish.** The commit record says the transactions are forgotten,
//!    then the store forgets them and the plan, then their snapshots are
//!    removed.
//!
//! A plan left by a failure in this process (an apply that stopped part
//! way) is settled the same way before any new work.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::opened::{DEFAULT_KEEP, Journal, public, state_of};
use super::paths::Inside;
use super::record::Log;
use super::snapshot::{copy_new_with, damaged, sync_dir, sync_files};
use super::store::{Entry, Item, Plan, State, Transaction};
use crate::fault;
use crate::files::{Links, describe, open_regular};
use crate::proto::{JournalRecovery, JournalRestored};
use crate::result::Failure;

/// How an undo runs.
#[derive(Clone, Copy, Default)]
pub struct UndoOptions {
    /// How many of the last committed transactions (0 means 1).
    pub steps: u32,
    /// Undo over files changed since, keeping their content first.
    pub force: bool,
    /// Report what would change; change nothing.
    pub dry_run: bool,
}

/// Undoes the last `steps` committed transactions.
pub fn undo(journal: &Journal, options: UndoOptions) -> Result<JournalRestored, Failure> {
    // First a plan a failure left: its transactions may be the ones asked for.
    if !options.dry_run {
        settle(journal)?;
    }
    let steps = options.steps.max(1) as usize;
    if let Some(open) = journal.store().headers()?.iter().find(|t| !t.committed) {
        return Err(
            Failure::failed(format!("Cannot undo while transaction {} is open", open.id))
                .with_hint("commit or roll it back first"),
        );
    }
    let history = journal.history()?;
    if history.is_empty() {
        return Err(
            Failure::failed("Cannot undo: the journal holds no committed transaction")
                .with_hint("`krepis undo --list` shows the history"),
        );
    }
    if steps > history.len() {
        return Err(Failure::failed(format!(
            "Cannot undo {steps} transactions: the journal holds {}; nothing was changed",
            history.len()
        ))
        .with_hint("`krepis undo --list` shows them"));
    }
    let chosen = &history[..steps];
    let items = plan_items(chosen);
    let targets = check_targets(journal, &items)?;
    // What the undone transactions left of each path: the last committed.
    let mut left: HashMap<&str, &State> = HashMap::new();
    for transaction in chosen.iter().rev() {
        for entry in &transaction.entries {
            if let Some(after) = &entry.after {
                left.insert(entry.path.as_str(), after);
            }
        }
    }
    let mut changed = Vec::new();
    for (item, target) in items.iter().zip(&targets) {
        let entry = item.entry.as_ref().expect("every item has an entry");
        let now = state_of(&target.absolute).map_err(|err| {
            Failure::failed(format!(
                "Cannot undo: {} cannot be read ({})",
                entry.path,
                describe(&err)
            ))
        })?;
        if left.get(entry.path.as_str()).is_none_or(|was| !same(was, &now)) {
            changed.push(entry.path.clone());
        }
    }
    if options.dry_run {
        let mut report = report(chosen, &items);
        report.changed = changed;
        report.dry_run = true;
        return Ok(report);
    }
    if !changed.is_empty() && !options.force {
        let ids: Vec<String> = chosen.iter().map(|t| t.id().to_string()).collect();
        return Err(Failure::failed(format!("Cannot undo transaction{} {}: {} changed since ({}); nothing was changed", if ids.len() == 1 { "" } else { "s" }, ids.join(", "), if changed.len() == 1 {
                "1 file".to_owned()
            } else {
                format!("{} files", changed.len())
            }, changed.join(", "))).with_hint("`krepis undo --dry-run` lists what would change; `krepis undo --force` keeps the current content as a new transaction first, so that the undo can be undone"));
    }
    let kept = if changed.is_empty() {
        0
    } else {
        keep_current(journal, chosen, &items)?
    };
    match run(journal, chosen, false, items, &targets) {
        Ok(mut restored) => {
            restored.changed = changed;
            restored.kept = kept;
            journal.forget(DEFAULT_KEEP)?;
            Ok(restored)
        }
        Err(failure) => {
            // Nothing changed (no plan left applying): the kept content is
            // the files' content still, so its transaction goes again.
            if kept != 0 && journal.store().plan()?.is_none() {
                let _ = journal.forget_ids(&[kept], false, true);
            }
            Err(failure)
        }
    }
}

fn same(was: &State, now: &State) -> bool {
    was.exists == now.exists
        && (!was.exists
            || (was.other == now.other && was.size == now.size && was.sha256 == now.sha256 && was.mode == now.mode))
}

/// Commits the current content of every file the undo will change as a new
/// transaction, whose recorded result is what the undo will leave: undoing
/// it later brings that content back (a redo).
fn keep_current(journal: &Journal, chosen: &[Transaction], items: &[Item]) -> Result<u64, Failure> {
    let ids: Vec<String> = chosen.iter().map(|t| format!("#{}", t.id())).collect();
    let id = journal.begin(&format!("content before the forced undo of {}", ids.join(", ")))?;
    let mut after = Vec::with_capacity(items.len());
    for item in items {
        let entry = item.entry.as_ref().expect("every item has an entry");
        if let Err(failure) = journal.track(id, &entry.path) {
            let _ = journal.forget_ids(&[id], false, false);
            return Err(failure);
        }
        after.push(if entry.existed {
            State {
                exists: true,
                size: entry.size,
                sha256: entry.sha256.clone(),
                mode: entry.mode,
                other: false,
            }
        } else {
            State::default()
        });
    }
    let transaction = journal
        .store()
        .transaction(id)?
        .ok_or_else(|| Failure::failed(format!("Cannot undo: transaction {id} vanished")))?;
    journal.commit_with(transaction, after, false)?;
    Ok(id)
}

/// Rolls back the open transaction `id`.
pub fn rollback(journal: &Journal, id: u64) -> Result<JournalRestored, Failure> {
    settle(journal)?;
    journal.open_header(id, "roll back")?;
    let transaction = journal
        .store()
        .transaction(id)?
        .ok_or_else(|| Failure::failed(format!("Cannot roll back: transaction {id} vanished")))?;
    let chosen = std::slice::from_ref(&transaction);
    let items = plan_items(chosen);
    let targets = check_targets(journal, &items)?;
    run(journal, chosen, true, items, &targets)
}

/// Recovers what a killed process left: an interrupted restore is finished
/// (if it was applying) or abandoned (if it was staging, when no file had
/// changed); a transaction never committed is rolled back; snapshot folders
/// of transactions the commit record forgot are removed.
pub fn recover(journal: &Journal, log: &Log) -> Result<Vec<JournalRecovery>, Failure> {
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
    for header in journal.store().headers()? {
        if !header.committed {
            let restored = rollback(journal, header.id)?;
            let mut paths = restored.restored;
            paths.extend(restored.removed);
            report.push(recovery(header.id, "rolled back", &paths));
        }
    }
    for id in &log.forgotten {
        let folder = journal.snapshot_dir(*id);
        if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
    Ok(report)
}

impl Journal {
    /// Begins a transaction (after settling a restore a failure left).
    pub fn begin(&self, message: &str) -> Result<u64, Failure> {
        settle(self)?;
        self.begin_settled(message)
    }
}

/// Settles a plan left unfinished (by a killed process, or by a failure in
/// this one): finished if it was applying, abandoned (staged copies
/// removed, nothing changed) if it was staging. Returns it, if there was one.
pub fn settle(journal: &Journal) -> Result<Option<Plan>, Failure> {
    let Some(plan) = journal.store().plan()? else {
        return Ok(None);
    };
    if plan.applying {
        apply(journal, &plan, true)?;
        finish(journal, &plan)?;
    } else {
        discard_staged(journal, &plan);
        journal.store().remove_plan()?;
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

/// Each path of `transactions` with the snapshot taken first (the lowest
/// tracking order), so overlapping transactions undo to the earliest state.
fn plan_items(transactions: &[Transaction]) -> Vec<Item> {
    let mut earliest: BTreeMap<String, Item> = BTreeMap::new();
    for transaction in transactions {
        for (index, entry) in transaction.entries.iter().enumerate() {
            let better = earliest
                .get(&entry.path)
                .is_none_or(|item| item.entry.as_ref().is_some_and(|e| entry.order < e.order));
            if better {
                earliest.insert(
                    entry.path.clone(),
                    Item {
                        entry: Some(entry.clone()),
                        transaction: transaction.id(),
                        index: index as u64,
                    },
                );
            }
        }
    }
    earliest.into_values().collect()
}

fn report(transactions: &[Transaction], items: &[Item]) -> JournalRestored {
    let mut restored = JournalRestored {
        transactions: transactions.iter().map(public).collect(),
        ..JournalRestored::default()
    };
    for item in items {
        let entry: &Entry = item.entry.as_ref().expect("every item has an entry");
        if entry.existed {
            &mut restored.restored
        } else {
            &mut restored.removed
        }
        .push(entry.path.clone());
    }
    restored
}

/// Restores `transactions` (newest first) from `items`.
fn run(
    journal: &Journal,
    transactions: &[Transaction],
    rollback: bool,
    items: Vec<Item>,
    targets: &[Inside],
) -> Result<JournalRestored, Failure> {
    let mut plan = Plan {
        tag: random(),
        rollback,
        transactions: transactions.iter().map(Transaction::id).collect(),
        items,
        applying: false,
    };
    journal.store().put_plan(&plan)?;
    fault::point("restore:planned");
    let owners_kept = match stage(journal, &plan, targets) {
        Ok(kept) => kept,
        Err(failure) => {
            discard_staged(journal, &plan);
            journal.store().remove_plan()?;
            return Err(failure);
        }
    };
    fault::point("restore:staged");
    plan.applying = true;
    if let Err(failure) = journal.store().put_plan(&plan) {
        // Not known to be applying: abandon it, as recovery would.
        discard_staged(journal, &plan);
        let _ = journal.store().remove_plan();
        return Err(failure);
    }
    apply(journal, &plan, false)?;
    finish(journal, &plan)?;
    let mut restored = report(transactions, &plan.items);
    restored.owners_kept = owners_kept;
    Ok(restored)
}

/// Every target still resolves inside the root and is not a folder now.
fn check_targets(journal: &Journal, items: &[Item]) -> Result<Vec<Inside>, Failure> {
    items
        .iter()
        .map(|item| {
            let entry = item
                .entry
                .as_ref()
                .ok_or_else(|| Failure::failed("Cannot restore: the journal holds an empty item"))?;
            let target = journal.root.resolve_stored(&entry.path)?;
            if let Ok(metadata) = std::fs::symlink_metadata(&target.absolute)
                && metadata.is_dir()
            {
                return Err(Failure::failed(format!(
                    "Cannot restore {}: a folder stands there now; nothing was changed",
                    entry.path
                ))
                .with_hint("move the folder away, then undo again"));
            }
            Ok(target)
        })
        .collect()
}

/// The staged copy of item `index` for `target`: `.<tag>-<index>.krepis-restore`
/// beside it, a name of fixed length whatever the target's.
fn staged(target: &Path, tag: u64, index: usize) -> PathBuf {
    let name = format!(".{tag:016x}-{index}.krepis-restore");
    target
        .parent()
        .map_or_else(|| PathBuf::from(&name), |parent| parent.join(&name))
}

/// 64 random bits (the standard library's per-process hash seed), so that a
/// staged name never meets a file left by another journal's plan.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Stages every snapshot; returns the paths whose owner could not be set.
fn stage(journal: &Journal, plan: &Plan, targets: &[Inside]) -> Result<Vec<String>, Failure> {
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut staged_files: Vec<PathBuf> = Vec::new();
    let mut owners_kept = Vec::new();
    for (index, (item, target)) in plan.items.iter().zip(targets).enumerate() {
        let entry = item.entry.as_ref().expect("checked by check_targets");
        if !entry.existed {
            continue;
        }
        let fail = |why: String| Failure::failed(format!("Cannot restore {}: {why}; nothing was changed", entry.path));
        if let Some(parent) = target.absolute.parent() {
            std::fs::create_dir_all(parent).map_err(|err| fail(describe(&err)))?;
        }
        let blob = journal.blob(item.transaction, item.index)?;
        let (mut source, _) = open_regular(&blob, Links::Refuse)
            .map_err(|err| fail(format!("its snapshot cannot be read ({})", describe(&err))))?;
        let temp = staged(&target.absolute, plan.tag, index);
        let copied = copy_new_with(&mut source, &temp, Some((entry.mode, entry.readonly)), false)
            .map_err(|err| fail(describe(&err)))?;
        staged_files.push(temp.clone());
        if copied.size != entry.size || copied.sha256 != entry.sha256 {
            return Err(damaged(&entry.path));
        }
        if !set_owner(&temp, entry) {
            owners_kept.push(entry.path.clone());
        }
        if let Some(parent) = temp.parent()
            && !folders.iter().any(|folder| folder == parent)
        {
            folders.push(parent.to_path_buf());
        }
    }
    // The staged copies and their names must be on disk before the plan
    // says "applying": synced all at once.
    sync_files(&staged_files, &folders)
        .map_err(|err| Failure::failed(format!("Cannot restore: {}; nothing was changed", describe(&err))))?;
    Ok(owners_kept)
}

/// Gives the staged copy the recorded owner and group, where they differ
/// and the process may; false when it could not.
fn set_owner(temp: &Path, entry: &Entry) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !entry.owned {
            return true;
        }
        let Ok(metadata) = std::fs::symlink_metadata(temp) else {
            return false;
        };
        if metadata.uid() == entry.uid && metadata.gid() == entry.gid {
            return true;
        }
        if std::os::unix::fs::lchown(temp, Some(entry.uid), Some(entry.gid)).is_err() {
            return false;
        }
        // chown clears set-user-id and set-group-id bits: set the mode again.
        std::fs::set_permissions(temp, std::fs::Permissions::from_mode(entry.mode)).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = (temp, entry);
        true
    }
}

/// Removes the staged copies of a plan that is abandoned.
fn discard_staged(journal: &Journal, plan: &Plan) {
    for (index, item) in plan.items.iter().enumerate() {
        let Some(entry) = item.entry.as_ref().filter(|e| e.existed) else {
            continue;
        };
        if let Ok(target) = journal.root.resolve_stored(&entry.path) {
            let _ = std::fs::remove_file(staged(&target.absolute, plan.tag, index));
        }
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
            .ok_or_else(|| Failure::failed("Cannot restore: the journal holds an empty item"))?;
        let target = journal.root.resolve_stored(&entry.path)?;
        let stop = |err: io::Error| {
            Failure::failed(format!("Cannot restore {}: {}; the undo stopped part way", entry.path, describe(&err))).with_hint("fix the cause, then open the journal again (for example `krepis undo --dry-run`): it finishes the undo")
        };
        if entry.existed {
            let temp = staged(&target.absolute, plan.tag, index);
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

/// Forgets the restored transactions and the plan, then removes their
/// snapshots.
fn finish(journal: &Journal, plan: &Plan) -> Result<(), Failure> {
    journal.forget_ids(&plan.transactions, true, !plan.rollback)
}
