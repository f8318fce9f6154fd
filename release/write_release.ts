/**
 * Writes a release directory in the layout the loader reads from a mirror:
 * `<out>/v<version>/` with each target's library under its asset name, its
 * zstd and gzip copies, `manifest.json`, `SHA256SUMS` (coreutils format) and
 * `manifest.json.minisig`.
 *
 * @module
 */

import {
  formatManifest,
  type Manifest,
  MANIFEST_SCHEMA_VERSION,
  type ManifestTarget,
} from "../loader/manifest.ts";
import { targetByTriple } from "../loader/platform.ts";
import { type SigningKey, signMinisign } from "./minisign_sign.ts";
import { packArtifact, sha256Hex } from "./pack_artifact.ts";

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
  const dir = `${options.outDir}/v${options.version}`;
  await Deno.mkdir(dir, { recursive: true });
  const sums: [string, string][] = [];
  const put = async (name: string, bytes: Uint8Array) => {
    await Deno.writeFile(`${dir}/${name}`, bytes);
    const sha256 = sha256Hex(bytes);
    sums.push([sha256, name]);
    return { file: name, size: bytes.length, sha256 };
  };
  const targets: ManifestTarget[] = [];
  for (const artifact of options.artifacts) {
    const packed = packArtifact(
      await Deno.readFile(artifact.library),
      targetByTriple(artifact.triple),
    );
    for (const file of packed.files) await put(file.name, file.bytes);
    targets.push(packed.entry);
  }
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA_VERSION,
    version: options.version,
    abi: options.abi,
    targets,
  };
  const manifestBytes = new TextEncoder().encode(formatManifest(manifest));
  await put("manifest.json", manifestBytes);
  const comment = `timestamp:${
    Math.floor(Date.now() / 1000)
  }\tfile:manifest.json\tversion:${options.version}`;
  await Deno.writeTextFile(
    `${dir}/manifest.json.minisig`,
    await signMinisign(options.key, manifestBytes, comment),
  );
  sums.sort((a, b) => a[1].localeCompare(b[1]));
  await Deno.writeTextFile(
    `${dir}/SHA256SUMS`,
    sums.map(([hash, name]) => `${hash}  ${name}\n`).join(""),
  );
  return manifest;
}
