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
import { kernelPath } from "./_kernel.ts";

/** Writes the build into `<dist>/kernel-<triple>/` and returns its fragment. */
export async function writeDist(dist: string): Promise<Fragment> {
  const host = resolveTarget();
  return await writeFragmentDir(
    join(dist, `kernel-${host.triple}`),
    await Deno.readFile(await kernelPath()),
    host,
  );
}
