/**
 * Test helper: builds a real kernel variant from a patched copy of the
 * workspace (another ABI major, an extra export, …).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { cargoBuild, REPO_ROOT } from "../lib/cargo_build.ts";
import { compileTarget } from "../matrix/build.ts";
import { hostFeatures, type TargetRow } from "../matrix/targets.ts";
import { copyDir } from "./_fs.ts";

const ABI_RS = join("crates", "krepis-kernel", "src", "abi.rs");

/** The kernel manifest's default-features line. */
export const DEFAULT_FEATURES: RegExp = /^default = \[.*\]$/m;

/**
 * Copies the workspace, renames the kernel package, applies `patch` to
 * abi.rs, and builds it: for this machine (a debug build with cargo), or
 * with `target`, for that row with the release build's tool and compiler
 * ({@linkcode compileTarget}).
 */
export async function buildVariant(
  name: string,
  patch: (abiRs: string) => string,
  target?: TargetRow,
  manifestPatch: (cargoToml: string) => string = (toml) => toml,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `krepis-${name}-` });
  try {
    return await buildIn(dir, name, patch, target, manifestPatch);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function buildIn(
  dir: string,
  name: string,
  patch: (abiRs: string) => string,
  target: TargetRow | undefined,
  manifestPatch: (cargoToml: string) => string,
): Promise<string> {
  for (const file of ["Cargo.toml", "Cargo.lock"]) {
    await Deno.copyFile(join(REPO_ROOT, file), join(dir, file));
  }
  for (const path of ["proto", join("crates", "krepis-kernel")]) {
    await copyDir(join(REPO_ROOT, path), join(dir, path));
  }
  const manifest = join(dir, "crates", "krepis-kernel", "Cargo.toml");
  const original = await Deno.readTextFile(manifest);
  // A variant has this target's features (its row of matrix/targets.json)
  // unless the patch says otherwise.
  const features = await hostFeatures();
  const renamed = original.replace('name = "krepis-kernel"', `name = "${name}"`);
  await Deno.writeTextFile(
    manifest,
    manifestPatch(
      features
        ? renamed.replace(DEFAULT_FEATURES, `default = ${JSON.stringify(features)}`)
        : renamed,
    ),
  );
  const abiRs = await Deno.readTextFile(join(dir, ABI_RS));
  const patched = patch(abiRs);
  assert.notEqual(patched, abiRs, `the ${name} patch changed nothing`);
  await Deno.writeTextFile(join(dir, ABI_RS), patched);
  // Share the repository's target directory: dependencies are built once; the
  // renamed package gets its own library file and cannot clobber the real one.
  if (target) {
    return (await compileTarget(target, { cwd: dir, pkg: name, locked: false, verbose: false }))
      .library;
  }
  const { library } = await cargoBuild({
    cwd: dir,
    pkg: name,
    locked: false,
    verbose: false,
    env: { CARGO_TARGET_DIR: join(REPO_ROOT, "target") },
  });
  return library;
}

/** A patch adding an export the loader does not know: same ABI number, another surface. */
export function SURFACE_PATCH(source: string): string {
  return `${source}
/// An export the loader does not know: same ABI number, another surface.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_variant_extra() -> u32 {
    guard(|| 7)
}
`;
}
