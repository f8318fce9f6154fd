/**
 * Transfers on a cache miss: the release's manifest and signature, then the
 * library itself (its zstd copy, else gzip, else the file as it is), with the
 * one retry policy of `retry.ts`. What the fetched bytes are worth is decided
 * in `trust.ts`; this module only moves them. Loaded by `install()` only when
 * the cache cannot serve, so a warm load never pays for it.
 *
 * @module
 */

import { dirname, join } from "../_internal/path.ts";
import { CacheError, IntegrityError } from "../errors.ts";
import { DISK_FULL_HINT, isDiskFull } from "../_internal/os_error.ts";
import {
  COMPRESSIONS,
  type Manifest,
  type ManifestTarget,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "../manifest.ts";
import type { MinisignPublicKey } from "../minisign.ts";
import {
  checkUrl,
  fetchFollowing,
  HttpStatusError,
  parseMirror,
  PolicyError,
  readCapped,
} from "./http.ts";
import { gaveUp, withRetries } from "./retry.ts";
import { commitTemp, createTemp, discardTemp } from "./cache.ts";
import { MAX_SIGNATURE_SIZE, type Pin, verifyManifestSignature } from "./trust.ts";
import type { Progress } from "../types.ts";
import type { Candidate, Tuning } from "./download.ts";

/**
 * The base URL of a release's files, `<mirror>/v<version>/`; https only,
 * except on loopback.
 */
export function releaseBase(mirror: string, version: string): URL {
  const url = parseMirror(mirror);
  if (typeof url === "string") throw new PolicyError(url);
  const base = new URL(`${url.href.replace(/\/+$/, "")}/`);
  checkUrl(base);
  return new URL(`v${version}/`, base);
}

/** A fetched manifest and what vouches for it. */
export interface FetchedManifest {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  /** The signature's text, or null when the pin alone vouches. */
  signature: string | null;
  /** `"pinned"`, or `signature by key <id>`. */
  trust: string;
}

/**
 * Fetches `manifest.json` and its signature from `base` and verifies them.
 * With a pin, a missing or failing signature is not fatal: the pin vouches
 * for the library, and the manifest is used for file names alone.
 */
export async function fetchManifest(
  base: URL,
  version: string,
  keys: MinisignPublicKey[],
  pin: Pin | undefined,
  tuning: Tuning,
): Promise<FetchedManifest> {
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
      const keyId = await verifyManifestSignature(
        manifestBytes,
        signature,
        keys,
        version,
        `manifest.json of v${version}`,
      );
      trust = `signature by key ${keyId}`;
    } catch (error) {
      if (!pin) throw error;
      signature = null;
    }
  }
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  if (manifest.version !== version) {
    throw new IntegrityError(
      `Cannot use the manifest at ${base.href}: it describes version ${manifest.version}, not ${version}`,
      { hint: `the release host serves another release under v${version}; check KREPIS_MIRROR` },
    );
  }
  return { manifest, manifestBytes, signature, trust };
}

/** Fetches a small file (manifest, signature) in full, with the one retry policy and a size cap. */
export async function fetchSmall(url: URL, cap: number, tuning: Tuning): Promise<Uint8Array> {
  const result = await withRetries(tuning, async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, tuning.deadline - Date.now()));
    try {
      const { response } = await fetchFollowing(url, {}, tuning.connectMs, controller);
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new HttpStatusError(
          `Cannot download ${url.href}: the server answered ${response.status} ${response.statusText}`,
          response.status,
          {
            hint: `check KREPIS_MIRROR and that release ${
              url.pathname.split("/").at(-2)
            } exists there`,
          },
        );
      }
      return await readCapped(response, cap, tuning.idleMs, controller, () =>
        new IntegrityError(
          `Cannot read ${url.href}: it is larger than ${cap} bytes`,
          { hint: `the release host serves another file under this name; check KREPIS_MIRROR` },
        ));
    } finally {
      clearTimeout(timer);
    }
  });
  if (result.ok) return result.value;
  throw gaveUp(url, result.lastError, "", "check the network and KREPIS_MIRROR");
}

/**
 * Downloads the library (zstd, then gzip, then raw) into its final cache
 * path, verified against the entry. Falls back to the next copy only when
 * one is missing (404/410).
 *
 * @returns The URL the bytes came from.
 */
export async function fetchLibrary(
  base: URL,
  entry: ManifestTarget,
  finalPath: string,
  tuning: Tuning,
  onProgress: (progress: Progress) => void,
): Promise<string> {
  // The download machinery (node:zlib, node:crypto) loads only here.
  const { DiskError, downloadVerified, HAS_ZSTD } = await import("./download.ts");
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
        `Cannot create a temp file beside ${finalPath}: ${error.message}`,
        { cause: error, hint: `check KREPIS_CACHE_DIR` },
      );
    });
    // Named by what it holds, so a partial of other bytes is never resumed.
    const partialPath = `${finalPath}.${candidate.sha256.slice(0, 16)}.partial`;
    try {
      await downloadVerified({
        candidate,
        raw: entry,
        partialPath,
        out: temp.file,
        tuning,
        onProgress,
      });
      // The stream was verified; the file must also hold exactly those bytes.
      const written = (await temp.file.stat()).size;
      if (written !== entry.size) {
        throw new DiskError(
          `Cannot write to the cache: the temp file holds ${written} bytes, not ${entry.size}`,
          { hint: `check the disk behind KREPIS_CACHE_DIR` },
        );
      }
      await commitTemp(temp, finalPath, 0o444).catch((error) => {
        // A CacheError (Windows: the old file is in use) already says what to do.
        if (error instanceof CacheError) throw error;
        throw new DiskError(
          `Cannot move the kernel into the cache: ${
            isDiskFull(error) ? "the disk is full" : error.message
          }`,
          {
            cause: error,
            hint: `${
              isDiskFull(error)
                ? DISK_FULL_HINT
                : `remove whatever stands at ${finalPath}, then run the command again`
            }`,
          },
        );
      });
      await removePartials(dirname(finalPath));
      return candidate.url.href;
    } catch (error) {
      await discardTemp(temp);
      if (error instanceof DiskError) await Deno.remove(partialPath).catch(() => {});
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
