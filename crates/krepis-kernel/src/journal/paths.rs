//! Which paths a journal may touch: files inside its project root, never
//! outside it (through `..` or a symbolic link), never inside `.krepis/`.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::result::Failure;

/// The journal's own folder inside the project root.
pub const JOURNAL_DIR: &str = ".krepis";

/// A project root, with every symbolic link resolved.
#[derive(Clone, Debug)]
pub struct Root {
    canonical: PathBuf,
}

/// A file inside the root: its portable name and where it is on this disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    /// Relative to the root, components joined by `/`.
    pub relative: String,
    /// The absolute path (its parent directory with links resolved).
    pub absolute: PathBuf,
}

impl Root {
    /// Resolves `root`, which must be an existing directory.
    pub fn new(root: &str) -> Result<Self, Failure> {
        let canonical = std::fs::canonicalize(root).map_err(|err| {
            Failure::failed(format!(
                "Cannot open the journal of {root}: {}",
                crate::files::describe(&err)
            ))
        })?;
        if !canonical.is_dir() {
            return Err(Failure::failed(format!(
                "Cannot open the journal of {root}: it is not a directory"
            )));
        }
        Ok(Self { canonical })
    }

    /// The resolved root.
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// The resolved root as a caller would write it (no `\\?\` on Windows).
    pub fn display(&self) -> String {
        plain(&self.canonical)
    }

    /// `<root>/.krepis`.
    pub fn journal_dir(&self) -> PathBuf {
        self.canonical.join(JOURNAL_DIR)
    }

    /// Resolves `input` (relative to the root, or absolute) to a file inside
    /// the root. Refused: a path that leaves the root lexically (`..`) or
    /// physically (a directory on the way is a link to elsewhere), the root
    /// itself, and anything in `.krepis/`. The last component is not
    /// resolved: it may be absent, and links there are the caller's to
    /// refuse or replace.
    pub fn resolve(&self, input: &str) -> Result<Inside, Failure> {
        let refuse = |why: &str| Failure::failed(format!("Cannot track {input}: {why}"));
        if input.is_empty() {
            return Err(refuse("the path is empty"));
        }
        let given = Path::new(input);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.canonical.join(given)
        };
        // The last component must name a file; `..` and `.` are left to the
        // OS below, which resolves each link before the `..` after it (a
        // textual `a/../b` would be wrong when `a` is a link).
        let name = match joined.components().next_back() {
            Some(Component::Normal(name)) => name.to_owned(),
            _ => return Err(refuse("it names no file")),
        };
        let parent = joined.parent().ok_or_else(|| refuse("it names no file"))?;
        let physical_parent = resolve_existing(parent)
            .map_err(|err| Failure::failed(format!("Cannot track {input}: {}", crate::files::describe(&err))))?;
        let mut absolute = physical_parent.join(&name);
        // An existing file is named as the file system stores it, so that
        // two spellings of one file on a case-insensitive disk (macOS,
        // Windows) are one entry. A link is left as it is: callers refuse or
        // replace links, never follow them.
        if let Ok(metadata) = std::fs::symlink_metadata(&absolute)
            && !metadata.file_type().is_symlink()
            && let Ok(real) = std::fs::canonicalize(&absolute)
        {
            absolute = real;
        }
        let outside = || {
            Failure::failed(format!(
                "Cannot track {input}: it is outside the project root {}",
                self.display()
            ))
            .with_hint("track files inside the root the journal was opened for")
        };
        let relative = absolute.strip_prefix(&self.canonical).map_err(|_| outside())?;
        let parts: Vec<String> = relative
            .components()
            .map(|part| match part {
                Component::Normal(part) => part
                    .to_str()
                    .map(ToOwned::to_owned)
                    .ok_or_else(|| refuse("its name is not valid Unicode")),
                _ => Err(outside()),
            })
            .collect::<Result<_, _>>()?;
        if parts.is_empty() {
            return Err(refuse("it is the project root itself"));
        }
        if parts[0].eq_ignore_ascii_case(JOURNAL_DIR) {
            return Err(refuse("the journal's own folder .krepis/ cannot be tracked"));
        }
        Ok(Inside {
            relative: parts.join("/"),
            absolute,
        })
    }

    /// Resolves a relative name stored in the journal, checking again that
    /// it is still inside the root (a folder on its way may have become a
    /// link since it was tracked).
    pub fn resolve_stored(&self, relative: &str) -> Result<Inside, Failure> {
        if relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(Failure::failed(format!(
                "Cannot restore {relative}: the journal holds a malformed path"
            )));
        }
        let native: PathBuf = relative.split('/').collect();
        self.resolve(native.to_str().unwrap_or(relative))
            .map_err(|failure| Failure {
                message: failure.message.replacen("Cannot track", "Cannot restore", 1),
                ..failure
            })
    }
}

/// `dir` with its deepest existing ancestor resolved by the OS (links
/// followed, `.` and `..` taken in order) and the components that do not
/// exist yet appended; those must be plain names (a `..` after a folder that
/// does not exist is refused, as the OS would).
fn resolve_existing(dir: &Path) -> io::Result<PathBuf> {
    let mut existing = dir;
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(resolved) => {
                let mut out = resolved;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(Component::Normal(name))) =
                    (existing.parent(), existing.components().next_back())
                else {
                    return Err(err);
                };
                missing.push(name.to_owned());
                existing = parent;
            }
            Err(err) => return Err(err),
        }
    }
}

/// A path as a person writes it: Windows' verbatim `\\?\C:\` prefix, which
/// `canonicalize` adds, is dropped when the path needs none.
pub fn plain(path: &Path) -> String {
    let text = path.to_string_lossy();
    match text.strip_prefix(r"\\?\") {
        Some(rest) if rest.as_bytes().get(1) == Some(&b':') => rest.to_owned(),
        _ => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> (PathBuf, Root) {
        let dir = std::env::temp_dir().join(format!("krepis-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let root = Root::new(dir.to_str().unwrap()).unwrap();
        (dir, root)
    }

    #[test]
    fn relative_and_absolute_paths_inside_resolve_alike() {
        let (dir, root) = temp_root("inside");
        let a = root.resolve("src/./a.txt").unwrap();
        let b = root
            .resolve(root.path().join("src").join("a.txt").to_str().unwrap())
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.relative, "src/a.txt");
        assert_eq!(root.resolve("new/dir/file").unwrap().relative, "new/dir/file");
        assert_eq!(root.resolve("src/../top").unwrap().relative, "top");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn paths_leaving_the_root_are_refused() {
        let (dir, root) = temp_root("outside");
        for input in [
            "../x",
            "src/../../x",
            "..",
            ".",
            "",
            ".krepis/journal/db",
            "/etc/passwd",
        ] {
            assert!(root.resolve(input).is_err(), "{input} was accepted");
        }
        let outside = std::env::temp_dir().join("krepis-paths-elsewhere");
        assert!(root.resolve(outside.to_str().unwrap()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_folder_pointing_outside_is_refused() {
        let (dir, root) = temp_root("link");
        std::os::unix::fs::symlink(std::env::temp_dir(), dir.join("escape")).unwrap();
        let err = root.resolve("escape/file").unwrap_err();
        assert!(err.render().contains("outside the project root"), "{}", err.render());
        std::os::unix::fs::symlink(dir.join("src"), dir.join("inner")).unwrap();
        assert_eq!(root.resolve("inner/file").unwrap().relative, "src/file");
        // `..` after a link goes up from where the link points, as the OS
        // does: here out of the root.
        let deep = std::env::temp_dir().join(format!("krepis-paths-deep-{}", std::process::id()));
        std::fs::create_dir_all(deep.join("deeper")).unwrap();
        std::os::unix::fs::symlink(deep.join("deeper"), dir.join("lnk")).unwrap();
        let err = root.resolve("lnk/../x.txt").unwrap_err();
        assert!(err.render().contains("outside the project root"), "{}", err.render());
        assert_eq!(root.resolve("inner/../top.txt").unwrap().relative, "top.txt");
        std::fs::remove_dir_all(deep).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stored_paths_are_checked_again() {
        let (dir, root) = temp_root("stored");
        assert_eq!(root.resolve_stored("src/a.txt").unwrap().relative, "src/a.txt");
        for bad in ["../x", "a//b", "", "./a"] {
            assert!(root.resolve_stored(bad).is_err(), "{bad} was accepted");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
