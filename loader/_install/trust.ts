/**
 * Trust decisions: which keys are trusted, whether a signed manifest
 * vouches for this release, whether its entry for a target fits the
 * loader's table and pin, and whether its ABI fits this loader. Nothing
 * here touches the network; `transfer.ts` fetches, this decides.
 *
 * @module
 */

import { summaryOf } from "../_internal/summary.ts";
import { IntegrityError, UnsupportedPlatformError } from "../errors.ts";
import { COMPRESSIONS, type Manifest, MAX_MANIFEST_SIZE, parseManifest } from "../manifest.ts";
import { type MinisignPublicKey, verifyMinisign } from "../minisign.ts";
import type { TargetInfo } from "../types.ts";
import { readSmallFile } from "./cache.ts";
import { join } from "../_internal/path.ts";

/** The largest signature file the loader reads, in bytes. */
export const MAX_SIGNATURE_SIZE = 4096;

/** A pinned checksum of the library, trusted without a signature. */
export interface Pin {
  size: number;
  sha256: string;
}

/** What vouches for a library: its size, hash, who vouched, and the signed ABI if any. */
export interface Trusted {
  size: number;
  sha256: string;
  /** `"pinned"`, or `signature by key <id>`. */
  trust: string;
  abi: Manifest["abi"] | null;
}

/**
 * Verifies a manifest's minisign signature against the trusted keys and
 * checks that its trusted comment names `manifest.json` of `version`.
 *
 * @returns The id of the key that signed.
 * @throws {IntegrityError} When the signature does not verify or was made
 *   for another file or release.
 */
export async function verifyManifestSignature(
  bytes: Uint8Array,
  signature: string,
  keys: MinisignPublicKey[],
  version: string,
  what: string,
): Promise<string> {
  const verified = await verifyMinisign(bytes, signature, { keys, what });
  checkTrustedComment(verified.trustedComment, version, what);
  return verified.keyId;
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
      } does not name manifest.json of version ${version}`,
      {
        hint:
          `the release host serves a signature made for another file or release; check KREPIS_MIRROR`,
      },
    );
  }
}

/**
 * Trust for a cached entry without the network: a pin, or the cached
 * manifest whose signature verifies again now (a key no longer trusted no
 * longer vouches). Null when nothing cached vouches for this target; then
 * `why.rejected` says why a cached manifest was refused, if one was.
 */
export async function cachedTrust(
  root: string,
  version: string,
  target: TargetInfo,
  keys: MinisignPublicKey[],
  pin: Pin | undefined,
  why: { rejected?: string } = {},
): Promise<Trusted | null> {
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
    const keyId = await verifyManifestSignature(bytes, signature, keys, version, "manifest.json");
    manifest = parseManifest(new TextDecoder().decode(bytes));
    trust = `signature by key ${keyId}`;
  } catch (error) {
    manifest = null; // absent, damaged or no longer trusted: as if not cached
    // Cached but refused (a key no longer trusted, another release's comment): say so.
    if (cachedBytes) why.rejected = summaryOf(error);
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

/** The manifest entry for the target, checked against the loader's own table and pin. */
export function releaseEntry(manifest: Manifest, target: TargetInfo, pin: Pin | undefined) {
  const entry = manifest.targets.find((t) => t.triple === target.triple);
  if (!entry) {
    throw new UnsupportedPlatformError(
      `Cannot install the kernel for ${target.triple}: release ${manifest.version} does not include it (it has ${
        manifest.targets.map((t) => t.triple).join(", ") || "no targets"
      })`,
      target.triple,
      manifest.targets.map((t) => t.triple),
      {
        hint:
          `build the kernel yourself and set KREPIS_KERNEL_PATH, or use a release that ships ${target.triple}`,
      },
    );
  }
  const mismatch = (field: string, found: unknown, expected: unknown) =>
    new IntegrityError(
      `Cannot use the manifest entry for ${target.triple}: its ${field} is ${
        JSON.stringify(found)
      }, the loader expects ${JSON.stringify(expected)}`,
      {
        hint:
          `the manifest does not match this loader's target table; use the matching @krepis/loader release`,
      },
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
      `Cannot use the manifest entry for ${target.triple}: its checksum ${entry.sha256} is not the one pinned in @krepis/loader (${pin.sha256})`,
      { hint: `the release host serves a different build than this loader was released with` },
    );
  }
  return entry;
}
