/**
 * `install()`: find the kernel for a target, fetch it from a release host,
 * prove it is the right bytes, and cache it safely.
 *
 * @module
 */

import { summaryOf } from "./_internal/summary.ts";
import { absolute, join, normalize } from "./_internal/path.ts";
import { IntegrityError, NetworkError, OfflineError, PermissionError } from "./errors.ts";
import type { AbiInfo } from "./abi.ts";
import { VERSION } from "./version.ts";
import { cacheRoot } from "./cache_dir.ts";
import { ensureCacheRoot, isVersionName } from "./_install/cache_layout.ts";
import { asKrepisError } from "./_internal/classify.ts";
import { checkKeys } from "./_internal/options.ts";
import { resolveTarget, targetByTriple } from "./platform.ts";
import type { TargetInfo } from "./types.ts";
import { readEnvFlag } from "./_internal/env.ts";
import { PINNED } from "./_gen/pinned.ts";
import {
  ensurePrivateDir,
  entryPaths,
  isCachedValid,
  removeStaleTemps,
  withLock,
  writeAtomic,
  writeStamp,
} from "./_install/cache.ts";
import { cachedTrust, releaseEntry } from "./_install/trust.ts";
import { krepisMirror, refuseAbi, trustedKeys } from "./_internal/krepis_release.ts";
import type { PinnedChecksums, Progress, VerifyMode } from "./types.ts";
export type { PinnedChecksums, PinnedFile, Progress, VerifyMode } from "./types.ts";
export { VERSION } from "./version.ts";

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
  /** Use the cache only. @default {`KREPIS_OFFLINE` (1, true or yes)} */
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

/** Every key of {@linkcode InstallOptions}; `load()` takes these and `path`. */
export const INSTALL_OPTION_KEYS = [
  "version",
  "target",
  "mirror",
  "cacheDir",
  "offline",
  "trustedKeys",
  "verify",
  "pinned",
  "checkAbi",
  "attempts",
  "retryDelayMs",
  "connectTimeoutMs",
  "idleTimeoutMs",
  "deadlineMs",
  "onProgress",
] as const satisfies readonly (keyof InstallOptions)[];

// Fails to type-check when InstallOptions gains a key the list lacks.
const _everyKeyListed: Exclude<keyof InstallOptions, (typeof INSTALL_OPTION_KEYS)[number]> extends
  never ? true : never = true;

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
 * @throws {TypeError} When `options` has a key it does not know (the nearest known one is named).
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
  checkKeys("install the kernel", options, INSTALL_OPTION_KEYS);
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
  const offline = options.offline ?? readEnvFlag("KREPIS_OFFLINE") ?? false;
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
  // A cache whose manifest's key is no longer trusted (a rotated or
  // forgotten key): when the way around it, fetching the release again, is
  // closed (no write or network permission, no network), that is the cause
  // the caller is told, not the closed way.
  const untrusted = (error: unknown): unknown => {
    const closed = error instanceof Deno.errors.NotCapable || error instanceof PermissionError ||
      error instanceof NetworkError || error instanceof Deno.errors.TimedOut;
    if (!why.rejected || !closed) return error;
    const how = summaryOf(error);
    return new IntegrityError(
      `Cannot use the cached kernel ${version} for ${target.triple}: the cached manifest at ${root} is signed by a key that is no longer trusted (${why.rejected}), and it could not be fetched again (${how})`,
      {
        cause: error,
        hint:
          `trust the key that signed it (KREPIS_TRUSTED_KEY or trustedKeys), or run \`krepis init\` (network access, write access to the cache) to fetch the release signed by a trusted key`,
      },
    );
  };
  try {
    await tagRoot();
  } catch (error) {
    throw untrusted(error);
  }
  if (offline) {
    throw why.rejected
      ? new OfflineError(
        `Cannot install the kernel ${version} for ${target.triple} offline: the cached manifest at ${root} is not trusted (${why.rejected})`,
        {
          hint:
            "trust its key (KREPIS_TRUSTED_KEY or trustedKeys), or run `krepis init` with network access",
        },
      )
      : new OfflineError(
        `Cannot install the kernel ${version} for ${target.triple} offline: it is not in the cache at ${root}${
          cached ? " (the cached copy failed verification)" : ""
        }`,
        { hint: "run `krepis init` with network access first, or unset KREPIS_OFFLINE" },
      );
  }

  // 2. The cold path, one installer at a time per version and target. The
  // transfer machinery loads only now: a warm load never pays for it.
  const transfer = await import("./_install/transfer.ts");
  const base = transfer.releaseBase(krepisMirror(options.mirror), version);
  const lockPath = entryPaths(root, version, target.triple, "-", target.file).lock;
  try {
    return await coldInstall();
  } catch (error) {
    throw untrusted(error);
  }
  async function coldInstall(): Promise<Installation> {
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
      const { manifest, manifestBytes, signature, trust } = await transfer.fetchManifest(
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
      const source = await transfer.fetchLibrary(
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
}
