/**
 * `deno task dev`: the development loop. Watches the repository; when Rust
 * sources or the schema change, rebuilds the kernel and reruns the loader
 * tests against the fresh build (`KREPIS_KERNEL_PATH`); when TypeScript
 * changes, reruns the tests. Changes within 200 ms are taken together; a run
 * in progress finishes before the next starts.
 *
 * @module
 */

import { commandLine, printError } from "../lib/task.ts";
import { cargoBuild, REPO_ROOT } from "../lib/cargo_build.ts";

/** What a set of changed paths calls for. */
export type Action = "rebuild" | "retest" | null;

/**
 * Decides what to do about changed paths (absolute or repository-relative).
 *
 * @param paths Changed files.
 * @returns `"rebuild"` for Rust, Cargo or proto changes, `"retest"` for
 *   TypeScript, else null.
 */
export function classify(paths: string[]): Action {
  const relative = paths.map((p) => p.startsWith(REPO_ROOT) ? p.slice(REPO_ROOT.length + 1) : p)
    .filter((p) => !/^(target|dist|\.git|\.krepis)\//.test(p));
  if (relative.some((p) => /\.(rs|proto)$|(^|\/)(Cargo\.toml|cbindgen\.toml|build\.rs)$/.test(p))) {
    return "rebuild";
  }
  if (relative.some((p) => /\.ts$/.test(p))) return "retest";
  return null;
}

async function cycle(action: Exclude<Action, null>, kernel: { path: string }): Promise<void> {
  const started = performance.now();
  if (action === "rebuild" || !kernel.path) {
    console.log("\n[dev] rebuilding the kernel");
    try {
      kernel.path = (await cargoBuild()).library;
    } catch (error) {
      printError((error as Error).message, "deno task dev");
      return;
    }
  }
  console.log(`[dev] testing the loader against ${kernel.path}`);
  const test = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "loader/"],
    cwd: REPO_ROOT,
    env: { KREPIS_KERNEL_PATH: kernel.path, KREPIS_TEST_KERNEL: kernel.path },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  console.log(
    `[dev] ${test.success ? "green" : "red"} in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s; watching`,
  );
}

if (import.meta.main) {
  commandLine({
    name: "deno task dev",
    summary: "rebuild the kernel on Rust changes and rerun the loader tests on any change",
    usage: ["(no options: watches until Ctrl-C)"],
    options: {},
    exitCodes: { 1: "the file watcher failed", 2: "usage error" },
    more: `Watches crates/, proto/, loader/ and tests/. A Rust, Cargo or .proto change rebuilds
the kernel (dev profile) and reruns \`deno test loader/\` against it (KREPIS_KERNEL_PATH
and KREPIS_TEST_KERNEL are set for the tests); a .ts change reruns the tests.
A failed build or test run is reported and watching goes on, until Ctrl-C.`,
  });
  const kernel = { path: "" };
  // Watch before the first cycle, so no change made during it is missed.
  const watcher = Deno.watchFs(
    ["crates", "proto", "loader", "tests"].map((d) => `${REPO_ROOT}/${d}`),
  );
  await cycle("rebuild", kernel);
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = Promise.resolve();
  for await (const event of watcher) {
    pending.push(...event.paths);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const action = classify(pending);
      pending = [];
      if (action) running = running.then(() => cycle(action, kernel));
    }, 200);
  }
}
