/**
 * The build fragment: what `deno task build` leaves in `dist/<triple>/` for
 * the release step, and the one place its format is written and read.
 * `fragment.json` holds the lock-step version, the ABI and the target's
 * manifest entry (size, sha256, compressed copies); the library and its
 * `.zst` and `.gz` copies lie beside it.
 *
 * @module
 */

import { LOADER_ABI, type TargetInfo, VERSION } from "../loader/mod.ts";
import { packArtifact } from "./pack_artifact.ts";

/** The per-target fragment the release step merges into the manifest. */
export interface Fragment {
  /** Fragment format. */
  schema: 1;
  /** The lock-step version the kernel was built from. */
  version: string;
  /** The ABI it implements. */
  abi: { major: number; minor: number; fingerprint: string };
  /** Its manifest entry. */
  target: ReturnType<typeof packArtifact>["entry"];
}

/** A fragment and the directory holding its files. */
export interface FragmentSource {
  dir: string;
  fragment: Fragment;
}

/**
 * Packs a checked library into `dir`: its release name, `.zst` and `.gz`
 * copies, and `fragment.json` for the release step.
 *
 * @param dir The output directory (created).
 * @param bytes The library.
 * @param target Its target.
 * @returns The fragment written.
 */
export async function writeFragmentDir(
  dir: string,
  bytes: Uint8Array,
  target: TargetInfo,
): Promise<Fragment> {
  const packed = packArtifact(bytes, target);
  await Deno.mkdir(dir, { recursive: true });
  for (const file of packed.files) await Deno.writeFile(`${dir}/${file.name}`, file.bytes);
  const fragment: Fragment = {
    schema: 1,
    version: VERSION,
    abi: { ...LOADER_ABI },
    target: packed.entry,
  };
  await Deno.writeTextFile(`${dir}/fragment.json`, `${JSON.stringify(fragment, null, 2)}\n`);
  return fragment;
}

/**
 * Reads every `fragment.json` one level below `dist` (`dist/<triple>/` from
 * `deno task build`, or `dist/kernel-<triple>/` from downloaded CI artifacts).
 *
 * @param dist The directory of builds.
 * @returns The fragments found, sorted by directory.
 */
export async function readFragments(dist: string): Promise<FragmentSource[]> {
  const sources: FragmentSource[] = [];
  const info = await Deno.stat(dist).catch(() => null);
  if (!info?.isDirectory) {
    throw new Error(
      `Cannot read the builds in ${dist}: ${
        info ? "it is not a directory" : "no such directory"
      }\nHint: \`deno task build\` writes dist/<triple>/; in CI the build jobs' artifacts are downloaded there`,
    );
  }
  for await (const entry of Deno.readDir(dist)) {
    if (!entry.isDirectory) continue;
    const dir = `${dist}/${entry.name}`;
    const text = await Deno.readTextFile(`${dir}/fragment.json`).catch(() => null);
    if (text !== null) sources.push({ dir, fragment: JSON.parse(text) as Fragment });
  }
  return sources.sort((a, b) => a.dir.localeCompare(b.dir));
}
