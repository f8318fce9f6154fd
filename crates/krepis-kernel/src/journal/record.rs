//! The commit record: `.krepis/commits`, an append-only file beside the
//! sled store that says, independently of it, which transactions were
//! committed (with their entries) and which were forgotten since.
//!
//! Each record is framed as `length (u32, little-endian) | the first 8
//! bytes of its SHA-256 | payload`, and the file is fsynced after every
//! append. sled is written first and the record second, so the record
//! never claims more than sled was told; at every open the journal checks
//! that sled holds every transaction the record says is committed. A store
//! that lost some (sled drops what follows damage in its log as a "torn
//! tail") is refused, never rolled back over the user's files, and
//! `krepis undo --repair` rebuilds it from this record.
//!
//! The record is also what `krepis undo --list` reads: it needs no lock and
//! creates nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use prost::Message;
use sha2::Digest;

use super::store::Transaction;
use crate::files::{Links, describe, open_regular};
use crate::result::Failure;

/// The first bytes of the file: what it is and its format.
pub const MAGIC: &[u8] = b"krepis journal commits, format 2\n";

/// The most a commit record may hold: a bound on what an open reads.
const MOST: u64 = 1 << 32;

/// One record.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// A transaction committed, with its entries.
    #[prost(message, optional, tag = "1")]
    pub committed: Option<Transaction>,
    /// Transactions forgotten (undone, rolled back, pruned).
    #[prost(uint64, repeated, tag = "2")]
    pub forgotten: Vec<u64>,
}

/// What the commit record says.
#[derive(Default)]
pub struct Log {
    /// Transactions committed and not forgotten, by id.
    pub live: BTreeMap<u64, Transaction>,
    /// Ids forgotten.
    pub forgotten: BTreeSet<u64>,
    /// The highest transaction id and commit sequence it names.
    pub max_id: u64,
    /// The highest commit sequence.
    pub max_sequence: u64,
    /// Bytes of whole records (after them: a torn tail, if any).
    pub valid: u64,
    /// Bytes of the live transactions' records, to decide on compaction.
    pub live_bytes: u64,
}

impl Log {
    /// The records a new commit record holds for what this one says: each
    /// live transaction, then every id forgotten (a damaged tail and the
    /// records of forgotten transactions are left out).
    pub fn records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .live
            .values()
            .map(|t| Record {
                committed: Some(t.clone()),
                forgotten: Vec::new(),
            })
            .collect();
        records.push(Record {
            committed: None,
            forgotten: self.forgotten.iter().copied().collect(),
        });
        records
    }
}

/// The error for a commit record that cannot be trusted.
pub fn damaged(shown: &str, why: &str) -> Failure {
    Failure::failed(format!("Cannot open the journal in {shown}: its commit record .krepis/commits {why}; nothing was changed")).with_hint("`krepis undo --repair` rebuilds the journal from what can be read, keeping the snapshots; or move .krepis away (its undo history is lost)")
}

/// Reads the commit record at `path`. `strict`: a torn last record (a
/// writer killed mid-append, or one appending now) is allowed either way;
/// a record whose checksum fails is refused unless `!strict`, when reading
/// stops there (a repair keeps what precedes it).
pub fn read(path: &Path, shown: &str, strict: bool) -> Result<Log, Failure> {
    let (file, metadata) = open_regular(path, Links::Refuse)
        .map_err(|err| damaged(shown, &format!("cannot be read ({})", describe(&err))))?;
    let length = metadata.len();
    if length > MOST {
        return Err(damaged(shown, "is larger than any the journal writes"));
    }
    refuse_what_would_not_fit(&metadata, shown)?;
    // Read one frame at a time: the file is never held whole beside what it
    // decodes to.
    let mut reader = std::io::BufReader::new(file.take(MOST));
    let unreadable = |err: std::io::Error| damaged(shown, &format!("cannot be read ({})", describe(&err)));
    let mut magic = vec![0; MAGIC.len()];
    if fill(&mut reader, &mut magic).map_err(unreadable)? != MAGIC.len() || magic != MAGIC {
        return Err(damaged(shown, "does not start as one written by this Krepis"));
    }
    let mut log = Log::default();
    let mut at = MAGIC.len() as u64;
    let mut sizes: BTreeMap<u64, u64> = BTreeMap::new();
    let mut payload = Vec::new();
    loop {
        log.valid = at;
        let mut head = [0u8; 12];
        if fill(&mut reader, &mut head).map_err(unreadable)? < head.len() {
            break; // the end, or a torn head
        }
        let frame_length = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
        if at + 12 + frame_length > length {
            break; // a torn last record: its bytes never all reached the disk
        }
        payload.clear();
        (&mut reader)
            .take(frame_length)
            .read_to_end(&mut payload)
            .map_err(unreadable)?;
        if (payload.len() as u64) < frame_length {
            break;
        }
        if sha2::Sha256::digest(&payload)[..8] != head[4..12] {
            if strict {
                return Err(damaged(shown, &format!("is damaged at byte {at} (a checksum fails)")));
            }
            break;
        }
        let record = Record::decode(payload.as_slice())
            .map_err(|err| damaged(shown, &format!("holds a record it cannot decode ({err})")))?;
        if let Some(transaction) = record.committed {
            let header = transaction.head();
            log.max_id = log.max_id.max(header.id);
            log.max_sequence = log.max_sequence.max(header.sequence);
            sizes.insert(header.id, 12 + frame_length);
            log.live.insert(header.id, transaction);
        }
        for id in record.forgotten {
            log.max_id = log.max_id.max(id);
            log.live.remove(&id);
            sizes.remove(&id);
            log.forgotten.insert(id);
        }
        at += 12 + frame_length;
    }
    log.live_bytes = sizes.values().sum();
    Ok(log)
}

/// Reads into `buffer` until it is full or the input ends; returns how
/// many bytes were read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut read = 0;
    while read < buffer.len() {
        match reader.read(&mut buffer[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(read)
}

/// Refuses a commit record that would take more memory than this process
/// may still use, or that is sparse (the journal only appends whole
/// records, so its file never has holes; a large sparse file costs an
/// attacker nothing on disk and the reader its memory).
fn refuse_what_would_not_fit(metadata: &std::fs::Metadata, shown: &str) -> Result<(), Failure> {
    let length = metadata.len();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Allocated bytes well below the length: holes. Small files are
        // left alone (a file system may keep them inline).
        if length > 1 << 20 && metadata.blocks().saturating_mul(512) < length / 2 {
            return Err(damaged(
                shown,
                "has holes (a sparse file), which the journal never writes",
            ));
        }
    }
    // What it decodes to takes about as much as the file: half of what is
    // free leaves room for the rest of the process.
    if let Some(free) = crate::memory::available()
        && length > free / 2
    {
        return Err(damaged(
            shown,
            &format!("is {length} bytes, more than this process can read with {free} bytes of memory free"),
        ));
    }
    Ok(())
}

fn frame(record: &Record) -> Vec<u8> {
    let payload = record.encode_to_vec();
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&sha2::Sha256::digest(&payload)[..8]);
    out.extend_from_slice(&payload);
    out
}

fn open_for_writing(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // A hard link would let an append reach a file outside the project.
        if metadata.nlink() > 1 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it has another name (a hard link), which the journal never makes",
            ));
        }
    }
    Ok(file)
}

/// Appends `records` after the first `valid` bytes (a torn tail is cut
/// first) and syncs the file. Returns the new valid length.
pub fn append(path: &Path, valid: u64, records: &[Record]) -> Result<u64, Failure> {
    let fail = |err: std::io::Error| {
        Failure::failed(format!("Cannot save the journal's commit record: {}", describe(&err)))
            .with_hint("check the disk; the next open writes what is missing")
    };
    let mut file = open_for_writing(path).map_err(fail)?;
    if file.metadata().map_err(fail)?.len() != valid {
        file.set_len(valid).map_err(fail)?;
    }
    file.seek(SeekFrom::Start(valid)).map_err(fail)?;
    let mut bytes = Vec::new();
    for record in records {
        bytes.extend_from_slice(&frame(record));
    }
    if let Err(err) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
        // What did not fit is cut again, so the record stays whole.
        let _ = file.set_len(valid);
        return Err(fail(err));
    }
    Ok(valid + bytes.len() as u64)
}

/// Writes a new commit record holding `records` (atomically: a new file
/// renamed over the old one, both synced). Returns its length.
pub fn write_new(path: &Path, records: &[Record]) -> Result<u64, Failure> {
    let fail =
        |err: std::io::Error| Failure::failed(format!("Cannot write the journal's commit record: {}", describe(&err)));
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut bytes = MAGIC.to_vec();
    for record in records {
        bytes.extend_from_slice(&frame(record));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(fail)?;
    if let Err(err) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(&partial);
        return Err(fail(err));
    }
    std::fs::rename(&partial, path).map_err(fail)?;
    if let Some(parent) = path.parent() {
        super::snapshot::sync_dir(parent).map_err(fail)?;
    }
    Ok(bytes.len() as u64)
}
