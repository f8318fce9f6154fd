/**
 * `install()`: find the kernel for a target, fetch it from a release host,
 * prove it is the right bytes, and cache it safely.
 *
 * @module
 */

import { absolute, dirname, join, normalize } from "./_path.ts";
import denoJson from "./deno.json" with { type: "json" };
import {
  AbiMismatchError,
  CacheError,
  IntegrityError,
  OfflineError,
  UnsupportedPlatformError,
} from "./errors.ts";
import { type AbiInfo, LOADER_ABI } from "./abi.ts";
import { cacheRoot } from "./cache_dir.ts";
import { ensureCacheRoot, isVersionName } from "./_cache_layout.ts";
import { asKrepisError } from "./_classify.ts";
import { DISK_FULL_HINT, isDiskFull } from "./_os_error.ts";
import {
  COMPRESSIONS,
  type Manifest,
  type ManifestTarget,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "./manifest.ts";
import { type MinisignPublicKey, parseMinisignPublicKey, verifyMinisign } from "./minisign.ts";
import { resolveTarget, targetByTriple, type TargetInfo } from "./platform.ts";
import { readEnv } from "./_env.ts";
import { PINNED, type PinnedChecksums } from "./_pinned.ts";
import { PROJECT_KEYS } from "./_keys.ts";
import { checkUrl, fetchFollowing, HttpStatusError, readCapped } from "./_http.ts";
import {
  commitTemp,
  createTemp,
  discardTemp,
  ensurePrivateDir,
  entryPaths,
  isCachedValid,
  readSmallFile,
  removeStaleTemps,
  type VerifyMode,
  withLock,
  writeAtomic,
  writeStamp,
} from "./_cache.ts";
import type { Candidate, Progress, Tuning } from "./_download.ts";
import { gaveUp, withRetries } from "./_retry.ts";
export type { VerifyMode } from "./_cache.ts";

/** The largest signature file the loader reads, in bytes. */
const MAX_SIGNATURE_SIZE = 4096;

export type { Progress } from "./_download.ts";
export type { PinnedChecksums, PinnedFile } from "./_pinned.ts";

/** The version of this loader, and of the kernel it loads (lock-step). */
export const VERSION: string = denoJson.version;

/** Where releases are downloaded from unless `KREPIS_MIRROR` says otherwise. */
export const DEFAULT_MIRROR = "https://github.com/krepis/krepis/releases/download";

/** Options for {@linkcode install}. */
export interface InstallOptions {
  /** The release version. @default {this loader's version} */
  version?: string;
  /** The target: a triple or a table entry. @default {this machine's target} */
  target?: string | TargetInfo;
  /** Release host base URL; files at `<mirror>/v<version>/<file>`. @default {`KREPIS_MIRROR`, else the GitHub releases of the project} */
  mirror?: string;
  /** Cache root. @default {`KREPIS_CACHE_DIR`, else the OS cache directory + `krepis`} */
  cacheDir?: string;
  /** Use the cache only. @default {`KREPIS_OFFLINE=1`} */
  offline?: boolean;
  /** Extra trusted minisign public keys (base64 line or `.pub` text). @default {`KREPIS_TRUSTED_KEY`, if set} */
  trustedKeys?: string[];
  /** How a cached file is checked: recorded stamp, or a full re-hash. @default {"stamp"} */
  verify?: VerifyMode;
  /** Checksums trusted without a signature. @default {the checksums pinned in this package} */
  pinned?: PinnedChecksums;
  /** Refuse a release whose manifest ABI this loader cannot use. @default {true} */
  checkAbi?: boolean;
  /** Download attempts per file (network errors, timeouts, 5xx). @default {4} */
  attempts?: number;
  /** First retry delay in ms; doubles per attempt, with jitter. @default {250} */
  retryDelayMs?: number;
  /** Time allowed for response headers, per request. @default {15000} */
  connectTimeoutMs?: number;
  /** Time allowed without receiving a byte. @default {15000} */
  idleTimeoutMs?: number;
  /** Time allowed for the whole install. @default {300000} */
  deadlineMs?: number;
  /** Called as bytes arrive. @default {no progress reports} */
  onProgress?: (progress: Progress) => void;
}

/** A verified, cached kernel library. */
export interface Installation {
  /** The cached library's path. */
  path: string;
  /** Its release version. */
  version: string;
  /** Its target. */
  target: TargetInfo;
  /** Bytes of the library. */
  size: number;
  /** Its verified SHA-256. */
  sha256: string;
  /** What vouched for the hash: the pinned checksums or a signature by key `<id>`. */
  trust: string;
  /** The ABI the release manifest declares (null when trusted by pin alone, offline). */
  abi: AbiInfo | null;
  /** Whether bytes were downloaded (false: served from the cache). */
  downloaded: boolean;
  /** The URL the bytes came from, when downloaded. */
  source: string | null;
}

/**
 * Makes the kernel for a target available in the cache and returns its path.
 *
 * Trust comes from (a) checksums pinned in this package for its own version,
 * or (b) a `manifest.json` whose minisign signature verifies against a
 * trusted key (the project's, `trustedKeys`, or `KREPIS_TRUSTED_KEY`). There
 * is no way to skip verification.
 *
 * A warm cache needs no network: the signed manifest is cached beside the
 * library and re-verified, and the library is checked against the stamp
 * recorded at install (or re-hashed with `verify: "full"`). A stale or
 * damaged file is downloaded again (or refused when offline). Concurrent
 * installers (threads or processes) wait on one lock and download once.
 *
 * @param options What to install and from where.
 * @returns The verified, cached library.
 * @throws {UnsupportedPlatformError} For a target that is not shipped, or
 *   missing from the release.
 * @throws {IntegrityError} When no trusted checksum exists or bytes, sizes,
 *   manifest or signature do not verify.
 * @throws {AbiMismatchError} When the release's ABI is not this loader's.
 * @throws {OfflineError} When offline and the kernel is not cached.
 * @throws {NetworkError} For network failures after retries, HTTP errors,
 *   and URL policy (https only, except loopback).
 * @throws {Deno.errors.TimedOut} When the host stops answering.
 * @throws {CacheError} For an unsafe or foreign cache directory, a full
 *   disk, anything standing where a cache file should be, or another
 *   installer holding the lock past the deadline.
 * @throws {PermissionError} When a Deno permission is missing (its hint
 *   names the flag).
 * @throws {TypeError} When `version` is not a semantic version or
 *   `cacheDir` is empty.
 *
 * @example Pre-downloading the kernel for a Linux arm64 image
 * ```ts ignore
 * import { install } from "@krepis/loader";
 *
 * const { path, sha256 } = await install({ target: "aarch64-unknown-linux-gnu" });
 * console.log(path, sha256);
 * ```
 */
export async function install(options: InstallOptions = {}): Promise<Installation> {
  try {
    return await installChecked(options);
  } catch (error) {
    throw asKrepisError(error, "install the kernel", options.cacheDir);
  }
}

async function installChecked(options: InstallOptions): Promise<Installation> {
  const version = options.version ?? VERSION;
  const target = typeof options.target === "string"
    ? targetByTriple(options.target)
    : options.target ?? resolveTarget();
  if (!isVersionName(version)) {
    throw new TypeError(
      `Cannot install the kernel: version ${
        JSON.stringify(version)
      } is not a semantic version\nHint: pass a version such as ${VERSION}, or leave it out for the loader's own`,
    );
  }
  if (options.cacheDir === "") {
    throw new TypeError(
      `Cannot use the cache directory "": it is empty\nHint: pass a directory, or leave cacheDir out for the default`,
    );
  }
  // One spelling of the root (absolute, no "//" or ".."), so that every
  // check below it sees the directories that are really used.
  const root = normalize(absolute(options.cacheDir ?? cacheRoot()));
  const offline = options.offline ?? readEnv("KREPIS_OFFLINE") === "1";
  const mode = options.verify ?? "stamp";
  const pinned = options.pinned ?? PINNED;
  const pin = pinned.version === version ? pinned.targets[target.triple] : undefined;
  const keys = trustedKeys(options.trustedKeys);
  const checkAbi = options.checkAbi ?? true;
  const deadlineMs = options.deadlineMs ?? 300_000;
  // setTimeout fires at once past 2^31-1 ms, and NaN compares false with everything.
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0 || deadlineMs > 2 ** 31 - 1) {
    throw new TypeError(
      `Cannot install the kernel: deadlineMs is ${deadlineMs}, not a number of milliseconds from 1 to ${
        2 ** 31 - 1
      }\nHint: leave it out for the default of 5 minutes`,
    );
  }
  const deadline = Date.now() + deadlineMs;
  // Every directory from the root down to the entry must be private: whoever
  // can write there could swap a library and its stamp.
  const targetDir = join(root, version, target.triple);
  // The root is checked (or made, private) first; it is tagged (or refused
  // as foreign) before anything is made inside it, and on any miss below. A
  // warm hit makes nothing, so it neither reads nor writes the tag.
  const tagRoot = () => ensureCacheRoot(root);
  await ensurePrivateDir(root, targetDir, { beforeCreate: tagRoot });

  // 1. The warm path: no network, no lock.
  const why: { rejected?: string } = {};
  const cached = await cachedTrust(root, version, target, keys, pin, why);
  if (cached) {
    if (checkAbi && cached.abi) refuseAbi(cached.abi, version);
    const paths = entryPaths(root, version, target.triple, cached.sha256, target.file);
    // root..targetDir was checked above
    await ensurePrivateDir(targetDir, paths.dir, { beforeCreate: tagRoot });
    if (await isCachedValid(paths, cached, mode)) {
      return { ...cached, path: paths.file, version, target, downloaded: false, source: null };
    }
  }
  await tagRoot();
  if (offline) {
    throw new OfflineError(
      why.rejected
        ? `Cannot install the kernel ${version} for ${target.triple} offline: the cached manifest at ${root} is not trusted (${why.rejected})\nHint: trust its key (KREPIS_TRUSTED_KEY or trustedKeys), or run \`krepis init\` with network access`
        : `Cannot install the kernel ${version} for ${target.triple} offline: it is not in the cache at ${root}${
          cached ? " (the cached copy failed verification)" : ""
        }\nHint: run \`krepis init\` with network access first, or unset KREPIS_OFFLINE`,
    );
  }

  // 2. The cold path, one installer at a time per version and target.
  const mirror = new URL(
    `${(options.mirror ?? readEnv("KREPIS_MIRROR") ?? DEFAULT_MIRROR).replace(/\/+$/, "")}/`,
  );
  checkUrl(mirror);
  const base = new URL(`v${version}/`, mirror);
  const lockPath = entryPaths(root, version, target.triple, "-", target.file).lock;
  return await withLock(lockPath, deadline, async () => {
    // Another installer may have finished while we waited.
    const again = await cachedTrust(root, version, target, keys, pin);
    if (again) {
      const paths = entryPaths(root, version, target.triple, again.sha256, target.file);
      if (await isCachedValid(paths, again, mode)) {
        if (checkAbi && again.abi) refuseAbi(again.abi, version);
        return { ...again, path: paths.file, version, target, downloaded: false, source: null };
      }
    }
    const tuning = {
      attempts: options.attempts ?? 4,
      baseDelayMs: options.retryDelayMs ?? 250,
      connectMs: options.connectTimeoutMs ?? 15_000,
      idleMs: options.idleTimeoutMs ?? 15_000,
      deadline,
    };
    const { manifest, manifestBytes, signature, trust } = await fetchManifest(
      base,
      version,
      keys,
      pin,
      tuning,
    );
    // An unsigned manifest (trusted by pin alone) says nothing trustworthy
    // about the ABI: the check after dlopen decides.
    const abi = trust === "pinned" ? null : manifest.abi;
    if (checkAbi && abi) refuseAbi(abi, version);
    // An unsigned manifest (trusted by the pin alone) sizes nothing and names
    // no trusted hash for a compressed copy: only the library itself is
    // fetched, bounded by the pinned size and checked against the pinned hash.
    const entry = trust === "pinned"
      ? { ...releaseEntry(manifest, target, pin), compressed: {} }
      : releaseEntry(manifest, target, pin);
    if (trust !== "pinned") {
      // <root>/<version> was checked (and made) with the target directory
      // above. The manifest is shared by every target of the version, so it
      // has the version's own lock (taken inside a target's, always in that
      // order): its stale temps are cleaned only under that lock, never
      // under one target's while another target writes.
      const versionDir = join(root, version);
      await withLock(join(versionDir, ".lock"), deadline, async () => {
        await removeStaleTemps(versionDir);
        await writeAtomic(
          join(versionDir, "manifest.json.minisig"),
          new TextEncoder().encode(signature!),
          0o644,
        );
        await writeAtomic(join(versionDir, "manifest.json"), manifestBytes, 0o644);
      });
    }
    const paths = entryPaths(root, version, target.triple, entry.sha256, target.file);
    await ensurePrivateDir(targetDir, paths.dir); // root..targetDir was checked above
    await removeStaleTemps(paths.dir);
    const source = await fetchLibrary(
      base,
      entry,
      paths.file,
      tuning,
      options.onProgress ?? (() => {}),
    );
    await writeStamp(paths, entry.sha256);
    return {
      path: paths.file,
      version,
      target,
      size: entry.size,
      sha256: entry.sha256,
      trust,
      abi,
      downloaded: true,
      source,
    };
  });
}

function trustedKeys(extra: string[] | undefined): MinisignPublicKey[] {
  const texts = [...PROJECT_KEYS, ...(extra ?? [])];
  const fromEnv = readEnv("KREPIS_TRUSTED_KEY");
  if (fromEnv && extra === undefined) texts.push(fromEnv);
  return texts.map((text) => parseMinisignPublicKey(text));
}

function refuseAbi(abi: Manifest["abi"], version: string): void {
  if (abi.major === LOADER_ABI.major && abi.minor >= LOADER_ABI.minor) return;
  throw new AbiMismatchError(
    `Cannot install release ${version}: its ABI ${abi.major}.${abi.minor} does not fit this loader's ABI ${LOADER_ABI.major}.${LOADER_ABI.minor}\nHint: use @krepis/loader ${version}, or install version ${VERSION} that matches this loader`,
    `v${version}`,
    LOADER_ABI,
    abi,
  );
}

/** Trust for a cached entry without the network: a pin, or the cached signed manifest. */
async function cachedTrust(
  root: string,
  version: string,
  target: TargetInfo,
  keys: MinisignPublicKey[],
  pin: { size: number; sha256: string } | undefined,
  why: { rejected?: string } = {},
): Promise<{ size: number; sha256: string; trust: string; abi: Manifest["abi"] | null } | null> {
  let manifest: Manifest | null = null;
  let trust = "";
  let cachedBytes = false;
  try {
    // Only regular files of sane size: a FIFO or a link to /dev/zero planted
    // in the cache must not hang or exhaust the loader.
    const bytes = await readSmallFile(join(root, version, "manifest.json"), MAX_MANIFEST_SIZE);
    const signatureBytes = await readSmallFile(
      join(root, version, "manifest.json.minisig"),
      MAX_SIGNATURE_SIZE,
    );
    if (!bytes || !signatureBytes) throw new Error("not cached");
    cachedBytes = true;
    const signature = new TextDecoder().decode(signatureBytes);
    const verified = await verifyMinisign(bytes, signature, keys, "manifest.json");
    checkTrustedComment(verified.trustedComment, version, "manifest.json");
    manifest = parseManifest(new TextDecoder().decode(bytes));
    trust = `signature by key ${verified.keyId}`;
  } catch (error) {
    manifest = null; // absent, damaged or no longer trusted: as if not cached
    // Cached but refused (a key no longer trusted, another release's comment): say so.
    if (cachedBytes) why.rejected = (error as Error).message.split("\n")[0];
  }
  if (pin) {
    const signed = manifest?.version === version ? manifest.abi : null;
    return { size: pin.size, sha256: pin.sha256, trust: "pinned", abi: signed };
  }
  if (!manifest || manifest.version !== version) return null;
  const entry = manifest.targets.find((t) => t.triple === target.triple);
  if (!entry || entry.file !== target.file) return null;
  return { size: entry.size, sha256: entry.sha256, trust, abi: manifest.abi };
}

async function fetchManifest(
  base: URL,
  version: string,
  keys: MinisignPublicKey[],
  pin: { size: number; sha256: string } | undefined,
  tuning: Tuning,
): Promise<
  { manifest: Manifest; manifestBytes: Uint8Array; signature: string | null; trust: string }
> {
  const manifestBytes = await fetchSmall(new URL("manifest.json", base), MAX_MANIFEST_SIZE, tuning);
  const signatureBytes = await fetchSmall(
    new URL("manifest.json.minisig", base),
    MAX_SIGNATURE_SIZE,
    tuning,
  ).catch(
    (error) => {
      if (pin) return null; // the pin is enough; compressed copies are checked against it
      throw error;
    },
  );
  let trust = "pinned";
  let signature: string | null = null;
  if (signatureBytes) {
    signature = new TextDecoder().decode(signatureBytes);
    try {
      const verified = await verifyMinisign(
        manifestBytes,
        signature,
        keys,
        `manifest.json of v${version}`,
      );
      checkTrustedComment(verified.trustedComment, version, `manifest.json of v${version}`);
      trust = `signature by key ${verified.keyId}`;
    } catch (error) {
      if (!pin) throw error;
      signature = null;
    }
  }
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  if (manifest.version !== version) {
    throw new IntegrityError(
      `Cannot use the manifest at ${base.href}: it describes version ${manifest.version}, not ${version}\nHint: the release host serves another release under v${version}; check KREPIS_MIRROR`,
    );
  }
  return { manifest, manifestBytes, signature, trust };
}

/**
 * Refuses a signature whose trusted comment does not name `manifest.json`
 * of this version: a valid signature of another release's manifest (or of
 * another file) must not vouch for this one.
 */
function checkTrustedComment(comment: string, version: string, what: string): void {
  const fields = new Map(
    comment.split(/\s+/).filter(Boolean).map((field) => {
      const at = field.indexOf(":");
      return [field.slice(0, at), field.slice(at + 1)] as const;
    }),
  );
  if (fields.get("file") !== "manifest.json" || fields.get("version") !== version) {
    throw new IntegrityError(
      `Cannot verify the signature of ${what}: its trusted comment ${
        JSON.stringify(comment)
      } does not name manifest.json of version ${version}\nHint: the release host serves a signature made for another file or release; check KREPIS_MIRROR`,
    );
  }
}

/** Fetches a small file (manifest, signature) in full, with the one retry policy and a size cap. */
async function fetchSmall(url: URL, cap: number, tuning: Tuning): Promise<Uint8Array> {
  const result = await withRetries(tuning, async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, tuning.deadline - Date.now()));
    try {
      const { response } = await fetchFollowing(url, {}, tuning.connectMs, controller);
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new HttpStatusError(
          `Cannot download ${url.href}: the server answered ${response.status} ${response.statusText}\nHint: check KREPIS_MIRROR and that release ${
            url.pathname.split("/").at(-2)
          } exists there`,
          response.status,
        );
      }
      return await readCapped(response, cap, tuning.idleMs, controller, () =>
        new IntegrityError(
          `Cannot read ${url.href}: it is larger than ${cap} bytes\nHint: the release host serves another file under this name; check KREPIS_MIRROR`,
        ));
    } finally {
      clearTimeout(timer);
    }
  });
  if (result.ok) return result.value;
  throw gaveUp(url, result.lastError, "", "check the network and KREPIS_MIRROR");
}

/** The manifest entry for the target, checked against the loader's own table and pin. */
function releaseEntry(
  manifest: Manifest,
  target: TargetInfo,
  pin: { size: number; sha256: string } | undefined,
) {
  const entry = manifest.targets.find((t) => t.triple === target.triple);
  if (!entry) {
    throw new UnsupportedPlatformError(
      `Cannot install the kernel for ${target.triple}: release ${manifest.version} does not include it (it has ${
        manifest.targets.map((t) => t.triple).join(", ") || "no targets"
      })\nHint: build the kernel yourself and set KREPIS_KERNEL_PATH, or use a release that ships ${target.triple}`,
      target.triple,
      manifest.targets.map((t) => t.triple),
    );
  }
  const mismatch = (field: string, found: unknown, expected: unknown) =>
    new IntegrityError(
      `Cannot use the manifest entry for ${target.triple}: its ${field} is ${
        JSON.stringify(found)
      }, the loader expects ${
        JSON.stringify(expected)
      }\nHint: the manifest does not match this loader's target table; use the matching @krepis/loader release`,
    );
  if (entry.file !== target.file) throw mismatch("file", entry.file, target.file);
  if (entry.os !== target.os || entry.arch !== target.arch || entry.libc !== target.libc) {
    throw mismatch(
      "platform",
      `${entry.os}/${entry.arch}/${entry.libc}`,
      `${target.os}/${target.arch}/${target.libc}`,
    );
  }
  for (const name of COMPRESSIONS) {
    const copy = entry.compressed[name];
    const expected = `${target.file}.${name === "zstd" ? "zst" : "gz"}`;
    if (copy && copy.file !== expected) {
      throw mismatch(`compressed.${name}.file`, copy.file, expected);
    }
  }
  if (pin && (entry.sha256 !== pin.sha256 || entry.size !== pin.size)) {
    throw new IntegrityError(
      `Cannot use the manifest entry for ${target.triple}: its checksum ${entry.sha256} is not the one pinned in @krepis/loader (${pin.sha256})\nHint: the release host serves a different build than this loader was released with`,
    );
  }
  return entry;
}

/** Downloads the library (zstd, then gzip, then raw) into its final cache path. */
async function fetchLibrary(
  base: URL,
  entry: ManifestTarget,
  finalPath: string,
  tuning: Tuning,
  onProgress: (progress: Progress) => void,
): Promise<string> {
  // The download machinery (node:zlib, node:crypto) loads only on this cold path.
  const { DiskError, downloadVerified, HAS_ZSTD } = await import("./_download.ts");
  const candidates: Candidate[] = [];
  for (const compression of COMPRESSIONS) {
    const copy = entry.compressed[compression];
    if (!copy || (compression === "zstd" && !HAS_ZSTD)) continue;
    candidates.push({
      url: new URL(copy.file, base),
      compression,
      size: copy.size,
      sha256: copy.sha256,
    });
  }
  candidates.push({
    url: new URL(entry.file, base),
    compression: null,
    size: entry.size,
    sha256: entry.sha256,
  });

  for (const [i, candidate] of candidates.entries()) {
    const temp = await createTemp(finalPath).catch((error) => {
      throw new DiskError(
        `Cannot create a temp file beside ${finalPath}: ${error.message}\nHint: check KREPIS_CACHE_DIR`,
        { cause: error },
      );
    });
    // Named by what it holds, so a partial of other bytes is never resumed.
    const partial = `${finalPath}.${candidate.sha256.slice(0, 16)}.partial`;
    try {
      await downloadVerified(candidate, entry, partial, temp.file, tuning, onProgress);
      // The stream was verified; the file must also hold exactly those bytes.
      const written = (await temp.file.stat()).size;
      if (written !== entry.size) {
        throw new DiskError(
          `Cannot write to the cache: the temp file holds ${written} bytes, not ${entry.size}\nHint: check the disk behind KREPIS_CACHE_DIR`,
        );
      }
      await commitTemp(temp, finalPath, 0o444).catch((error) => {
        // A CacheError (Windows: the old file is in use) already says what to do.
        if (error instanceof CacheError) throw error;
        throw new DiskError(
          `Cannot move the kernel into the cache: ${
            isDiskFull(error) ? "the disk is full" : error.message
          }\nHint: ${
            isDiskFull(error)
              ? DISK_FULL_HINT
              : `remove whatever stands at ${finalPath}, then run the command again`
          }`,
          { cause: error },
        );
      });
      await removePartials(dirname(finalPath));
      return candidate.url.href;
    } catch (error) {
      await discardTemp(temp);
      if (error instanceof DiskError) await Deno.remove(partial).catch(() => {});
      // Fall back to the next copy only when this one is missing (404/410).
      const missing = (error as { status?: number }).status === 404 ||
        (error as { status?: number }).status === 410;
      if (!missing || i === candidates.length - 1) throw error;
    }
  }
  throw new Error("unreachable");
}

/** Removes partial downloads of other copies once the library is in place. */
async function removePartials(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".partial")) await Deno.remove(join(dir, entry.name)).catch(() => {});
  }
}
