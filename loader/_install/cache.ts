/**
 * The on-disk cache. Layout under the root:
 *
 * ```
 * <root>/<version>/manifest.json(.minisig)   the verified, signed manifest
 * <root>/<version>/.lock                      the manifest's lock (taken inside a target's)
 * <root>/<version>/<triple>/.lock             cross-process install lock
 * <root>/<version>/<triple>/<sha256>/<file>   the library (read-only)
 * <root>/<version>/<triple>/<sha256>/<file>.stamp.json
 * <root>/<version>/<triple>/<sha256>/<file>.<ext>.partial   resumable download
 * ```
 *
 * A file at its final path is complete and verified: writes go to an
 * exclusively created temp file in the same directory, are fsynced, then
 * renamed. An installed file is never written in place.
 */

import type { VerifyMode } from "../types.ts";
import { CacheError } from "../errors.ts";
import { isInUse } from "../_internal/os_error.ts";
import { basename, dirname, join, normalize, sep as SEP } from "../_internal/path.ts";

/** The paths of one cache entry. */
export interface EntryPaths {
  /** `<root>/<version>/<triple>` */
  targetDir: string;
  /** The install lock. */
  lock: string;
  /** `<targetDir>/<sha256>` */
  dir: string;
  /** The library. */
  file: string;
  /** Its stamp. */
  stamp: string;
}

/** Where a library with this version, target and content hash lives. */
export function entryPaths(
  root: string,
  version: string,
  triple: string,
  sha256: string,
  file: string,
): EntryPaths {
  const targetDir = join(root, version, triple);
  const dir = join(targetDir, sha256);
  return {
    targetDir,
    lock: join(targetDir, ".lock"),
    dir,
    file: join(dir, file),
    stamp: join(dir, `${file}.stamp.json`),
  };
}

/** What was recorded when a library was installed. */
export interface Stamp {
  size: number;
  mtimeMs: number;
  /** ctime cannot be set with utime: an in-place rewrite changes it. */
  ctimeMs: number;
  dev: number;
  ino: number | null;
  /** The hash the file was verified against at install (the stamp check does not re-hash). */
  sha256: string;
}

function fileIdentity(info: Deno.FileInfo) {
  return {
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
    ctimeMs: info.ctime?.getTime() ?? 0,
    dev: info.dev,
    ino: info.ino,
  };
}

/**
 * Creates `dir` (and parents) readable only by this user, and refuses it if
 * the root or any directory from the root down to `dir` is writable by
 * other users, owned by another user, or a symlink: anyone who can write
 * there could swap a verified library and its stamp.
 *
 * On Windows, the symlink and not-a-directory checks run as everywhere; the
 * mode and owner checks cannot (Deno reports no owner there, and its mode
 * only mirrors the read-only attribute: 0o666 for every writable folder),
 * and Krepis does not read ACLs. The default cache, under `%LOCALAPPDATA%`, inherits the
 * profile's ACL (the user, SYSTEM and Administrators only); a
 * `KREPIS_CACHE_DIR` elsewhere is trusted as given (README: "The cache on
 * Windows").
 *
 * `beforeCreate` runs once, before the first directory below `root` is
 * made (install() checks the root's tag there): when everything exists, as
 * on a warm load, it does not run at all.
 */
export async function ensurePrivateDir(
  root: string,
  dir: string = root,
  options: { beforeCreate?: () => Promise<void> } = {},
): Promise<void> {
  const rootPath = normalize(root);
  const dirPath = normalize(dir);
  const rel = dirPath === rootPath
    ? ""
    : dirPath.startsWith(rootPath.endsWith(SEP) ? rootPath : rootPath + SEP)
    ? dirPath.slice(rootPath.length)
    : null;
  if (rel === null) throw new Error(`Cannot check ${dirPath}: it is not inside ${rootPath}`);
  const uid = Deno.uid();
  let path = rootPath;
  // Each level is checked as it is found, and made (private) only when it is
  // missing: nothing is created below a directory that would be refused.
  for (const part of ["", ...rel.split(/[\\/]/).filter(Boolean)]) {
    if (part) path = join(path, part);
    let info: Deno.FileInfo;
    try {
      // The root may be reached through a symlink (a moved ~/.cache); below it, nothing may.
      // Synchronous: a stat is microseconds, and an asynchronous one costs a
      // round trip through Deno's thread pool (this is on the warm path).
      info = part ? Deno.lstatSync(path) : Deno.statSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      // The root is made with the folders it needs: a permission to write the
      // root (`--allow-write=<cache>`) is enough, none is needed on its parents.
      if (!part) await Deno.mkdir(path, { recursive: true, mode: 0o700 });
      else if (options.beforeCreate) {
        await options.beforeCreate();
        options = {};
      }
      await Deno.mkdir(path, { mode: 0o700 }).catch((e) => {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e; // another installer made it
      });
      info = await Deno.lstat(path);
    }
    const fix = part
      ? `remove ${path}`
      : `run \`chmod go-w ${rootPath}\` or set KREPIS_CACHE_DIR to a private directory`;
    if (!info.isDirectory) {
      throw new CacheError(
        `Cannot use the cache directory ${path}: it is not a directory${
          part ? " (a symlink?)" : ""
        }`,
        { hint: fix },
      );
    }
    // Windows: Deno reports a mode made from the read-only attribute (0o666
    // for any writable folder); it says nothing of other users (ACLs do).
    if (Deno.build.os !== "windows" && info.mode !== null && (info.mode & 0o022) !== 0) {
      throw new CacheError(
        `Cannot use the cache directory ${path}: it is writable by other users (mode ${
          (info.mode & 0o777).toString(8)
        })`,
        { hint: fix },
      );
    }
    if (uid !== null && info.uid !== null && info.uid !== uid) {
      throw new CacheError(
        `Cannot use the cache directory ${path}: it belongs to user ${info.uid}, not ${uid}`,
        { hint: `set KREPIS_CACHE_DIR to a directory you own` },
      );
    }
  }
}

/**
 * Reads a small cached file (manifest, signature, stamp, tag): only a
 * regular file (not a FIFO, device or symlink) of at most `cap` bytes;
 * otherwise null. At most `cap + 1` bytes are ever read, even if the file
 * grows after it was checked.
 */
export function readSmallFile(path: string, cap: number): Promise<Uint8Array | null> {
  // Synchronous inside: these files are a few hundred bytes, and each
  // asynchronous call costs a round trip through Deno's thread pool on the
  // warm path. Only a regular file is opened (checked just before), so the
  // open cannot wait on a FIFO unless one is swapped in between by someone
  // who can write the private cache, who could replace the library anyway.
  try {
    const info = Deno.lstatSync(path);
    if (!info.isFile || info.size > cap) return Promise.resolve(null);
    using file = Deno.openSync(path, { read: true });
    const buffer = new Uint8Array(cap + 1);
    let got = 0;
    while (got < buffer.length) {
      const n = file.readSync(buffer.subarray(got));
      if (n === null) break;
      got += n;
    }
    return Promise.resolve(got <= cap ? buffer.slice(0, got) : null);
  } catch {
    return Promise.resolve(null);
  }
}

/** The largest stamp read: a stamp is about 200 bytes. */
export const MAX_STAMP_SIZE = 4096;

/**
 * Runs `body` holding the exclusive cross-process lock at `path`, waiting
 * for it until `deadline` (ms since epoch) at most.
 */
export async function withLock<T>(
  path: string,
  deadline: number,
  body: () => Promise<T>,
): Promise<T> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Never through a symlink (or onto a FIFO or directory) planted at its name.
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile) {
      throw new CacheError(
        `Cannot lock ${path}: it is ${
          info.isSymlink ? "a symlink" : "not a regular file"
        }, which Krepis never makes`,
        { hint: `remove it, then run the command again` },
      );
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    // Polled with tryLock: a blocking lock() still pending at the deadline
    // could not be cancelled and would keep the host process alive until
    // the other holder let go.
    let pause = 5;
    while (!(await file.tryLock(true))) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CacheError(
          `Cannot install the kernel: another installer held ${path} until the deadline`,
          { hint: `wait for it to finish; if none is running, remove that lock file` },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      pause = Math.min(pause * 2, 100);
    }
  } catch (error) {
    file.close();
    throw error;
  }
  try {
    return await body();
  } finally {
    file.close(); // releases the lock
  }
}

/** Removes temp files left by killed writers. Call only while holding the lock. */
export async function removeStaleTemps(dir: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".") && entry.name.endsWith(".tmp")) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** An exclusively created temp file next to its final path. */
export interface TempFile {
  path: string;
  file: Deno.FsFile;
}

/**
 * Creates a temp file beside `finalPath` with `createNew` (O_EXCL), so a
 * planted file or symlink at that name makes it fail rather than be
 * followed.
 */
export async function createTemp(finalPath: string): Promise<TempFile> {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("-");
  const path = join(
    dirname(finalPath),
    `.${basename(finalPath)}.${Deno.pid}-${suffix}.tmp`,
  );
  const file = await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o600 });
  return { path, file };
}

/**
 * Makes a fully written temp file durable and moves it to `finalPath`:
 * fsync, close, `mode` (on Windows: the read-only attribute when `mode` has
 * no write bit), {@linkcode replaceFile}, then a directory fsync.
 */
export async function commitTemp(temp: TempFile, finalPath: string, mode: number): Promise<void> {
  await temp.file.sync();
  temp.file.close();
  await Deno.chmod(temp.path, mode).catch((error) => {
    // Deno before 2.5 could not chmod on Windows; the file is then left writable.
    if (!(error instanceof Deno.errors.NotSupported)) throw error;
  });
  await replaceFile(temp.path, finalPath);
  await syncDir(dirname(finalPath));
}

/** The file operations {@linkcode replaceFile} and {@linkcode removeFile} use (tests substitute another OS's rules). */
export interface FileOps {
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
}

const DENO_FILE_OPS: FileOps = {
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
  chmod: (path, mode) => Deno.chmod(path, mode),
};

function inUse(path: string, doing: string, cause: unknown): CacheError {
  return new CacheError(
    `Cannot ${doing} ${path}: a process has it open or loaded, and Windows does not let such a file be replaced or removed`,
    { cause, hint: `close the programs that use the Krepis kernel, then run the command again` },
  );
}

/**
 * Moves `from` to `to`, replacing a file there.
 *
 * - POSIX: one atomic rename. A process that loaded the old file keeps its
 *   copy: the rename replaces the directory entry, never the file.
 * - Windows: a rename cannot replace a read-only file or a DLL that a
 *   process has loaded (ERROR_ACCESS_DENIED). The read-only attribute of
 *   the old file is cleared and the rename tried once more; if Windows
 *   still refuses, the file is in use and a {@linkcode CacheError} says so.
 *   Since the cache is content-addressed (`<sha256>/<file>`), a file is
 *   replaced only when it failed verification; a DLL that is loaded cannot
 *   be written, so it is refused, never replaced under a running process.
 *
 * @throws {CacheError} On Windows, when the file at `to` is in use.
 */
export async function replaceFile(
  from: string,
  to: string,
  os: typeof Deno.build.os = Deno.build.os,
  ops: FileOps = DENO_FILE_OPS,
): Promise<void> {
  try {
    await ops.rename(from, to);
  } catch (error) {
    if (!isInUse(error, os)) throw error;
    await ops.chmod(to, 0o644).catch(() => {});
    try {
      await ops.rename(from, to);
    } catch (again) {
      if (isInUse(again, os)) throw inUse(to, "replace", again);
      throw again;
    }
  }
}

/**
 * Removes a file. On Windows a read-only file cannot be deleted: the
 * attribute is cleared and the removal tried once more; a file still
 * refused is in use (a loaded DLL), and a {@linkcode CacheError} says so.
 *
 * @throws {CacheError} On Windows, when the file is in use.
 * @throws {Deno.errors.NotFound} When there is no such file.
 */
export async function removeFile(
  path: string,
  os: typeof Deno.build.os = Deno.build.os,
  ops: FileOps = DENO_FILE_OPS,
): Promise<void> {
  try {
    await ops.remove(path);
  } catch (error) {
    if (!isInUse(error, os)) throw error;
    await ops.chmod(path, 0o644).catch(() => {});
    try {
      await ops.remove(path);
    } catch (again) {
      if (isInUse(again, os)) throw inUse(path, "remove", again);
      throw again;
    }
  }
}

/** Writes `bytes` to `finalPath` atomically (temp, fsync, rename). */
export async function writeAtomic(
  finalPath: string,
  bytes: Uint8Array,
  mode = 0o444,
): Promise<void> {
  const temp = await createTemp(finalPath);
  try {
    await temp.file.write(bytes).then(async (n) => {
      let written = n;
      while (written < bytes.length) written += await temp.file.write(bytes.subarray(written));
    });
    await commitTemp(temp, finalPath, mode);
  } catch (error) {
    await discardTemp(temp);
    throw error;
  }
}

/** Closes and removes a temp file after a failure. */
export async function discardTemp(temp: TempFile): Promise<void> {
  try {
    temp.file.close();
  } catch {
    // already closed
  }
  await Deno.remove(temp.path).catch(() => {});
}

async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  }
}

/** Records size, mtime, ctime, device, inode and the verified hash of an installed file. */
export async function writeStamp(paths: EntryPaths, sha256: string): Promise<void> {
  const stamp: Stamp = { ...fileIdentity(await Deno.lstat(paths.file)), sha256 };
  await writeAtomic(paths.stamp, new TextEncoder().encode(JSON.stringify(stamp)), 0o444);
}

/**
 * Whether the cached library is present and still the verified bytes.
 *
 * - `"stamp"`: a regular file (not a symlink) whose size, mtime, ctime,
 *   device and inode match the stamp recorded at install, and whose stamp
 *   names the expected hash; without a stamp, falls back to a full re-hash.
 *   It does not read the file: it relies on only this user being able to
 *   write to the cache, which `ensurePrivateDir` enforces.
 * - `"full"`: re-hashes the file.
 */
export async function isCachedValid(
  paths: EntryPaths,
  expected: { size: number; sha256: string },
  mode: VerifyMode,
): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(paths.file); // synchronous: on the warm path
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  if (!info.isFile || info.size !== expected.size) return false;
  if (mode === "stamp") {
    const stamp = await readStamp(paths.stamp);
    if (stamp) {
      const now = fileIdentity(info);
      return stamp.sha256 === expected.sha256 && stamp.size === now.size &&
        stamp.mtimeMs === now.mtimeMs && stamp.ctimeMs === now.ctimeMs && stamp.dev === now.dev &&
        stamp.ino === now.ino;
    }
  }
  // node:crypto is loaded only for a full check (it is slow to start).
  const { sha256File } = await import("./hash.ts");
  return await sha256File(paths.file) === expected.sha256;
}

async function readStamp(path: string): Promise<Stamp | null> {
  try {
    // Size-capped: a planted multi-gigabyte stamp is ignored, never read.
    const bytes = await readSmallFile(path, MAX_STAMP_SIZE);
    if (!bytes) return null;
    const stamp = JSON.parse(new TextDecoder().decode(bytes)) as Stamp;
    return typeof stamp.sha256 === "string" && typeof stamp.ctimeMs === "number" ? stamp : null;
  } catch {
    return null;
  }
}
