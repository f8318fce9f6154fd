/**
 * The signing key of `deno task demo --out <dir>`: made once, then kept.
 * Its secret is saved as `<dir>/.demo-signing-key` (owner-only; a dot file,
 * which `deno task serve` never serves), its public half as `<dir>/key.pub`.
 * A second run on the same folder signs with the same key, so a cache
 * filled from the first run, and every `KREPIS_TRUSTED_KEY` pointing at
 * `key.pub`, stay valid.
 *
 * @module
 */

import { join } from "node:path";
import { generateSigningKey, publicKeyFile, type SigningKey } from "../release/minisign_sign.ts";
import { exportSigningKey, importSigningKey } from "../release/signing_key.ts";

/** The file that holds the demo key's secret, inside the kept folder. */
export const DEMO_KEY_FILE = ".demo-signing-key";

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * The key to sign the demo release with: the one kept in `dir`, or a new
 * one (saved in `dir` when given).
 *
 * @param dir The `--out` folder, or undefined for a throwaway key.
 * @returns The key, and whether it was kept from an earlier run.
 * @throws {Error} When `dir` has a `key.pub` without the secret beside it
 *   (a key this tool did not make, or an older demo's): it is never replaced.
 */
export async function demoKey(dir?: string): Promise<{ key: SigningKey; kept: boolean }> {
  if (dir === undefined) return { key: await generateSigningKey(), kept: false };
  const secretPath = join(dir, DEMO_KEY_FILE);
  const publicPath = join(dir, "key.pub");
  const secret = await readOrNull(secretPath);
  const pub = await readOrNull(publicPath);
  if (secret !== null) {
    const key = await importSigningKey(secret);
    if (pub !== null && pub !== publicKeyFile(key)) {
      throw new Error(
        `Cannot keep the demo key of ${dir}: key.pub is not the public half of ${DEMO_KEY_FILE}\nHint: restore key.pub, or use a new --out folder`,
      );
    }
    return { key, kept: true };
  }
  if (pub !== null) {
    throw new Error(
      `Cannot keep the demo key of ${dir}: it has a key.pub but no ${DEMO_KEY_FILE} to sign with, so a new key would make caches and KREPIS_TRUSTED_KEY that use key.pub fail\nHint: use a new --out folder, or remove ${publicPath} to start over with a new key`,
    );
  }
  const key = await generateSigningKey();
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(secretPath, `${await exportSigningKey(key)}\n`, {
    createNew: true,
    mode: 0o600,
  });
  return { key, kept: false };
}
