/**
 * Writes a release directory in the layout the loader reads from a mirror:
 * `<out>/v<version>/` with each target's library under its asset name, its
 * zstd and gzip copies, `manifest.json`, `SHA256SUMS` (coreutils format) and
 * `manifest.json.minisig`.
 *
 * @module
 */

import { type Manifest, MANIFEST_SCHEMA_VERSION, type ManifestTarget } from "../loader/release.ts";
import { targetByTriple } from "../loader/release.ts";
import type { SigningKey } from "./minisign_sign.ts";
import { packArtifact, type PackedFile } from "../matrix/pack_artifact.ts";
import { writeSignedDir } from "./signed_dir.ts";

/** One built library to publish. */
export interface ReleaseArtifact {
  /** Its target triple (must be in the target table). */
  triple: string;
  /** Path of the built library. */
  library: string;
}

/** What to write. */
export interface WriteReleaseOptions {
  /** The mirror root; files go to `<outDir>/v<version>/`. */
  outDir: string;
  /** The lock-step version. */
  version: string;
  /** The ABI every artifact implements. */
  abi: Manifest["abi"];
  /** The libraries. */
  artifacts: ReleaseArtifact[];
  /** The key that signs manifest.json. */
  key: SigningKey;
}

/**
 * Writes the release directory.
 *
 * @param options What to write.
 * @returns The manifest written.
 */
export async function writeRelease(options: WriteReleaseOptions): Promise<Manifest> {
  const targets: ManifestTarget[] = [];
  const files: PackedFile[] = [];
  for (const artifact of options.artifacts) {
    const packed = packArtifact(
      await Deno.readFile(artifact.library),
      targetByTriple(artifact.triple),
    );
    files.push(...packed.files);
    targets.push(packed.entry);
  }
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA_VERSION,
    version: options.version,
    abi: options.abi,
    targets,
  };
  await writeSignedDir(options.outDir, manifest, files, options.key);
  return manifest;
}
