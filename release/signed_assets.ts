/**
 * The signed part of a release, made in one place for every host (a
 * directory or a GitHub release): `manifest.json`, its minisign signature
 * `manifest.json.minisig` (with the trusted comment the loader checks) and
 * `SHA256SUMS` (coreutils format, sorted by name, covering every file and
 * the manifest).
 *
 * @module
 */

import { formatManifest, type Manifest, manifestTrustedComment } from "../loader/release.ts";
import { type SigningKey, signMinisign } from "./minisign_sign.ts";
import { type PackedFile, sha256Hex } from "../matrix/pack_artifact.ts";

/** A release's files, split by how a host treats them. */
export interface SignedAssets {
  /** The given files and `manifest.json`: never changed once published. */
  content: PackedFile[];
  /** `manifest.json.minisig` and `SHA256SUMS`, derived from the content. */
  derived: PackedFile[];
}

/**
 * Renders the manifest and signs it, and lists every file's checksum.
 *
 * @param manifest The manifest.
 * @param files The release's files (libraries and compressed copies).
 * @param key The signing key.
 * @returns The content (files and manifest) and what is derived from it.
 */
export async function signedAssets(
  manifest: Manifest,
  files: PackedFile[],
  key: SigningKey,
): Promise<SignedAssets> {
  const encoder = new TextEncoder();
  const manifestBytes = encoder.encode(formatManifest(manifest));
  const content = [...files, { name: "manifest.json", bytes: manifestBytes }];
  const signature = await signMinisign(
    key,
    manifestBytes,
    manifestTrustedComment(manifest.version),
  );
  const sums = content
    .map((file) => [sha256Hex(file.bytes), file.name] as const)
    .sort((a, b) => a[1].localeCompare(b[1]))
    .map(([hash, name]) => `${hash}  ${name}\n`)
    .join("");
  return {
    content,
    derived: [
      { name: "manifest.json.minisig", bytes: encoder.encode(signature) },
      { name: "SHA256SUMS", bytes: encoder.encode(sums) },
    ],
  };
}
