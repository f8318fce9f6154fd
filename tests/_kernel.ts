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
import { hostFeatures } from "../matrix/targets.ts";

let build: Promise<KernelBuild> | undefined;

/** The path of a real debug build of the kernel for this machine. */
export async function kernelPath(): Promise<string> {
  const prebuilt = Deno.env.get("KREPIS_TEST_KERNEL");
  if (prebuilt) return prebuilt;
  // This target's release features: the tests see what its users get.
  build ??= hostFeatures().then((features) => cargoBuild({ verbose: false, features }));
  return (await build).library;
}
