/**
 * `deno task test`: the one gate. Runs every check in order, keeps going
 * after a failure so one run shows them all, and exits non-zero if any
 * failed. The last line reads `gate: N passed, N failed`.
 *
 * @module
 */

import { commandLine, printError } from "../lib/task.ts";
import { cargoBuild, REPO_ROOT } from "../lib/cargo_build.ts";
import { preferRustupCargo } from "../lib/toolchain.ts";
import { hostFeatures } from "../matrix/targets.ts";

/**
 * The slow suites: real release and cross builds, the emulated arm64 runs,
 * the rehearsal. `--fast` leaves them out; CI and a plain run keep them.
 */
const SLOW_SUITES = [
  "tests/aarch64_emulated_test.ts",
  "tests/windows_wine_test.ts",
  "tests/rehearse_test.ts",
  "tests/release_dir_test.ts",
  "tests/abi_variant_test.ts",
  "release/cut_test.ts",
  "release/abi_guard_test.ts",
  "matrix/build_test.ts",
];

const { values } = commandLine({
  name: "deno task test",
  summary: "the one gate: formatting, lints, type checks, Rust and Deno tests, staleness checks",
  usage: ["[--fast]"],
  options: {
    fast: {
      type: "boolean",
      help:
        `leave out the slow suites (${SLOW_SUITES.length} files of release, cross and emulated builds and the rehearsal); CI runs everything`,
    },
  },
  env: {
    CARGO_HOME: "where rustup's cargo is looked for (default ~/.cargo); it goes first on PATH",
    KREPIS_CONFORMANCE_SEED: "passed to the tests: replays one protobuf conformance run",
  },
  exitCodes: {
    0: "every step passed",
    1: "a step failed (the summary lists each)",
    2: "usage error",
  },
  more: `Runs every step even after a failure; the last line reads \`gate: N passed, N failed\`.
The Deno tests get KREPIS_TEST_KERNEL and KREPIS_KERNEL_PATH set to the kernel it built.`,
});

// rustup's cargo for every child, whatever else is on PATH (Debian's /usr/bin/cargo).
const rustupBin = preferRustupCargo();
console.log(
  `gate: deno ${Deno.version.deno} at ${Deno.execPath()}; cargo ${
    rustupBin ? `from rustup (${rustupBin})` : "from PATH (no rustup cargo found)"
  }`,
);

interface Step {
  name: string;
  run: () => Promise<boolean>;
}

function command(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  return async () => {
    const status = await new Deno.Command(cmd, {
      args,
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env,
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    return status.success;
  };
}

const deno = Deno.execPath();
let kernel = "";
// This machine's row of matrix/targets.json decides the kernel's features
// (a target may leave one out); elsewhere, cargo's defaults.
const features = await hostFeatures();
const featureArgs = features ? ["--no-default-features", "--features", features.join(",")] : [];

const steps: Step[] = [
  {
    // Every npm package the tests, tasks and child processes use, from
    // deno.lock, before anything runs: on a cold Deno cache a child process
    // would otherwise print `Download …` lines first, and the first test to
    // need a package would pay for the whole download. deno.json turns the
    // lockfile off (so that `deno task krepis` installs nothing): the tools
    // that use npm name it, as here.
    name: "deno install --frozen (Deno's cache filled from deno.lock)",
    run: command(deno, ["install", "--lock=deno.lock", "--frozen"]),
  },
  { name: "deno fmt --check", run: command(deno, ["fmt", "--check"]) },
  { name: "deno lint", run: command(deno, ["lint"]) },
  { name: "deno check", run: command(deno, ["check", "--lock=deno.lock", "--frozen", "."]) },
  {
    // Every path JSR publishes: each exported symbol documented, no public
    // type referring to a private one.
    name: "deno doc --lint (every export of loader/deno.json)",
    run: async () => {
      const exports = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/loader/deno.json`)).exports;
      const files = Object.values(exports as Record<string, string>).map((path) =>
        `${REPO_ROOT}/loader/${path.replace(/^\.\//, "")}`
      );
      return await command(deno, ["doc", "--lint", ...files])();
    },
  },
  { name: "cargo fmt --check", run: command("cargo", ["fmt", "--all", "--check"]) },
  {
    name: "cargo clippy -D warnings (this target's features)",
    run: command("cargo", [
      "clippy",
      "--locked",
      ...featureArgs,
      "--all-targets",
      "--",
      "-D",
      "warnings",
    ]),
  },
  {
    // The journal and the server engine are cargo features (a target row may
    // leave them out): the kernel must build and lint without them.
    name: "cargo clippy --no-default-features -D warnings",
    run: command("cargo", [
      "clippy",
      "--locked",
      "--no-default-features",
      "--all-targets",
      "--",
      "-D",
      "warnings",
    ]),
  },
  {
    name: "cargo test (kernel units, header staleness)",
    run: command("cargo", ["test", "--locked", ...featureArgs]),
  },
  {
    name: "cargo build (the kernel the Deno tests load, with this target's features)",
    run: async () => {
      kernel = (await cargoBuild({ features })).library;
      return true;
    },
  },
  {
    name:
      "deno test --doc (loader, kernel ABI, clients, codegen, install, faults, CLI, demo, matrix, aarch64 under qemu, Windows x86_64 under Wine, workflows, release, the release rehearsal: a host-target release build, octokit and deno publish to loopback stand-ins, a user's install)",
    run: () =>
      command(deno, [
        "test",
        "--allow-all",
        "--lock=deno.lock",
        "--frozen",
        "--doc",
        ...(values.fast ? [`--ignore=${SLOW_SUITES.join(",")}`] : []),
      ], {
        env: { KREPIS_TEST_KERNEL: kernel, KREPIS_KERNEL_PATH: kernel },
      })(),
  },
  {
    name: "deno publish --dry-run (loader: no slow types, license)",
    run: command(deno, ["publish", "--dry-run", "--allow-dirty"], { cwd: `${REPO_ROOT}/loader` }),
  },
];

const results: { name: string; ok: boolean; seconds: number }[] = [];
for (const step of steps) {
  console.log(`\n=== ${step.name}`);
  const started = performance.now();
  let ok: boolean;
  try {
    ok = await step.run();
  } catch (error) {
    printError(error instanceof Error ? error.message : String(error), "deno task test");
    ok = false;
  }
  results.push({ name: step.name, ok, seconds: (performance.now() - started) / 1000 });
}

console.log("\n=== summary");
for (const result of results) {
  console.log(
    `${result.ok ? "ok  " : "FAIL"} ${result.seconds.toFixed(1).padStart(6)}s  ${result.name}`,
  );
}
const failed = results.filter((result) => !result.ok).length;
console.log(`gate: ${results.length - failed} passed, ${failed} failed`);
if (failed) {
  printError(
    `Cannot pass the gate: ${failed} step(s) failed (${
      results.filter((r) => !r.ok).map((r) => r.name).join("; ")
    })\nHint: each step's output is above its line in the summary`,
  );
}
Deno.exit(failed === 0 ? 0 : 1);
