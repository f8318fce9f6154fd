/**
 * Test helper: a real, signed release directory of the kernel built for this
 * machine, made once per test process with a throwaway key.
 *
 * @module
 */

import { join } from "node:path";
import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { type Manifest } from "../loader/release.ts";
import {
  generateSigningKey,
  publicKeyBase64,
  publicKeyFile,
  type SigningKey,
} from "../release/minisign_sign.ts";
import { writeRelease } from "../release/write_release.ts";
import { copyDir } from "./_fs.ts";
import { kernelPath } from "./_kernel.ts";

/** A release directory in mirror layout. */
export interface ReleaseFixture {
  /** Mirror root: files at `<dir>/v<version>/<file>`. */
  dir: string;
  /** `<dir>/v<version>`. */
  versionDir: string;
  /** The throwaway key. */
  key: SigningKey;
  /** Its public key, minisign base64 (for `KREPIS_TRUSTED_KEY`). */
  publicKey: string;
  /** `<dir>/key.pub`. */
  publicKeyPath: string;
  /** The manifest written. */
  manifest: Manifest;
  /** This machine's entry in it. */
  entry: Manifest["targets"][number];
}

let made: Promise<ReleaseFixture> | undefined;

/** The shared release fixture (do not modify its files; copy them). */
export function releaseFixture(): Promise<ReleaseFixture> {
  made ??= makeRelease();
  return made;
}

/**
 * Writes a new signed release into a temp dir: of this machine's kernel, or
 * of the given artifacts (`entry` is then this machine's, if present, else
 * the first).
 */
export async function makeRelease(
  artifacts?: { triple: string; library: string }[],
): Promise<ReleaseFixture> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-release-" });
  const key = await generateSigningKey();
  const target = resolveTarget();
  const manifest = await writeRelease({
    outDir: dir,
    version: VERSION,
    abi: { ...LOADER_ABI },
    artifacts: artifacts ?? [{ triple: target.triple, library: await kernelPath() }],
    key,
  });
  const publicKeyPath = join(dir, "key.pub");
  await Deno.writeTextFile(publicKeyPath, publicKeyFile(key));
  return {
    dir,
    versionDir: join(dir, `v${VERSION}`),
    key,
    publicKey: publicKeyBase64(key),
    publicKeyPath,
    manifest,
    entry: manifest.targets.find((t) => t.triple === target.triple) ?? manifest.targets[0],
  };
}

/** A copy of the fixture's mirror directory that a test may damage. */
export async function copyRelease(fixture: ReleaseFixture): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-mirror-" });
  await copyDir(fixture.dir, dir);
  return dir;
}
