/**
 * What in a cache root Krepis made, and nothing else.
 *
 * A root is Krepis's when it holds a `CACHEDIR.TAG` that Krepis wrote (the
 * Cache Directory Tagging convention, so backup tools skip it too). Inside,
 * only names of the exact layout are Krepis's:
 *
 * ```
 * CACHEDIR.TAG
 * <semver>/manifest.json, manifest.json.minisig  (and their .*.tmp temps)
 * <semver>/.lock                              the manifest's lock
 * <semver>/<known triple>/.lock
 * <semver>/<known triple>/<64 hex>/<the triple's file>
 *                                  <file>.stamp.json
 *                                  <file>.<16 hex>.partial
 *                                  .<file or stamp>.<pid>-<n>-<n>.tmp
 * ```
 *
 * Commands that delete (`verify`, `cache prune`, `cache clean`) act only
 * on a tagged root and only on these names; anything else is reported and
 * left where it is.
 */

import { CacheError } from "../errors.ts";
import { basename, join } from "../_internal/path.ts";
import { readSmallFile } from "./cache.ts";
import { isInUse } from "../_internal/os_error.ts";
import { targetByTriple } from "../platform.ts";
import { TARGETS } from "../_gen/targets.ts";

/** The tag file's name. */
export const TAG_FILE = "CACHEDIR.TAG";

/** A tag being written (renamed into place when whole). */
const TAG_TEMP = /^CACHEDIR\.TAG\.\d+-\d+\.tmp$/;

/** The tag's content: the convention's signature line, then who made it. */
export const TAG_TEXT = "Signature: 8a477f597d28d172789f06886806bc55\n" +
  "# This file is a cache directory tag created by Krepis (@krepis/loader).\n" +
  "# Krepis deletes files here only when this tag is present.\n";

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
const SHA256 = /^[0-9a-f]{64}$/;
const TRIPLES = new Set(TARGETS.map((t) => t.triple));

/** Whether `name` is a lock-step version as Krepis names its directories. */
export function isVersionName(name: string): boolean {
  return name.length <= 64 && SEMVER.test(name);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Krepis's temp-file name for a final file named `name` (see `createTemp`). */
function isTempOf(entry: string, name: string): boolean {
  return new RegExp(`^\\.${escape(name)}\\.\\d+-\\d+-\\d+\\.tmp$`).test(entry);
}

/** What an entry directory's file is, or null when Krepis did not make it. */
export function entryFileKind(
  triple: string,
  name: string,
): "library" | "stamp" | "partial" | "temp" | null {
  const file = targetByTriple(triple).file;
  if (name === file) return "library";
  if (name === `${file}.stamp.json`) return "stamp";
  if (new RegExp(`^${escape(file)}\\.[0-9a-f]{16}\\.partial$`).test(name)) return "partial";
  if (isTempOf(name, file) || isTempOf(name, `${file}.stamp.json`)) return "temp";
  return null;
}

/** What a version directory's file is, or null when Krepis did not make it. */
function versionFileKind(name: string): "manifest" | "temp" | "lock" | null {
  if (name === "manifest.json" || name === "manifest.json.minisig") return "manifest";
  if (name === ".lock") return "lock";
  if (isTempOf(name, "manifest.json") || isTempOf(name, "manifest.json.minisig")) return "temp";
  return null;
}

/** One file Krepis made, found by {@linkcode walkCache}. */
export interface CacheFile {
  /** Its path. */
  path: string;
  /** What it is. */
  kind: "library" | "stamp" | "partial" | "temp" | "manifest" | "lock";
  /** `<semver>` */
  version: string;
  /** The target triple, for files below a target directory. */
  target: string | null;
  /** The hash directory it is in, for entry files. */
  sha256: string | null;
  /** Its size in bytes. */
  size: number;
}

/** What {@linkcode walkCache} found. */
export interface CacheWalk {
  /** The root walked. */
  root: string;
  /** Whether the root carries Krepis's tag; without it nothing is Krepis's. */
  tagged: boolean;
  /** Files of the layout, in a stable order. */
  files: CacheFile[];
  /** Directories of the layout, deepest first (the order to remove them in). */
  dirs: string[];
  /** The version directories, sorted. */
  versions: string[];
  /** Everything else, by path: never touched. */
  foreign: string[];
}

/** Whether `root` carries the tag Krepis writes (a regular, small file with the tag text). */
export async function isTagged(root: string): Promise<boolean> {
  const bytes = await readSmallFile(join(root, TAG_FILE), 4096);
  return bytes !== null && new TextDecoder().decode(bytes).startsWith(TAG_TEXT);
}

async function list(dir: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Walks a cache root and sorts what is there into Krepis's files and
 * directories and everything else. Reads directory listings and file
 * sizes only; follows no symlink (a symlink is never part of the layout).
 *
 * @param root The cache root.
 * @returns The walk; an untagged root lists nothing as Krepis's.
 */
export async function walkCache(root: string): Promise<CacheWalk> {
  const walk: CacheWalk = {
    root,
    tagged: await isTagged(root),
    files: [],
    dirs: [],
    versions: [],
    foreign: [],
  };
  const top = await list(root);
  if (!walk.tagged) {
    walk.foreign = top.map((e) => join(root, e.name));
    return walk;
  }
  const file = async (
    path: string,
    kind: CacheFile["kind"],
    version: string,
    target: string | null,
    sha256: string | null,
  ) => {
    try {
      const size = (await Deno.lstat(path)).size;
      walk.files.push({ path, kind, version, target, sha256, size });
    } catch (error) {
      // Gone since the listing (a temp renamed, a partial removed by an installer).
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  };
  for (const v of top) {
    const vPath = join(root, v.name);
    if (v.name === TAG_FILE && v.isFile) continue;
    if (v.isFile && TAG_TEMP.test(v.name)) {
      await file(vPath, "temp", "", null, null); // a tag write cut short
      continue;
    }
    if (!(v.isDirectory && isVersionName(v.name))) {
      walk.foreign.push(vPath);
      continue;
    }
    for (const t of await list(vPath)) {
      const tPath = join(vPath, t.name);
      if (t.isFile && versionFileKind(t.name)) {
        await file(
          tPath,
          versionFileKind(t.name)!,
          v.name,
          null,
          null,
        );
        continue;
      }
      if (!(t.isDirectory && TRIPLES.has(t.name))) {
        walk.foreign.push(tPath);
        continue;
      }
      for (const h of await list(tPath)) {
        const hPath = join(tPath, h.name);
        if (h.isFile && h.name === ".lock") {
          await file(hPath, "lock", v.name, t.name, null);
          continue;
        }
        if (!(h.isDirectory && SHA256.test(h.name))) {
          walk.foreign.push(hPath);
          continue;
        }
        for (const f of await list(hPath)) {
          const fPath = join(hPath, f.name);
          const kind = f.isFile ? entryFileKind(t.name, f.name) : null;
          if (kind) await file(fPath, kind, v.name, t.name, h.name);
          else walk.foreign.push(fPath);
        }
        walk.dirs.push(hPath);
      }
      walk.dirs.push(tPath);
    }
    walk.dirs.push(vPath);
    walk.versions.push(v.name);
  }
  return walk;
}

/**
 * Removes what a walk found for `versions` (all when omitted): Krepis's
 * files, then its directories that are then empty. Foreign files, and the
 * directories that hold them, stay.
 *
 * @param walk A walk of a tagged root.
 * @param remove Removes one file (read-only and, on Windows, in-use aware).
 * @param versions Which versions to remove. @default {every version}
 * @returns The files removed.
 * @throws {CacheError} When the root is not tagged as Krepis's.
 */
export async function removeCacheFiles(
  walk: CacheWalk,
  remove: (path: string) => Promise<void>,
  versions?: (version: string) => boolean,
): Promise<CacheFile[]> {
  if (!walk.tagged) throw untagged(walk.root, "remove anything from");
  const chosen = walk.files.filter((f) => !versions || versions(f.version));
  for (const f of chosen) await remove(f.path);
  const dirs = walk.dirs.filter((d) => {
    const version = d.slice(walk.root.length).split(/[\\/]/).filter(Boolean)[0];
    return !versions || versions(version);
  });
  for (const dir of dirs) {
    // Only an empty directory goes: one that still holds a foreign file stays.
    await Deno.remove(dir).catch(() => {});
  }
  return chosen;
}

/**
 * Makes `root` a Krepis cache, or refuses it: a new or empty directory is
 * created (private) and tagged; a tagged one is used as it is; an untagged
 * one that holds only version directories (a cache from before the tag) is
 * tagged; any other untagged directory is refused, so that a cache root
 * pointed at a home directory never becomes one.
 *
 * @param root The cache root.
 * @throws {CacheError} When `root` holds files Krepis did not make, or is not a directory.
 */
export async function ensureCacheRoot(root: string): Promise<void> {
  if (await isTagged(root)) return;
  let entries: Deno.DirEntry[];
  try {
    const info = await Deno.stat(root);
    if (!info.isDirectory) {
      throw new CacheError(
        `Cannot use the cache directory ${root}: it is not a directory`,
        { hint: `set KREPIS_CACHE_DIR to a new or empty directory` },
      );
    }
    entries = await list(root);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    await Deno.mkdir(root, { recursive: true, mode: 0o700 });
    entries = [];
  }
  // Another installer may be tagging this root right now: its temp is not
  // foreign, and its tag (renamed into place whole) is ours if it reads as
  // ours now. Another tool's CACHEDIR.TAG is foreign: never replaced.
  const taggedNow = await isTagged(root);
  const ours = (e: Deno.DirEntry) =>
    (e.isDirectory && isVersionName(e.name)) ||
    (e.isFile && ((e.name === TAG_FILE && taggedNow) || TAG_TEMP.test(e.name)));
  const foreign = entries.filter((e) => !ours(e));
  if (taggedNow && foreign.length === 0) return;
  if (foreign.length) {
    throw new CacheError(
      `Cannot use the cache directory ${root}: it holds files Krepis did not make (${
        foreign.slice(0, 3).map((e) => e.name).join(", ")
      }${foreign.length > 3 ? ", …" : ""}) and no ${TAG_FILE} of Krepis's`,
      { hint: `set KREPIS_CACHE_DIR (or --cache-dir) to a new or empty directory` },
    );
  }
  const path = join(root, TAG_FILE);
  const temp = `${path}.${Deno.pid}-${crypto.getRandomValues(new Uint32Array(1))[0]}.tmp`;
  try {
    await Deno.writeTextFile(temp, TAG_TEXT, { createNew: true, mode: 0o644 });
    await Deno.rename(temp, path);
  } catch (error) {
    // The temp's name is this process's own: unless it already stood there
    // (never made here), a write that failed (a full disk) leaves nothing behind.
    if (!(error instanceof Deno.errors.AlreadyExists)) await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** The refusal for a root without Krepis's tag. */
export function untagged(root: string, doing: string): CacheError {
  return new CacheError(
    `Cannot ${doing} ${root}: it is not a Krepis cache (no ${TAG_FILE} written by Krepis), so nothing in it is Krepis's to change`,
    {
      hint:
        `check --cache-dir and KREPIS_CACHE_DIR; \`krepis init\` makes a cache in a new or empty directory`,
    },
  );
}

/** A cached library, as `krepis cache ls`, `info` and `verify` show it. */
export interface CachedLibrary {
  /** Its release version. */
  version: string;
  /** Its target triple. */
  target: string;
  /** The hash it was verified against at install (its directory's name). */
  sha256: string;
  /** Its file name. */
  file: string;
  /** Its path. */
  path: string;
  /** Its size in bytes. */
  size: number;
}

/** The libraries a walk found. */
export function cachedLibraries(walk: CacheWalk): CachedLibrary[] {
  return walk.files.filter((f) => f.kind === "library").map((f) => ({
    version: f.version,
    target: f.target!,
    sha256: f.sha256!,
    file: basename(f.path),
    path: f.path,
    size: f.size,
  }));
}

/** A library re-hashed by {@linkcode verifyCache}. */
export interface CheckedLibrary extends CachedLibrary {
  /** Whether its bytes still hash to `sha256`. */
  ok: boolean;
  /** The SHA-256 its bytes have now. */
  actual: string;
}

/**
 * Re-hashes every cached library of a tagged root and removes each damaged
 * one with its stamp (the next install fetches it again).
 *
 * @param root The cache root.
 * @param remove Removes one file (read-only and, on Windows, in-use aware).
 * @returns The walk and every library checked, in walk order.
 * @throws {CacheError} When the root is not tagged as Krepis's.
 */
export async function verifyCache(
  root: string,
  remove: (path: string) => Promise<void>,
): Promise<{ walk: CacheWalk; checked: CheckedLibrary[] }> {
  const walk = await walkCache(root);
  if (!walk.tagged) throw untagged(root, "verify");
  // node:crypto is slow to start: loaded only by a command that re-hashes.
  const { sha256File } = await import("./hash.ts");
  const checked: CheckedLibrary[] = [];
  for (const library of cachedLibraries(walk)) {
    const actual = await sha256File(library.path);
    const ok = actual === library.sha256;
    if (!ok) {
      await remove(library.path);
      await remove(`${library.path}.stamp.json`).catch(() => {});
    }
    checked.push({ ...library, ok, actual });
  }
  return { walk, checked };
}

/**
 * Removes whole versions a walk found, one at a time; a version with a file
 * a running process has loaded (Windows refuses to delete it) is kept and
 * reported, the others are still removed.
 *
 * @param walk A walk of a tagged root.
 * @param remove Removes one file (read-only and, on Windows, in-use aware).
 * @param versions Which versions to remove.
 * @param inUse Whether an error says a file is in use. @default {the OS's own rule}
 * @returns The versions removed (a file of Krepis's or the folder went), and
 *   those kept with the reason.
 * @throws {CacheError} When the root is not tagged, or a removal fails for
 *   another reason than a file in use.
 */
export async function removeVersions(
  walk: CacheWalk,
  remove: (path: string) => Promise<void>,
  versions: (version: string) => boolean,
  inUse: (error: unknown) => boolean = isInUse,
): Promise<{ removed: string[]; kept: { version: string; reason: string }[] }> {
  if (!walk.tagged) throw untagged(walk.root, "remove anything from");
  const removed: string[] = [];
  const kept: { version: string; reason: string }[] = [];
  for (const version of walk.versions.filter(versions)) {
    try {
      const files = await removeCacheFiles(walk, remove, (v) => v === version);
      // Removed is what went: a version folder that holds only what Krepis
      // did not make (left alone) is not reported as removed, run after run.
      const gone = await Deno.lstat(join(walk.root, version)).then(() => false, () => true);
      if (files.length > 0 || gone) removed.push(version);
    } catch (error) {
      if (!(error instanceof CacheError) || !inUse(error.cause)) throw error;
      kept.push({ version, reason: "a file in it is in use by a running process" });
    }
  }
  return { removed, kept };
}
