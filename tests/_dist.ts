/**
 * Test helper: a `dist/` holding this machine's kernel build as the CI
 * artifact download lays it out: `<dist>/kernel-<triple>/`, packed by the
 * build's own `writeFragmentDir()`.
 *
 * @module
 */

import { join } from "node:path";
import { resolveTarget } from "../loader/mod.ts";
import { type Fragment, writeFragmentDir } from "../matrix/fragment.ts";
import { copyDir } from "./_fs.ts";
import { kernelPath } from "./_kernel.ts";

// Packing (zstd level 19, gzip level 9) is the slow part: done once per
// test process, then copied.
let packed: Promise<{ dir: string; fragment: Fragment }> | undefined;

async function pack(): Promise<{ dir: string; fragment: Fragment }> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-dist-packed-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const host = resolveTarget();
  const fragment = await writeFragmentDir(
    join(dir, `kernel-${host.triple}`),
    await Deno.readFile(await kernelPath()),
    host,
  );
  return { dir, fragment };
}

/** Writes the build into `<dist>/kernel-<triple>/` and returns its fragment. */
export async function writeDist(dist: string): Promise<Fragment> {
  packed ??= pack();
  const { dir, fragment } = await packed;
  const name = `kernel-${resolveTarget().triple}`;
  await copyDir(join(dir, name), join(dist, name));
  return structuredClone(fragment);
}
