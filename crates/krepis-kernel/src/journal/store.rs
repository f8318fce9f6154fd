//! The journal's records in sled: transactions and the one restore plan.
//!
//! sled holds the small, transactional part (what was tracked, what is
//! committed, what an undo is doing); the snapshots' bytes are files under
//! `.krepis/snapshots/<transaction>/`, written and read in streaming fashion
//! so that a file larger than memory can be tracked. Every change is flushed
//! (fsync) before the journal acts on it.

use std::path::Path;

use prost::Message;

use crate::control::Failure;
use crate::files::failed;
use crate::result::KrepisResult;

/// One tracked file, as it was before its transaction changed it.
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
    /// The snapshot's file name in the transaction's snapshot folder.
    #[prost(string, tag = "7")]
    pub blob: String,
}

/// A transaction: open until committed.
#[derive(Clone, PartialEq, Message)]
pub struct Transaction {
    /// Its id (sled's monotonic id generator).
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
    /// The files it tracked, in the order they were tracked.
    #[prost(message, repeated, tag = "5")]
    pub entries: Vec<Entry>,
    /// Its place in commit order (undo takes the highest first).
    #[prost(uint64, tag = "6")]
    pub sequence: u64,
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
    /// The staged copy beside the target, relative to the root; empty when
    /// the target is removed.
    #[prost(string, tag = "3")]
    pub temp: String,
}

/// An undo or rollback in progress: recorded before any file is staged,
/// marked `applying` once every staged copy is complete, removed when done.
#[derive(Clone, PartialEq, Message)]
pub struct Plan {
    /// Its id; part of every staged copy's name.
    #[prost(uint64, tag = "1")]
    pub id: u64,
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

/// How many times, and how long, `open` waits for a lock still held by this process.
const LOCK_WAITS: u32 = 10;
const LOCK_WAIT_MS: u64 = 20;

/// The sled database of one project's journal, opened exclusively.
pub struct Store {
    db: sled::Db,
    transactions: sled::Tree,
    meta: sled::Tree,
}

fn store_error(action: &str, err: impl std::fmt::Display) -> Failure {
    failed(format!(
        "Cannot {action}: the journal's store failed ({err})\nHint: check the disk; if .krepis/journal is damaged, move .krepis away (its undo history is lost)"
    ))
}

impl Store {
    /// Opens (or creates) the database in `dir`. Another process holding it
    /// gives `KREPIS_RESULT_BUSY`.
    pub fn open(dir: &Path, shown: &str) -> Result<Self, Failure> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            // No background flusher thread: every change is flushed by the
            // journal itself before it acts on it.
            .flush_every_ms(None);
        // A database this process dropped a moment ago can still hold its
        // lock while other threads use sled (seen once in the kernel's
        // parallel tests); a few short waits tell that from another process.
        let mut waits = 0;
        let opened = loop {
            match config.open() {
                Err(err) if waits < LOCK_WAITS && err.to_string().contains("could not acquire lock") => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(LOCK_WAIT_MS));
                }
                other => break other,
            }
        };
        let db = opened.map_err(|err| {
            let text = err.to_string();
            if text.contains("could not acquire lock") {
                (
                    KrepisResult::Busy,
                    format!(
                        "Cannot open the journal in {shown}: another process has it open\nHint: wait until that process closes its journal (or ends), then retry"
                    ),
                )
            } else {
                store_error("open the journal", text)
            }
        })?;
        let transactions = db
            .open_tree("transactions")
            .map_err(|err| store_error("open the journal", err))?;
        let meta = db
            .open_tree("meta")
            .map_err(|err| store_error("open the journal", err))?;
        Ok(Self { db, transactions, meta })
    }

    /// A new id, never given before in this journal.
    pub fn new_id(&self) -> Result<u64, Failure> {
        // sled's ids start at 0; 0 is kept for "none".
        self.db
            .generate_id()
            .map(|id| id + 1)
            .map_err(|err| store_error("start a transaction", err))
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), Failure> {
        self.db
            .flush()
            .map(drop)
            .map_err(|err| store_error("save the journal", err))
    }

    /// The transaction `id`, if recorded.
    pub fn transaction(&self, id: u64) -> Result<Option<Transaction>, Failure> {
        let value = self
            .transactions
            .get(id.to_be_bytes())
            .map_err(|err| store_error("read the journal", err))?;
        value
            .map(|bytes| decode::<Transaction>(&bytes, "a transaction"))
            .transpose()
    }

    /// Records `transaction` and flushes.
    pub fn put_transaction(&self, transaction: &Transaction) -> Result<(), Failure> {
        self.transactions
            .insert(transaction.id.to_be_bytes(), transaction.encode_to_vec())
            .map_err(|err| store_error("save the journal", err))?;
        self.flush()
    }

    /// Every transaction, newest first.
    pub fn transactions(&self) -> Result<Vec<Transaction>, Failure> {
        // Read forward, then reversed in memory: sled's reverse iterator
        // links a 1 MiB constant key into the library.
        let mut all = self
            .transactions
            .iter()
            .map(|pair| {
                let (_, bytes) = pair.map_err(|err| store_error("read the journal", err))?;
                decode::<Transaction>(&bytes, "a transaction")
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.reverse();
        Ok(all)
    }

    /// The restore plan in progress, if any.
    pub fn plan(&self) -> Result<Option<Plan>, Failure> {
        let value = self
            .meta
            .get(PLAN_KEY)
            .map_err(|err| store_error("read the journal", err))?;
        value
            .map(|bytes| decode::<Plan>(&bytes, "the restore plan"))
            .transpose()
    }

    /// Records `plan` and flushes.
    pub fn put_plan(&self, plan: &Plan) -> Result<(), Failure> {
        self.meta
            .insert(PLAN_KEY, plan.encode_to_vec())
            .map_err(|err| store_error("save the journal", err))?;
        self.flush()
    }

    /// Forgets the transactions a plan restored and the plan itself, in one
    /// sled transaction (both or neither survive a crash), and flushes.
    pub fn finish_plan(&self, ids: &[u64]) -> Result<(), Failure> {
        use sled::Transactional;
        use sled::transaction::ConflictableTransactionError;
        (&self.transactions, &self.meta)
            .transaction(|(transactions, meta)| {
                for id in ids {
                    transactions.remove(&id.to_be_bytes())?;
                }
                meta.remove(PLAN_KEY)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|err| store_error("save the journal", format!("{err:?}")))?;
        self.flush()
    }

    /// Forgets the restore plan and flushes.
    pub fn remove_plan(&self) -> Result<(), Failure> {
        self.meta
            .remove(PLAN_KEY)
            .map_err(|err| store_error("save the journal", err))?;
        self.flush()
    }
}

fn decode<T: Message + Default>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    T::decode(bytes).map_err(|err| store_error(&format!("read {what} from the journal"), err))
}
