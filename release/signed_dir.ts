/**
 * Writes a release directory in mirror layout, `<out>/v<version>/`: the
 * given files, `manifest.json`, `SHA256SUMS` (coreutils format, every file
 * including the manifest) and `manifest.json.minisig`.
 *
 * @module
 */

import { formatManifest, type Manifest, manifestTrustedComment } from "../loader/manifest.ts";
import { type SigningKey, signMinisign } from "./minisign_sign.ts";
import { type PackedFile, sha256Hex } from "./pack_artifact.ts";

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
  const sums: [string, string][] = [];
  const manifestBytes = new TextEncoder().encode(formatManifest(manifest));
  const all = [...files, { name: "manifest.json", bytes: manifestBytes }];
  // A version already in the directory is never changed: the same bytes are
  // kept (a re-run), other bytes are refused before anything is written.
  for (const file of all) {
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
  for (const file of all) {
    await Deno.writeFile(`${dir}/${file.name}`, file.bytes);
    sums.push([sha256Hex(file.bytes), file.name]);
  }
  const comment = manifestTrustedComment(manifest.version);
  await Deno.writeTextFile(
    `${dir}/manifest.json.minisig`,
    await signMinisign(key, manifestBytes, comment),
  );
  sums.sort((a, b) => a[1].localeCompare(b[1]));
  await Deno.writeTextFile(
    `${dir}/SHA256SUMS`,
    sums.map(([hash, name]) => `${hash}  ${name}\n`).join(""),
  );
  return dir;
}
