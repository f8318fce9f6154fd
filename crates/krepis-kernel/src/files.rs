//! Opening and reading files without hanging, crashing or overfilling
//! memory: shared by `ReadFile` and the journal.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use crate::result::Failure;
use crate::view::{no_room, room, try_buffer};

/// The most bytes read from a file whose reported size is 0 (`/proc` and
/// `/sys` files, some FUSE files): they are read to their end, up to this.
pub(crate) const UNSIZED_CAP: u64 = 64 * 1024 * 1024;

/// Bytes read at a time from a file whose size is not known.
const CHUNK: usize = 64 * 1024;

/// Whether the last path component may be a symbolic link.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Open what the link points to.
    Follow,
    /// Refuse a link (`ELOOP` on Unix).
    Refuse,
}

/// Opens `path` for reading and checks, on the open handle, that it is a
/// regular file: a FIFO or a device is refused without blocking (the open
/// itself is non-blocking on Unix, so a FIFO with no writer cannot hang the
/// caller).
pub fn open_regular(path: &Path, links: Links) -> io::Result<(File, Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK;
        if links == Links::Refuse {
            flags |= libc::O_NOFOLLOW;
        }
        options.custom_flags(flags);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_BACKUP_SEMANTICS: a directory opens too (without it,
        // Windows refuses with "access denied"), so that the type check
        // below refuses it with the same error as on every other OS.
        const BACKUP_SEMANTICS: u32 = 0x0200_0000;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a symbolic link itself, so
        // that the type check below sees and refuses it.
        const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        options.custom_flags(if links == Links::Refuse {
            BACKUP_SEMANTICS | OPEN_REPARSE_POINT
        } else {
            BACKUP_SEMANTICS
        });
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file"));
    }
    #[cfg(unix)]
    clear_nonblocking(&file)?;
    Ok((file, metadata))
}

/// Regular files ignore O_NONBLOCK, but the handle is made blocking again so
/// that it behaves like any other.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fd is open for the lifetime of `file`; F_GETFL/F_SETFL only
    // read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a regular file whole into memory allocated without aborting: at
/// most the length it had when opened (a file that grows meanwhile is cut
/// there, one that shrinks is read to its new end). A file whose reported
/// size is 0 is read to its end, up to [`UNSIZED_CAP`] bytes.
pub fn read_whole(path: &Path, links: Links, what: &str) -> Result<Vec<u8>, Failure> {
    let shown = path.display();
    let (file, metadata) = open_regular(path, links)
        .map_err(|err| Failure::failed(format!("Cannot read {what} {shown}: {}", describe(&err))))?;
    if metadata.len() == 0 {
        return read_unsized(file, &format!("{what} {shown}"));
    }
    let mut bytes = try_buffer(metadata.len(), &format!("{what} {shown}"))?;
    file.take(metadata.len())
        .read_to_end(&mut bytes)
        .map_err(|err| Failure::failed(format!("Cannot read {what} {shown}: {}", describe(&err))))?;
    Ok(bytes)
}

/// Reads a file that reports size 0 to its end, in chunks allocated
/// without aborting, up to [`UNSIZED_CAP`] and the memory there is room for.
fn read_unsized(mut file: File, what: &str) -> Result<Vec<u8>, Failure> {
    let room = room();
    let cap = room.map_or(UNSIZED_CAP, |room| room.min(UNSIZED_CAP));
    let mut bytes = Vec::new();
    loop {
        if bytes.len() as u64 > cap {
            return Err(match room {
                Some(room) if room < UNSIZED_CAP => no_room(bytes.len() as u64, room, what),
                _ => Failure::failed(format!(
                    "Cannot read {what}: it reports a size of 0 but holds more than {UNSIZED_CAP} bytes"
                ))
                .with_hint("read it as a stream instead"),
            });
        }
        bytes.try_reserve(CHUNK).map_err(|_| {
            Failure::failed(format!("Cannot read {what}: it does not fit in memory"))
                .with_hint("read it in parts instead")
        })?;
        let start = bytes.len();
        bytes.resize(start + CHUNK, 0);
        let n = loop {
            match file.read(&mut bytes[start..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match n {
            Ok(0) => {
                bytes.truncate(start);
                return Ok(bytes);
            }
            Ok(n) => bytes.truncate(start + n),
            Err(err) => return Err(Failure::failed(format!("Cannot read {what}: {}", describe(&err)))),
        }
    }
}

/// An I/O error as a short clause: "no such file", "permission denied", …
pub fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::StorageFull => "the disk is full".to_owned(),
        _ if is_symlink_refusal(err) => "it is a symbolic link".to_owned(),
        _ => err.to_string(),
    }
}

fn is_symlink_refusal(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_and_refuses_a_directory() {
        let dir = std::env::temp_dir().join(format!("krepis-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.txt");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_whole(&file, Links::Follow, "file").unwrap(), b"hello");
        let err = read_whole(&dir, Links::Follow, "file").unwrap_err();
        assert!(err.message.contains("not a regular file"), "{}", err.message);
        let err = read_whole(&dir.join("missing"), Links::Follow, "file").unwrap_err();
        assert!(err.message.ends_with("no such file"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_reports_size_0_is_read_to_its_end() {
        let path = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        let bytes = read_whole(path, Links::Follow, "file").unwrap();
        assert!(String::from_utf8(bytes).unwrap().contains("\nVmRSS:"));
        let empty = std::env::temp_dir().join(format!("krepis-empty-{}", std::process::id()));
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(read_whole(&empty, Links::Follow, "file").unwrap(), b"");
        std::fs::remove_file(&empty).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_fifo_without_blocking_and_a_link_when_asked() {
        let dir = std::env::temp_dir().join(format!("krepis-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: name is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let err = read_whole(&fifo, Links::Follow, "file").unwrap_err();
        assert!(err.message.contains("not a regular file"), "{}", err.message);
        let target = dir.join("t");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_whole(&link, Links::Follow, "file").unwrap(), b"x");
        let err = read_whole(&link, Links::Refuse, "file").unwrap_err();
        assert!(err.message.ends_with("it is a symbolic link"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
