//! The journal's records in sled: transactions, their entries, the one
//! restore plan, and the id counters.
//!
//! sled holds the small, transactional part (what was tracked, what is
//! committed, what an undo is doing); the snapshots' bytes are files under
//! `.krepis/snapshots/<transaction>/<entry>`, written and read in streaming
//! fashion so that a file larger than memory can be tracked. Each entry is
//! stored under its own key (`track` writes one small record, never the
//! whole transaction again). Every change is flushed (fsync) before the
//! journal acts on it. What was committed is also kept, independently, in
//! the commit record ([`super::record`]), which is checked against this
//! store at every open.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use prost::Message;

use crate::result::{Failure, KrepisResult};

/// The store's format: written at creation, checked at every open.
pub(crate) const FORMAT: u64 = 2;

/// One tracked file: as it was before its transaction changed it, and (once
/// committed) as the transaction left it.
#[derive(Clone, PartialEq, Message)]
pub struct Entry {
    /// Relative to the root, `/` between components.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Whether the file existed when tracked (if not, undo removes it).
    #[prost(bool, tag = "2")]
    pub existed: bool,
    /// Its length in bytes.
    #[prost(uint64, tag = "3")]
    pub size: u64,
    /// Unix permission bits (0 elsewhere).
    #[prost(uint32, tag = "4")]
    pub mode: u32,
    /// The read-only attribute.
    #[prost(bool, tag = "5")]
    pub readonly: bool,
    /// SHA-256 of its bytes, checked before they are restored.
    #[prost(bytes = "vec", tag = "6")]
    pub sha256: Vec<u8>,
    /// Its place among every entry of the journal, in tracking order (the
    /// earliest snapshot of a path wins when transactions overlap).
    #[prost(uint64, tag = "7")]
    pub order: u64,
    /// Whether `uid` and `gid` were recorded (Unix).
    #[prost(bool, tag = "8")]
    pub owned: bool,
    /// The owner's user id.
    #[prost(uint32, tag = "9")]
    pub uid: u32,
    /// The owner's group id.
    #[prost(uint32, tag = "10")]
    pub gid: u32,
    /// What the transaction left, recorded at commit.
    #[prost(message, optional, tag = "11")]
    pub after: Option<State>,
}

/// What a file was at one moment: absent, or its size, hash and mode.
#[derive(Clone, PartialEq, Message)]
pub struct State {
    /// Whether it existed.
    #[prost(bool, tag = "1")]
    pub exists: bool,
    /// Its length in bytes.
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// SHA-256 of its bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub sha256: Vec<u8>,
    /// Unix permission bits (0 elsewhere).
    #[prost(uint32, tag = "4")]
    pub mode: u32,
    /// Something other than a regular file stands there (a folder, a link).
    #[prost(bool, tag = "5")]
    pub other: bool,
}

/// A transaction's header: open until committed. Its entries are stored
/// under their own keys.
#[derive(Clone, PartialEq, Message)]
pub struct Header {
    /// Its id (the journal's own counter: 1, 2, 3, …).
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The caller's message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// When it was committed, in milliseconds since the Unix epoch.
    #[prost(uint64, tag = "3")]
    pub time_ms: u64,
    /// Whether it was committed.
    #[prost(bool, tag = "4")]
    pub committed: bool,
    /// How many entries it has.
    #[prost(uint64, tag = "5")]
    pub count: u64,
    /// Its place in commit order (undo takes the highest first).
    #[prost(uint64, tag = "6")]
    pub sequence: u64,
}

/// A transaction with its entries, in the order they were tracked.
#[derive(Clone, PartialEq, Message)]
pub struct Transaction {
    /// The header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
    /// The entries; entry `i`'s snapshot is `snapshots/<id>/<i>`.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<Entry>,
}

impl Transaction {
    /// The header (always present in what the journal writes).
    pub fn head(&self) -> &Header {
        static EMPTY: Header = Header {
            id: 0,
            message: String::new(),
            time_ms: 0,
            committed: false,
            count: 0,
            sequence: 0,
        };
        self.header.as_ref().unwrap_or(&EMPTY)
    }

    /// Its id.
    pub fn id(&self) -> u64 {
        self.head().id
    }
}

/// One file an undo or rollback writes back (or removes).
#[derive(Clone, PartialEq, Message)]
pub struct Item {
    /// The entry to restore.
    #[prost(message, optional, tag = "1")]
    pub entry: Option<Entry>,
    /// The transaction whose snapshot folder holds the entry's blob.
    #[prost(uint64, tag = "2")]
    pub transaction: u64,
    /// The entry's index in that transaction (its blob's name).
    #[prost(uint64, tag = "3")]
    pub index: u64,
}

/// An undo or rollback in progress: recorded before any file is staged,
/// marked `applying` once every staged copy is complete, removed when done.
#[derive(Clone, PartialEq, Message)]
pub struct Plan {
    /// A random tag; with an item's index it names the item's staged copy
    /// (fixed length, derived, never read back as a path).
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    /// A rollback of an uncommitted transaction (else an undo).
    #[prost(bool, tag = "2")]
    pub rollback: bool,
    /// The transactions it undoes, newest first.
    #[prost(uint64, repeated, tag = "3")]
    pub transactions: Vec<u64>,
    /// The files it restores.
    #[prost(message, repeated, tag = "4")]
    pub items: Vec<Item>,
    /// Every staged copy is complete: the plan is being applied.
    #[prost(bool, tag = "5")]
    pub applying: bool,
}

const PLAN_KEY: &[u8] = b"plan";
const FORMAT_KEY: &[u8] = b"format";
const NEXT_ID_KEY: &[u8] = b"next-id";
const NEXT_SEQUENCE_KEY: &[u8] = b"next-sequence";
const NEXT_ORDER_KEY: &[u8] = b"next-order";

/// How many times, and how long, `open` waits for a lock still held by this process.
const LOCK_WAITS: u32 = 10;
const LOCK_WAIT_MS: u64 = 20;

/// The sled database of one project's journal, opened exclusively.
pub struct Store {
    db: sled::Db,
    headers: sled::Tree,
    entries: sled::Tree,
    paths: sled::Tree,
    meta: sled::Tree,
    /// An I/O error (a full disk) was seen: sled refuses every later call
    /// until it is opened again, which the journal does before its next call.
    broken: AtomicBool,
}

/// The error for a store sled cannot use.
pub fn store_error(action: &str, err: impl std::fmt::Display) -> Failure {
    Failure::failed(format!("Cannot {action}: the journal's store failed ({err})")).with_hint("check the disk; if .krepis/journal is damaged, `krepis undo --repair` rebuilds it from the commit record, keeping the snapshots")
}

/// The error for a store written by the previous format (no commit record).
pub fn old_format(shown: &str) -> Failure {
    Failure::failed(format!("Cannot open the journal in {shown}: it was written by an older Krepis (no commit record, format 1)")).with_hint("undo with the Krepis that wrote it, or move .krepis away (its undo history is lost); this one does not read it")
}

fn entry_key(id: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn path_key(id: u64, path: &str) -> Vec<u8> {
    let mut key = id.to_be_bytes().to_vec();
    key.extend_from_slice(path.as_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

impl Store {
    /// Opens (or creates) the database in `dir`. Another process holding it
    /// gives `KREPIS_RESULT_BUSY`; a store sled cannot read (it panics on
    /// some damage) is a `JournalError`, never a crash.
    pub fn open(dir: &Path, shown: &str) -> Result<Self, Failure> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            // Small segments: the file grows (and is reused) in 64 KiB steps, not
            // 512 KiB ones, so a journal of a few records stays small.
            .segment_size(64 * 1024)
            // No background flusher thread: every change is flushed by the
            // journal itself before it acts on it.
            .flush_every_ms(None);
        // A database this process dropped a moment ago can still hold its
        // lock while other threads use sled (seen once in the kernel's
        // parallel tests); a few short waits tell that from another process.
        let mut waits = 0;
        let opened = loop {
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
                .unwrap_or_else(|_| Err(sled::Error::Unsupported("sled could not read it".to_owned())));
            match attempt {
                Err(err) if waits < LOCK_WAITS && err.to_string().contains("could not acquire lock") => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(LOCK_WAIT_MS));
                }
                other => break other,
            }
        };
        let db = opened.map_err(|err| {
            let text = err.to_string();
            if text.contains("cannot change the io buffer size") {
                // Stores of this format are made with the segment size above.
                old_format(shown)
            } else if text.contains("could not acquire lock") {
                Failure::new(KrepisResult::Busy, format!("Cannot open the journal in {shown}: another process has it open")).with_hint("wait until that process closes its journal (or ends), then retry; `krepis undo --list` works meanwhile")
            } else {
                store_error("open the journal", text)
            }
        })?;
        // A store of the previous format is refused before anything is
        // added to it.
        if db.tree_names().iter().any(|name| name.as_ref() == b"transactions") {
            return Err(old_format(shown));
        }
        let tree = |name: &str| db.open_tree(name).map_err(|err| store_error("open the journal", err));
        let store = Self {
            headers: tree("headers")?,
            entries: tree("entries")?,
            paths: tree("paths")?,
            meta: tree("meta")?,
            db,
            broken: AtomicBool::new(false),
        };
        Ok(store)
    }

    /// Whether the store holds nothing of any format (a new journal).
    pub fn is_new(&self) -> Result<bool, Failure> {
        let names = self.db.tree_names();
        let old = names.iter().any(|name| name.as_ref() == b"transactions");
        Ok(!old && self.meta.is_empty() && self.headers.is_empty())
    }

    /// The format recorded in the store (0: none, an older Krepis).
    pub fn format(&self) -> Result<u64, Failure> {
        Ok(self
            .meta
            .get(FORMAT_KEY)
            .map_err(|err| self.fail("read the journal", err))?
            .and_then(|bytes| be_u64(&bytes))
            .unwrap_or(0))
    }

    /// Records this format in a new store and flushes.
    pub fn mark_format(&self) -> Result<(), Failure> {
        self.meta
            .insert(FORMAT_KEY, &FORMAT.to_be_bytes())
            .map_err(|err| self.fail("create the journal", err))?;
        self.flush()
    }

    /// Whether an I/O error made sled refuse further calls.
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    fn fail(&self, action: &str, err: sled::Error) -> Failure {
        if matches!(err, sled::Error::Io(_)) {
            self.broken.store(true, Ordering::Relaxed);
        }
        let text = match &err {
            sled::Error::Io(io) => crate::files::describe(io),
            other => other.to_string(),
        };
        store_error(action, text)
    }

    fn counter(&self, key: &[u8], floor: u64) -> Result<u64, Failure> {
        let stored = self
            .meta
            .get(key)
            .map_err(|err| self.fail("read the journal", err))?
            .and_then(|bytes| be_u64(&bytes))
            .unwrap_or(1);
        let next = stored.max(floor).max(1);
        self.meta
            .insert(key, &(next + 1).to_be_bytes())
            .map_err(|err| self.fail("save the journal", err))?;
        Ok(next)
    }

    /// The next transaction id: 1, 2, 3, …, never below `floor` (the commit
    /// record's highest id + 1, so that a store that lost its tail never
    /// gives an id twice). Written with the next flush.
    pub fn next_id(&self, floor: u64) -> Result<u64, Failure> {
        self.counter(NEXT_ID_KEY, floor)
    }

    /// The next place in commit order.
    pub fn next_sequence(&self, floor: u64) -> Result<u64, Failure> {
        self.counter(NEXT_SEQUENCE_KEY, floor)
    }

    /// The next place in tracking order.
    pub fn next_order(&self) -> Result<u64, Failure> {
        self.counter(NEXT_ORDER_KEY, 1)
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), Failure> {
        self.db
            .flush()
            .map(drop)
            .map_err(|err| self.fail("save the journal", err))
    }

    /// The header of transaction `id`, if recorded.
    pub fn header(&self, id: u64) -> Result<Option<Header>, Failure> {
        let value = self
            .headers
            .get(id.to_be_bytes())
            .map_err(|err| self.fail("read the journal", err))?;
        value.map(|bytes| decode::<Header>(&bytes, "a transaction")).transpose()
    }

    /// Records `header` and flushes.
    pub fn put_header(&self, header: &Header) -> Result<(), Failure> {
        self.headers
            .insert(header.id.to_be_bytes(), header.encode_to_vec())
            .map_err(|err| self.fail("save the journal", err))?;
        self.flush()
    }

    /// The index of `path`'s entry in transaction `id`, if tracked.
    pub fn entry_index(&self, id: u64, path: &str) -> Result<Option<u64>, Failure> {
        Ok(self
            .paths
            .get(path_key(id, path))
            .map_err(|err| self.fail("read the journal", err))?
            .and_then(|bytes| be_u64(&bytes)))
    }

    /// Entry `index` of transaction `id`.
    pub fn entry(&self, id: u64, index: u64) -> Result<Option<Entry>, Failure> {
        let value = self
            .entries
            .get(entry_key(id, index))
            .map_err(|err| self.fail("read the journal", err))?;
        value.map(|bytes| decode::<Entry>(&bytes, "an entry")).transpose()
    }

    /// Adds `entry` as entry `header.count` of its transaction and counts it
    /// in `header` (written, with the flush, by the caller): a few small
    /// records, whatever the size of the transaction.
    pub fn add_entry_unflushed(&self, header: &mut Header, entry: &Entry) -> Result<u64, Failure> {
        let index = header.count;
        self.entries
            .insert(entry_key(header.id, index), entry.encode_to_vec())
            .map_err(|err| self.fail("save the journal", err))?;
        self.paths
            .insert(path_key(header.id, &entry.path), &index.to_be_bytes())
            .map_err(|err| self.fail("save the journal", err))?;
        header.count += 1;
        Ok(index)
    }

    /// Replaces entry `index` of transaction `id` (not flushed).
    pub fn set_entry(&self, id: u64, index: u64, entry: &Entry) -> Result<(), Failure> {
        self.entries
            .insert(entry_key(id, index), entry.encode_to_vec())
            .map_err(|err| self.fail("save the journal", err))?;
        Ok(())
    }

    /// Transaction `id` with its entries, if recorded.
    pub fn transaction(&self, id: u64) -> Result<Option<Transaction>, Failure> {
        let Some(header) = self.header(id)? else {
            return Ok(None);
        };
        // Entries past the header's count are of a track the process did
        // not finish (killed before its snapshots were synced): not part
        // of the transaction, and overwritten by the next track.
        let entries = self
            .entries
            .range(entry_key(id, 0)..entry_key(id, header.count))
            .map(|pair| {
                let (_, bytes) = pair.map_err(|err| self.fail("read the journal", err))?;
                decode::<Entry>(&bytes, "an entry")
            })
            .collect::<Result<Vec<_>, _>>()?;
        if entries.len() as u64 != header.count {
            return Err(Failure::failed(format!(
                "Cannot read transaction {id}: the journal's store holds {} of its {} entries; nothing was changed",
                entries.len(),
                header.count
            ))
            .with_hint("`krepis undo --repair` rebuilds the store from the commit record, keeping the snapshots"));
        }
        Ok(Some(Transaction {
            header: Some(header),
            entries,
        }))
    }

    /// Every transaction header, oldest id first.
    pub fn headers(&self) -> Result<Vec<Header>, Failure> {
        self.headers
            .iter()
            .map(|pair| {
                let (_, bytes) = pair.map_err(|err| self.fail("read the journal", err))?;
                decode::<Header>(&bytes, "a transaction")
            })
            .collect()
    }

    /// Writes a whole transaction (header and entries), as a repair does.
    pub fn put_transaction(&self, transaction: &Transaction) -> Result<(), Failure> {
        let header = transaction.head();
        for (index, entry) in transaction.entries.iter().enumerate() {
            self.set_entry(header.id, index as u64, entry)?;
            self.paths
                .insert(path_key(header.id, &entry.path), &(index as u64).to_be_bytes())
                .map_err(|err| self.fail("save the journal", err))?;
        }
        self.put_header(header)
    }

    /// Removes transactions (headers, entries, paths) and the plan, and
    /// flushes.
    pub fn remove(&self, ids: &[u64], plan_too: bool) -> Result<(), Failure> {
        for id in ids {
            for tree in [&self.entries, &self.paths] {
                let keys: Vec<_> = tree
                    .scan_prefix(id.to_be_bytes())
                    .keys()
                    .collect::<Result<_, _>>()
                    .map_err(|err| self.fail("save the journal", err))?;
                for key in keys {
                    tree.remove(key).map_err(|err| self.fail("save the journal", err))?;
                }
            }
            self.headers
                .remove(id.to_be_bytes())
                .map_err(|err| self.fail("save the journal", err))?;
        }
        if plan_too {
            self.meta
                .remove(PLAN_KEY)
                .map_err(|err| self.fail("save the journal", err))?;
        }
        self.flush()
    }

    /// The restore plan in progress, if any.
    pub fn plan(&self) -> Result<Option<Plan>, Failure> {
        let value = self
            .meta
            .get(PLAN_KEY)
            .map_err(|err| self.fail("read the journal", err))?;
        value
            .map(|bytes| decode::<Plan>(&bytes, "the restore plan"))
            .transpose()
    }

    /// Records `plan` and flushes.
    pub fn put_plan(&self, plan: &Plan) -> Result<(), Failure> {
        self.meta
            .insert(PLAN_KEY, plan.encode_to_vec())
            .map_err(|err| self.fail("save the journal", err))?;
        self.flush()
    }

    /// Forgets the restore plan and flushes.
    pub fn remove_plan(&self) -> Result<(), Failure> {
        self.meta
            .remove(PLAN_KEY)
            .map_err(|err| self.fail("save the journal", err))?;
        self.flush()
    }
}

fn decode<T: Message + Default>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    T::decode(bytes).map_err(|err| store_error(&format!("read {what} from the journal"), err))
}
