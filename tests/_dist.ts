/**
 * Test helper: a `dist/` holding this machine's kernel build as
 * `deno task build` (and the CI artifact download) lays it out:
 * `<dist>/kernel-<triple>/` with the packed files and `fragment.json`.
 *
 * @module
 */

import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import type { Fragment } from "../matrix/build.ts";
import { packArtifact } from "../release/pack_artifact.ts";
import { kernelPath } from "./_kernel.ts";

/** Writes the build into `<dist>/kernel-<triple>/` and returns its fragment. */
export async function writeDist(dist: string): Promise<Fragment> {
  const host = resolveTarget();
  const dir = `${dist}/kernel-${host.triple}`;
  await Deno.mkdir(dir, { recursive: true });
  const packed = packArtifact(await Deno.readFile(await kernelPath()), host);
  for (const file of packed.files) await Deno.writeFile(`${dir}/${file.name}`, file.bytes);
  const fragment: Fragment = {
    schema: 1,
    version: VERSION,
    abi: { ...LOADER_ABI },
    target: packed.entry,
  };
  await Deno.writeTextFile(`${dir}/fragment.json`, JSON.stringify(fragment));
  return fragment;
}
