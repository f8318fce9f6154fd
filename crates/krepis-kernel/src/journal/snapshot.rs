//! Snapshot bytes move in bounded chunks, never whole: a file larger than
//! memory is copied, hashed and checked 1 MiB at a time.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::result::Failure;

const CHUNK: usize = 1024 * 1024;

/// What a streamed copy wrote.
pub struct Copied {
    /// Bytes written.
    pub size: u64,
    /// Their SHA-256.
    pub sha256: Vec<u8>,
}

/// Copies `source` into a new file `dest` (which must not exist), hashing
/// as it goes, gives it `permissions` (if any) and syncs it, data and
/// metadata, to disk. On failure the partial `dest` is removed. (The kernel
/// copies through [`copy_new_with`]; the tests use this.)
#[cfg(test)]
pub fn copy_new(source: &mut impl Read, dest: &Path, permissions: Option<(u32, bool)>) -> io::Result<Copied> {
    copy_new_with(source, dest, permissions, true)
}

/// [`copy_new`], syncing only if `sync`: a caller that copies many files
/// syncs them all at once afterwards ([`sync_files`]).
pub fn copy_new_with(
    source: &mut impl Read,
    dest: &Path,
    permissions: Option<(u32, bool)>,
    sync: bool,
) -> io::Result<Copied> {
    let mut out = OpenOptions::new().write(true).create_new(true).open(dest)?;
    let copied = copy_into(source, &mut out)
        .and_then(|copied| match permissions {
            Some((mode, readonly)) => set_file_permissions(&out, mode, readonly).map(|()| copied),
            None => Ok(copied),
        })
        .and_then(|copied| {
            if sync {
                out.sync_all().map(|()| copied)
            } else {
                Ok(copied)
            }
        });
    if copied.is_err() {
        drop(out);
        let _ = std::fs::remove_file(dest);
    }
    copied
}

thread_local! {
    /// One chunk buffer per thread, reused: a journal copies and hashes
    /// thousands of small files, and a fresh zeroed MiB for each costs more
    /// than the copy.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `body` with the thread's chunk buffer (a fresh one if it is in use).
fn with_buffer<R>(body: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < CHUNK {
                buffer.resize(CHUNK, 0);
            }
            body(&mut buffer[..CHUNK])
        }
        Err(_) => body(&mut vec![0u8; CHUNK]),
    })
}

/// Hashes what `source` holds, 1 MiB at a time.
pub fn hash(source: &mut impl Read) -> io::Result<Copied> {
    with_buffer(|buffer| hash_with(source, buffer))
}

fn hash_with(source: &mut impl Read, buffer: &mut [u8]) -> io::Result<Copied> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match source.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok(Copied {
        size,
        sha256: hasher.finalize().to_vec(),
    })
}

fn copy_into(source: &mut impl Read, out: &mut File) -> io::Result<Copied> {
    with_buffer(|buffer| copy_with(source, out, buffer))
}

fn copy_with(source: &mut impl Read, out: &mut File, buffer: &mut [u8]) -> io::Result<Copied> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match source.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])?;
        size += read as u64;
    }
    Ok(Copied {
        size,
        sha256: hasher.finalize().to_vec(),
    })
}

/// The permission bits to record for a file: the Unix mode, or 0.
pub fn mode_of(permissions: &Permissions) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        permissions.mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = permissions;
        0
    }
}

/// Gives an open file the recorded permissions: the Unix mode, else the
/// read-only attribute.
fn set_file_permissions(file: &File, mode: u32, readonly: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = readonly;
        file.set_permissions(Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut permissions = file.metadata()?.permissions();
        permissions.set_readonly(readonly);
        file.set_permissions(permissions)
    }
}

/// Syncs files written without syncing, and their folders, to disk: on
/// Linux with one `syncfs` of the file system that holds them (one flush of
/// the disk, however many files), elsewhere file by file.
pub fn sync_files(files: &[std::path::PathBuf], folders: &[std::path::PathBuf]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(first) = files.first().or(folders.first()) {
        use std::os::fd::AsRawFd;
        let handle = File::open(first.parent().unwrap_or(first))?;
        // SAFETY: the descriptor is open for the lifetime of `handle`.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 {
            return Ok(());
        }
    }
    for file in files {
        OpenOptions::new().write(true).open(file)?.sync_all()?;
    }
    for folder in folders {
        sync_dir(folder)?;
    }
    Ok(())
}

/// Syncs a directory's entries (a rename or removal in it) to disk. A no-op
/// where directories cannot be opened for syncing (Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The error for a snapshot whose bytes no longer match their hash.
pub fn damaged(path: &str) -> Failure {
    Failure::failed(format!(
        "Cannot restore {path}: its snapshot in .krepis/snapshots is damaged (size or SHA-256 differs)"
    ))
    .with_hint("nothing was changed; the snapshot cannot be trusted, restore the file from elsewhere")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_in_chunks_and_hashes() {
        let dir = std::env::temp_dir().join(format!("krepis-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bytes: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let dest = dir.join("copy");
        let copied = copy_new(&mut bytes.as_slice(), &dest, None).unwrap();
        assert_eq!(copied.size, bytes.len() as u64);
        assert_eq!(copied.sha256, Sha256::digest(&bytes).to_vec());
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert!(
            copy_new(&mut bytes.as_slice(), &dest, None).is_err(),
            "an existing file is never overwritten"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
