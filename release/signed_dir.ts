/**
 * Writes a release directory in mirror layout, `<out>/v<version>/`: the
 * given files, `manifest.json`, `SHA256SUMS` (coreutils format, every file
 * including the manifest) and `manifest.json.minisig`.
 *
 * @module
 */

import type { Manifest } from "../loader/release.ts";
import type { SigningKey } from "./minisign_sign.ts";
import { type PackedFile, sha256Hex } from "../matrix/pack_artifact.ts";
import { signedAssets } from "./signed_assets.ts";

/**
 * Writes the files, the manifest, its signature and the checksums.
 *
 * @param outDir The mirror root.
 * @param manifest The manifest to write and sign.
 * @param files The release's files (libraries and compressed copies).
 * @param key The signing key.
 * @returns `<outDir>/v<version>`.
 */
export async function writeSignedDir(
  outDir: string,
  manifest: Manifest,
  files: PackedFile[],
  key: SigningKey,
): Promise<string> {
  const dir = `${outDir}/v${manifest.version}`;
  await Deno.mkdir(dir, { recursive: true });
  const { content, derived } = await signedAssets(manifest, files, key);
  // A version already in the directory is never changed: the same bytes are
  // kept (a re-run), other bytes are refused before anything is written.
  for (const file of content) {
    const path = `${dir}/${file.name}`;
    const existing = await Deno.readFile(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    });
    if (existing && sha256Hex(existing) !== sha256Hex(file.bytes)) {
      throw new Error(
        `Cannot publish ${file.name} to ${dir}: it is already there with other bytes, and a published version never changes\nHint: release a new version, or remove ${dir} if nobody has used it`,
      );
    }
  }
  for (const file of [...content, ...derived]) {
    await Deno.writeFile(`${dir}/${file.name}`, file.bytes);
  }
  return dir;
}
