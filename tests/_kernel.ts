/**
 * Test helper: the kernel library the tests load, built once per process.
 *
 * `KREPIS_TEST_KERNEL` names a prebuilt library (the gate builds it first);
 * otherwise `cargo build` runs here (a no-op when it is fresh), with the
 * features of this machine's row of matrix/targets.json.
 *
 * @module
 */

import { cargoBuild, type KernelBuild } from "../lib/cargo_build.ts";
import { hostFeatures, loadTargetTable } from "../matrix/targets.ts";
import { rowOrTwin } from "../matrix/windows.ts";

let build: Promise<KernelBuild> | undefined;

/** The path of a real debug build of the kernel for this machine. */
export async function kernelPath(): Promise<string> {
  const prebuilt = Deno.env.get("KREPIS_TEST_KERNEL");
  if (prebuilt) return prebuilt;
  // This target's release features: the tests see what its users get.
  build ??= hostFeatures().then((features) => cargoBuild({ verbose: false, features }));
  return (await build).library;
}

/**
 * The triple of the kernel under test: `KREPIS_TEST_KERNEL_TARGET` when
 * `KREPIS_TEST_KERNEL` is another target's build (the Windows test twin
 * under Wine), else this machine's.
 */
export function kernelTarget(): string {
  return Deno.env.get("KREPIS_TEST_KERNEL_TARGET") || Deno.build.target;
}

/**
 * The features of the kernel under test: its row's in matrix/targets.json
 * (a test twin's: its MSVC row's plus the server engine); undefined
 * (cargo's defaults) for a target the table does not list.
 */
export async function kernelFeatures(): Promise<string[] | undefined> {
  const target = kernelTarget();
  if (target === Deno.build.target) return await hostFeatures();
  return rowOrTwin(await loadTargetTable(), target)?.features;
}
