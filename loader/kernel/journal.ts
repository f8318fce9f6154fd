/**
 * The project journal: file changes a tool makes can be undone.
 *
 * @module
 */

import { type Channel, rethrowAs } from "./channel.ts";
import { JournalError } from "../errors.ts";
import { booleanOption, checkKeys, integerOption } from "../_internal/options.ts";
import type { RequestInit, Response } from "../_gen/messages.ts";
import { absolute } from "../_internal/path.ts";
import { requirePermission } from "../_internal/permission.ts";
import { KERNEL_TOKEN } from "./token.ts";
import type { KernelView } from "./view.ts";

/** A file a transaction tracked, as it was before the transaction. */
export interface TrackedFile {
  /** Relative to the project root, with `/` between components. */
  path: string;
  /** Whether it existed (if not, undo removes it). */
  existed: boolean;
  /** Its size in bytes (0 if it did not exist). */
  size: number;
}

/** A committed transaction. */
export interface JournalEntry {
  /** Its id, unique in this journal. */
  id: number;
  /** The message given to `begin()`. */
  message: string;
  /** When it was committed (for a rolled-back transaction: the epoch). */
  time: Date;
  /** The files it tracked. */
  files: TrackedFile[];
  /** Bytes its snapshots take in `.krepis/snapshots`. */
  snapshotBytes: number;
}

/** Work a killed process left, and what `open()` did about it. */
export interface Recovery {
  /** The transaction concerned (0: the whole journal, for a repair or a pending recovery). */
  transaction: number;
  /**
   * `"rolled back"` (never committed), `"undo completed"` or `"rollback
   * completed"` (interrupted while applying: finished), `"undo abandoned,
   * nothing changed"` (interrupted while staging), `"repaired: …"` (the
   * store was rebuilt from the commit record), or `"pending: <reason>"` (a
   * recovery that could not finish: the journal opened anyway, the next
   * open or `close()` tries again).
   */
  action: string;
  /** The files concerned. */
  paths: string[];
}

/** What an undo or a rollback did (or, for a dry run, would do). */
export interface Restored {
  /** The transactions undone (newest first) or rolled back. */
  transactions: JournalEntry[];
  /** Files written back with their snapshot's bytes and permissions. */
  restored: string[];
  /** Files the transactions had created, removed. */
  removed: string[];
  /**
   * Files that changed since the transactions were committed (an undo
   * refuses them unless forced).
   */
  changed: string[];
  /** A dry run: nothing was changed. */
  dryRun: boolean;
  /**
   * The transaction that keeps the content a forced undo replaced (undo it
   * to get that content back), or `null` when nothing had changed.
   */
  kept: number | null;
  /** Files restored whose owner or group the process could not set back. */
  ownersKept: string[];
}

/** Options for {@linkcode Journal.undo}. */
export interface UndoOptions {
  /**
   * How many of the last committed transactions to undo. All or nothing:
   * more than the journal holds is refused and changes nothing.
   *
   * @default {1}
   */
  steps?: number;
  /**
   * Undo even files changed since the transactions were committed: their
   * current content is first committed as a new transaction (listed in
   * {@linkcode Restored.kept}), so that undoing again brings it back.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * Report what the undo would restore, remove and find changed; change
   * nothing.
   *
   * @default {false}
   */
  dryRun?: boolean;
}

/** Options for {@linkcode Journal.forget}. */
export interface ForgetOptions {
  /** How many of the newest committed transactions to keep. */
  keep: number;
}

/** Options for {@linkcode Journals.open}. */
export interface JournalOpenOptions {
  /**
   * Rebuild a store that lost committed transactions (damage the open
   * refused) from the journal's commit record, keeping every snapshot. The
   * damaged store is kept beside it as `.krepis/journal.damaged-<ms>`.
   *
   * @default {false}
   */
  repair?: boolean;
}

type Message = NonNullable<Response["journalCommitted"]>;

function entry(message: Message): JournalEntry {
  return {
    id: Number(message.id),
    message: message.message,
    time: new Date(Number(message.timeMs)),
    files: message.files.map((file) => ({
      path: file.path,
      existed: file.existed,
      size: Number(file.size),
    })),
    snapshotBytes: Number(message.snapshotBytes),
  };
}

/** Kernel failures of the journal become {@linkcode JournalError}s. */
function call<T>(action: () => T): T {
  return rethrowAs(JournalError, action);
}

function closedError(what: string, action: string): JournalError {
  return new JournalError(
    `Cannot ${action}: the ${what} was closed`,
    "CLOSED",
    { hint: `open the journal again with kernel.journal.open()` },
  );
}

/** Sends a request for one journal; filled in with the journal's handle. */
type Send = (action: string, build: (journal: bigint) => RequestInit) => Response;

// How each Journal sends, kept off its public surface (Transaction uses it).
const senders = new WeakMap<Journal, Send>();

function send(journal: Journal, action: string, build: (journal: bigint) => RequestInit): Response {
  return senders.get(journal)!(action, build);
}

/** `kernel.journal`: opens project journals. */
export class Journals {
  #channel: Channel;

  /**
   * Internal: the kernel makes its own.
   *
   * @param token The loader's internal token.
   * @param channel The kernel's channel.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(token: symbol, channel: Channel) {
    if (token !== KERNEL_TOKEN) throw new TypeError("Cannot construct Journals directly");
    this.#channel = channel;
  }

  /**
   * Opens the journal of the project at `root` (kept in `<root>/.krepis/`,
   * which holds a `.gitignore` so git leaves it alone), creating it when
   * absent. Work a killed process left is recovered first and reported in
   * {@linkcode Journal.recovered}: a transaction never committed is rolled
   * back; an interrupted undo is finished, or abandoned if no file had
   * changed yet.
   *
   * One process holds a journal at a time: another gets
   * `JournalError` `BUSY`. Needs `--allow-read` and `--allow-write` for
   * `root` (the kernel's file access is checked against them here).
   *
   * @param root The project's root folder.
   * @param options `repair`: rebuild a damaged store from the commit record.
   * @returns The open journal; close it (or `using`) when done.
   * @throws {JournalError} `BUSY` when another process (or Journal) holds it;
   *   `FAILED` when the root is not a folder, the store cannot be used,
   *   `.krepis/` holds a link (nothing is followed), or the store holds less
   *   than the commit record says was committed (nothing is changed: open
   *   with `repair`);
   *   `UNSUPPORTED` when this kernel has no journal.
   * @throws {PermissionError} Without read and write permission for `root`.
   *
   * @example Undoing a tool's edit
   * ```ts ignore
   * import { load } from "@krepis/loader";
   *
   * using kernel = await load();
   * using journal = kernel.journal.open(".");
   * {
   *   using tx = journal.begin("format README");
   *   tx.track("README.md");
   *   await Deno.writeTextFile("README.md", "# formatted\n");
   *   tx.commit();
   * }
   * journal.undo(); // README.md has its old bytes and permissions again
   * ```
   */
  open(root: string, options: JournalOpenOptions = {}): Journal {
    const given = checkKeys("open the journal", options, ["repair"]);
    booleanOption("open the journal", "repair", given.repair);
    const folder = absolute(root);
    this.#channel.symbols("journal.open()");
    requirePermission("read", folder, `open the journal of ${folder}`);
    requirePermission("write", folder, `open the journal of ${folder}`);
    return call(() => {
      this.#channel.require("journal", "open a journal");
      const opened = this.#channel.request("journal.open()", {
        journalOpen: { root: folder, repair: options.repair === true },
      }).journalOpened!;
      return new Journal(
        KERNEL_TOKEN,
        this.#channel,
        opened.journal,
        opened.root,
        opened.recovered,
      );
    });
  }

  /**
   * The committed transactions of the project at `root`, newest first,
   * read from its commit record (`.krepis/commits`) alone: no lock is
   * taken and nothing is created, so this works while another process
   * holds the journal. A project without a journal is an error.
   *
   * @param root The project's root folder.
   * @returns Id, message, commit time, files and snapshot bytes of each.
   * @throws {JournalError} When there is no journal, or `.krepis/` holds a
   *   link or a damaged commit record.
   * @throws {PermissionError} Without read permission for `root`.
   */
  history(root: string): JournalEntry[] {
    const folder = absolute(root);
    this.#channel.symbols("journal.history()");
    requirePermission("read", folder, `read the journal of ${folder}`);
    return call(() => {
      this.#channel.require("journal", "read a journal");
      return this.#channel.request("journal.history()", { journalList: { root: folder } })
        .journalHistory!.transactions.map(entry);
    });
  }
}

/**
 * A project's open journal. Obtain one from `kernel.journal.open(root)`.
 */
export class Journal implements Disposable {
  /** The project root, with symbolic links resolved. */
  readonly root: string;
  /** What {@linkcode Journals.open} recovered from a killed process. */
  readonly recovered: readonly Recovery[];

  #channel: Channel;
  #handle: bigint | null;
  #unlink: () => void;

  /**
   * Internal: use `kernel.journal.open()`.
   *
   * @param token The loader's internal token.
   * @param channel The kernel's channel.
   * @param handle The kernel's journal handle.
   * @param root The resolved root.
   * @param recovered What open recovered.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(
    token: symbol,
    channel: Channel,
    handle: bigint,
    root: string,
    recovered: readonly { transaction: bigint; action: string; paths: string[] }[],
  ) {
    if (token !== KERNEL_TOKEN) {
      throw new TypeError("Cannot construct a Journal directly\nHint: use kernel.journal.open()");
    }
    this.#channel = channel;
    this.#handle = handle;
    this.root = root;
    this.recovered = Object.freeze(recovered.map((r) => ({
      transaction: Number(r.transaction),
      action: r.action,
      paths: [...r.paths],
    })));
    // Closing the kernel closes its journals first.
    this.#unlink = channel.onClose(() => this.close());
    senders.set(this, (action, build) => this.#send(action, build));
  }

  /** Whether {@linkcode Journal.close} has been called. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** Sends a journal request (internal to the loader). */
  #send(action: string, build: (journal: bigint) => RequestInit): Response {
    const handle = this.#handle;
    if (handle === null) throw closedError("journal", action);
    return call(() => this.#channel.request(action, build(handle)));
  }

  /**
   * Begins a transaction: track each file before changing it, then commit.
   * Disposing it (`using`) without a commit rolls it back.
   *
   * @param message What the change is, shown by `history()` and `krepis undo --list`.
   * @returns The open transaction.
   * @throws {JournalError} When the journal is closed or its store fails.
   */
  begin(message = ""): Transaction {
    const begun = this.#send("begin()", (journal) => ({ journalBegin: { journal, message } }))
      .journalBegun!;
    return new Transaction(KERNEL_TOKEN, this, begun.transaction);
  }

  /**
   * The committed transactions, newest first.
   *
   * @returns Id, message, commit time and files of each.
   * @throws {JournalError} When the journal is closed or its store fails.
   */
  history(): JournalEntry[] {
    return this.#send("history()", (journal) => ({ journalHistory: { journal } }))
      .journalHistory!.transactions.map(entry);
  }

  /**
   * Undoes the last committed transactions: every tracked file gets back
   * the exact bytes, permissions (and, where the process may set it,
   * owner) it had before the earliest of them tracked it, and files they
   * created are removed. A file that changed since the transactions were
   * committed (size, SHA-256 or mode differ from what the commit recorded)
   * is refused, listed, unless `force`. Snapshots are checked against their
   * SHA-256 and staged beside their targets before any file changes; a
   * failure up to then changes nothing. The undone transactions leave the
   * history.
   *
   * @param options How many transactions (default 1), `force`, `dryRun`.
   * @returns What was undone, restored and removed (or would be).
   * @throws {JournalError} `FAILED` when a file changed since (unless
   *   forced), there are fewer transactions than `steps`, a transaction is
   *   still open, a snapshot is damaged, or a folder now stands where a
   *   file was (nothing changed in each case).
   * @throws {TypeError} When `options` has a key it does not know (a typo
   *   such as `step` is named), or a value of the wrong type.
   * @throws {RangeError} When `steps` is not an integer from 1 to 2^32 - 1.
   */
  undo(options: UndoOptions = {}): Restored {
    const given = checkKeys("undo", options, ["steps", "force", "dryRun"]);
    const steps = integerOption("undo", "steps", given.steps, 1, 0xffff_ffff) ?? 1;
    const force = booleanOption("undo", "force", given.force) ?? false;
    const dryRun = booleanOption("undo", "dryRun", given.dryRun) ?? false;
    return restored(
      this.#send("undo()", (journal) => ({ journalUndo: { journal, steps, force, dryRun } }))
        .journalRestored!,
    );
  }

  /**
   * Forgets the oldest committed transactions, keeping the newest `keep`,
   * and frees their snapshots. (Every commit keeps the newest 100.)
   *
   * @param options `keep`: how many to keep (0 forgets every one).
   * @returns The ids forgotten, oldest first.
   * @throws {JournalError} When the journal is closed or its store fails.
   */
  forget(options: ForgetOptions): number[] {
    const given = checkKeys("forget", options, ["keep"]);
    const keep = integerOption("forget", "keep", given.keep, 0, Number.MAX_SAFE_INTEGER);
    if (keep === undefined) {
      throw new TypeError(
        "Cannot forget: keep is required\nHint: pass { keep: <how many to keep> }",
      );
    }
    return this.#send("forget()", (journal) => ({
      journalForget: { journal, keep: BigInt(keep) },
    })).journalForgotten!.transactions.map(Number);
  }

  /**
   * The bytes `path` had before `transaction` changed it, as a zero-copy
   * view checked against the snapshot's SHA-256.
   *
   * @param transaction A transaction id (open or committed).
   * @param path The tracked file, relative to the root or absolute.
   * @returns A view; close it when done.
   * @throws {JournalError} When the transaction did not track `path`, the
   *   file did not exist then, or the snapshot is damaged.
   */
  snapshot(transaction: number, path: string): KernelView {
    const view = this.#send("snapshot()", (journal) => ({
      journalSnapshot: { journal, transaction: BigInt(transaction), path },
    })).view!;
    return this.#channel.view(view.id, view.length);
  }

  /**
   * Closes the journal, rolling back transactions still open, and lets
   * another process open it. Closing twice is a no-op.
   *
   * @throws {JournalError} When a rollback fails (the journal is closed
   *   anyway; the next open rolls back what remains).
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    this.#unlink();
    if (this.#channel.closed) return;
    call(() => this.#channel.request("journal.close()", { journalClose: { journal: handle } }));
  }

  /** Same as {@linkcode Journal.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function restored(message: NonNullable<Response["journalRestored"]>): Restored {
  return {
    transactions: message.transactions.map(entry),
    restored: [...message.restored],
    removed: [...message.removed],
    changed: [...message.changed],
    dryRun: message.dryRun,
    kept: message.kept === 0n ? null : Number(message.kept),
    ownersKept: [...message.ownersKept],
  };
}

/**
 * An open transaction. Obtain one from {@linkcode Journal.begin}.
 */
export class Transaction implements Disposable {
  /** Its id, unique in this journal. */
  readonly id: number;

  #journal: Journal;
  #wire: bigint;
  #state: "open" | "committed" | "rolled back" = "open";

  /**
   * Internal: use `journal.begin()`.
   *
   * @param token The loader's internal token.
   * @param journal Its journal.
   * @param id The kernel's transaction id.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(token: symbol, journal: Journal, id: bigint) {
    if (token !== KERNEL_TOKEN) {
      throw new TypeError("Cannot construct a Transaction directly\nHint: use journal.begin()");
    }
    this.#journal = journal;
    this.#wire = id;
    this.id = Number(id);
  }

  /** `"open"`, `"committed"` or `"rolled back"`. */
  get state(): "open" | "committed" | "rolled back" {
    return this.#state;
  }

  #open(action: string): bigint {
    if (this.#state !== "open") {
      throw new JournalError(
        `Cannot ${action}: transaction ${this.id} is ${this.#state}`,
        "FAILED",
        { hint: `begin a new transaction` },
      );
    }
    return this.#wire;
  }

  /**
   * Snapshots a file before it is changed: its bytes (streamed, so a file
   * larger than memory is fine) and permissions, or the fact that it does
   * not exist yet. Tracking a file twice keeps the first snapshot.
   *
   * @param path Relative to the project root, or absolute inside it.
   * @returns What was recorded.
   * @throws {JournalError} `FAILED` for a path outside the root (also
   *   through `..` or a symbolic link), in `.krepis/`, a folder, a symbolic
   *   link, or a snapshot that cannot be written (the disk is full, …).
   */
  track(path: string): TrackedFile {
    const transaction = this.#open(`track ${path}`);
    const file = send(this.#journal, "track()", (journal) => ({
      journalTrack: { journal, transaction, path },
    })).journalTracked!;
    return { path: file.path, existed: file.existed, size: Number(file.size) };
  }

  /**
   * Snapshots many files before they are changed: the same as
   * {@linkcode Transaction.track} for each path, in order, with one sync of
   * the disk for all of them (much faster for thousands of files). When a
   * path is refused, the paths before it are tracked and those from it on
   * are not.
   *
   * @param paths Each relative to the project root, or absolute inside it.
   * @returns What was recorded, one per path.
   * @throws {JournalError} As {@linkcode Transaction.track}, for the first
   *   path refused.
   */
  trackAll(paths: readonly string[]): TrackedFile[] {
    const transaction = this.#open(`track ${paths.length} files`);
    const files = send(this.#journal, "trackAll()", (journal) => ({
      journalTrackMany: { journal, transaction, paths: [...paths] },
    })).journalTrackedFiles!.files;
    return files.map((file) => ({
      path: file.path,
      existed: file.existed,
      size: Number(file.size),
    }));
  }

  /**
   * Commits: the transaction joins the history and can be undone.
   *
   * @returns The committed transaction.
   * @throws {JournalError} When it is not open.
   */
  commit(): JournalEntry {
    const transaction = this.#open("commit");
    const committed = send(this.#journal, "commit()", (journal) => ({
      journalCommit: { journal, transaction },
    })).journalCommitted!;
    this.#state = "committed";
    return entry(committed);
  }

  /**
   * Rolls back: every tracked file gets its snapshot back, and the files
   * the transaction created are removed.
   *
   * @returns What was restored and removed.
   * @throws {JournalError} When it is not open, or a snapshot cannot be
   *   restored (nothing changed then).
   */
  rollback(): Restored {
    const transaction = this.#open("roll back");
    const result = restored(
      send(this.#journal, "rollback()", (journal) => ({
        journalRollback: { journal, transaction },
      })).journalRestored!,
    );
    this.#state = "rolled back";
    return result;
  }

  /** Rolls back if still open (a transaction left by an exception). */
  [Symbol.dispose](): void {
    if (this.#state === "open" && !this.#journal.closed) this.rollback();
  }
}
