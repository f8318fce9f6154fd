//! Nothing under `.krepis/` is trusted: it may arrive with the project
//! (an archive, a clone of someone's folder), so every folder the journal
//! uses is checked to be a real folder, not a link, before anything in it
//! is opened, written or removed; files in it are opened without following
//! links (`O_NOFOLLOW` on Unix, the reparse point itself on Windows), and
//! every name the journal uses there is one it derives (a transaction id,
//! an entry's index), never one read back from the store.

use std::io;
use std::path::Path;

use crate::files::describe;
use crate::result::Failure;

/// How deep, and how many entries, [`check_tree`] looks at.
const DEPTH: usize = 3;
const MOST_ENTRIES: usize = 1_000_000;

/// The error for a `.krepis/` that holds something the journal would not
/// have written there.
pub fn hostile(shown: &str, what: &str, why: &str) -> Failure {
    Failure::failed(format!("Cannot open the journal in {shown}: {what} {why}; nothing was read, written or removed through it")).with_hint("Krepis never writes links in .krepis; if this folder came with the project, move .krepis away (Krepis makes a new one)")
}

/// Makes `dir` a real folder: checks one that exists (a link or a file
/// there is refused), creates one that does not. Returns whether it was
/// created.
pub fn real_dir(dir: &Path, shown: &str, what: &str) -> Result<bool, Failure> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(hostile(shown, what, "is a symbolic link")),
        Ok(metadata) if !metadata.is_dir() => Err(hostile(shown, what, "is not a folder")),
        Ok(_) => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(dir)
                .map_err(|err| Failure::failed(format!("Cannot create {what}: {}", describe(&err))))?;
            // Created by us: still check, a racing process may have put a
            // link there between the two calls.
            match std::fs::symlink_metadata(dir) {
                Ok(metadata) if metadata.is_dir() && !metadata.file_type().is_symlink() => Ok(true),
                _ => Err(hostile(shown, what, "is not a folder")),
            }
        }
        Err(err) => Err(Failure::failed(format!(
            "Cannot open the journal in {shown}: {what}: {}",
            describe(&err)
        ))),
    }
}

/// Checks that `dir` exists and is a real folder (not a link).
pub fn existing_dir(dir: &Path, shown: &str) -> Result<(), Failure> {
    let what = crate::journal::paths::plain(dir);
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(hostile(shown, &what, "is a symbolic link")),
        Ok(metadata) if !metadata.is_dir() => Err(hostile(shown, &what, "is not a folder")),
        Ok(_) => Ok(()),
        Err(err) => Err(Failure::failed(format!("Cannot read {what}: {}", describe(&err)))),
    }
}

/// Checks that nothing in `.krepis/` down to [`DEPTH`] levels (the sled
/// folder and its files, each snapshot folder and its files) is a link, or
/// anything but a file or a folder.
pub fn check_tree(dir: &Path, shown: &str) -> Result<(), Failure> {
    let mut seen = 0usize;
    walk(dir, shown, 0, &mut seen)
}

fn walk(dir: &Path, shown: &str, depth: usize, seen: &mut usize) -> Result<(), Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Failure::failed(format!("Cannot open the journal in {shown}: {}", describe(&err))))?;
    for entry in entries {
        let entry =
            entry.map_err(|err| Failure::failed(format!("Cannot open the journal in {shown}: {}", describe(&err))))?;
        *seen += 1;
        if *seen > MOST_ENTRIES {
            return Err(hostile(shown, shown, "holds more entries than any journal writes"));
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|err| Failure::failed(format!("Cannot open the journal in {shown}: {}", describe(&err))))?;
        let what = crate::journal::paths::plain(&path);
        if kind.is_symlink() {
            return Err(hostile(shown, &what, "is a symbolic link"));
        }
        if kind.is_dir() {
            if depth + 1 < DEPTH {
                walk(&path, shown, depth + 1, seen)?;
            }
        } else if !kind.is_file() {
            return Err(hostile(shown, &what, "is neither a file nor a folder"));
        }
    }
    Ok(())
}
