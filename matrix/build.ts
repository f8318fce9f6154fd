/**
 * `deno task build [--target <triple>] [--profile release|dev]`: builds the
 * kernel for one target with the tool the target table names, runs the
 * post-build checks, and writes `dist/<triple>/`:
 *
 * - the library under its release name, with `.zst` and `.gz` copies;
 * - `fragment.json`: the manifest entry (size, sha256, compressed copies)
 *   plus the version and ABI, which the release step merges into
 *   `manifest.json`.
 *
 * Linux gnu targets build with cargo-zigbuild, the glibc floor in the target
 * (`x86_64-unknown-linux-gnu.2.17`); `cross` (Docker) is the documented
 * alternative (`cross build --release --target <triple>`). macOS and Windows
 * build with cargo on their own runners: macOS with the table's
 * `MACOSX_DEPLOYMENT_TARGET` (rustc's and the C compiler's minimum macOS),
 * Windows with the C runtime linked statically (`+crt-static`, set for the
 * `*-windows-msvc` targets in `.cargo/config.toml` so that a plain `cargo
 * build` gets it too).
 *
 * The compiler is rustup's when it has the target's std. Where it has not
 * and rustup cannot download it, another compiler that has it builds
 * instead, and the build prints which: on Debian, `/usr/bin/rustc` from
 * `rustc-web` with `libstd-rust-web-dev:arm64` builds aarch64 Linux on an
 * x86_64 machine, through the same cargo-zigbuild and glibc floor. With
 * sccache on the machine it is used (`RUSTC_WRAPPER`) and its hit
 * statistics are printed.
 *
 * macOS rows build on another OS too (a test of the same source, here on
 * Linux; the workflows build them on macOS runners with the table's
 * `cargo`): with cargo-zigbuild (zig compiles the C code), a std built from
 * source (`-Zbuild-std`) with the toolchain copy that `deno task setup
 * --build --target <triple>` prepares (lib/build_std.ts), and rustup's
 * `rust-lld` as the linker, run as `ld64.lld` (lib/macos_link.ts): like
 * Apple's linker it honours rustc's list of exports, which zig's linker
 * ignores. See {@linkcode buildPlan} and {@linkcode cargoEnv}.
 *
 * @module
 */

import { commandLine, exitUsage, printError } from "../lib/task.ts";
import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { preferRustupCargo, rustcFor, type TargetRustc } from "../lib/toolchain.ts";
import { type Fragment, writeFragmentDir } from "./fragment.ts";

import {
  checkArtifact,
  checkCodeSignature,
  formatReport,
  mergeSignature,
} from "./check_artifact.ts";
import { BUILD_STD_ARGS, buildStdEnv, buildStdToolchain } from "../lib/build_std.ts";
import { type DarwinLinker, darwinLinker } from "../lib/macos_link.ts";
import { loadTargetTable, type TargetRow, targetRow } from "./targets.ts";
import { buildWindowsTarget, checkTwin } from "./windows.ts";

/** Options for {@linkcode buildTarget}. */
export interface BuildOptions {
  /** Cargo profile. @default {"release"} */
  profile?: "release" | "dev";
  /** Output root. @default {`<repo>/dist`} */
  distDir?: string;
  /** Print cargo's output. @default {true} */
  verbose?: boolean;
}

/** What a build produced. */
export interface BuildResult {
  /** `dist/<triple>/`. */
  dir: string;
  /** The library in it. */
  library: string;
  /** The fragment written. */
  fragment: Fragment;
  /** sccache's statistics line, when sccache was used. */
  sccache: string | null;
  /** The compiler that built it. */
  rustc: TargetRustc;
}

/** How a row is built on a host. */
export interface BuildPlan {
  /** The cargo front end. */
  tool: string;
  /** The std is built from source (`-Zbuild-std`, the toolchain copy of lib/build_std.ts). */
  buildStd: boolean;
}

/**
 * How `row` is built on a host of `hostOs`: the table's tool, except a
 * macOS row on another OS, which builds with cargo-zigbuild (zig as the C
 * compiler) on a std built from source (rustup has no macOS std off macOS
 * here, and Apple's linker runs on macOS only; {@linkcode cargoEnv} names
 * the linker). The table, and so the workflows, keep `cargo` on the macOS
 * runners.
 *
 * @param row The target.
 * @param hostOs The OS building. @default {Deno.build.os}
 */
export function buildPlan(row: TargetRow, hostOs: typeof Deno.build.os = Deno.build.os): BuildPlan {
  if (row.os === "darwin" && hostOs !== "darwin") return { tool: "cargo-zigbuild", buildStd: true };
  return { tool: row.tool, buildStd: false };
}

/**
 * The cargo command line for a target row (`pkg`: the package, default the
 * kernel; `locked`: pass `--locked`, default true; `hostOs`: the OS
 * building, see {@linkcode buildPlan}).
 */
export function cargoCommand(
  row: TargetRow,
  profile: "release" | "dev",
  pkg = "krepis-kernel",
  locked = true,
  hostOs: typeof Deno.build.os = Deno.build.os,
): string[] {
  const plan = buildPlan(row, hostOs);
  const profileArgs = profile === "release" ? ["--release"] : [];
  const lockedArgs = [...(locked ? ["--locked"] : []), ...(plan.buildStd ? BUILD_STD_ARGS : [])];
  // The table, not cargo's defaults, decides what a target's kernel has.
  const featureArgs = ["--no-default-features", "--features", row.features.join(",")];
  if (plan.tool === "cargo-zigbuild") {
    const target = row.glibcFloor ? `${row.triple}.${row.glibcFloor}` : row.triple;
    return [
      "cargo",
      "zigbuild",
      ...lockedArgs,
      "-p",
      pkg,
      ...profileArgs,
      ...featureArgs,
      "--target",
      target,
    ];
  }
  if (plan.tool === "cargo") {
    return [
      "cargo",
      "build",
      ...lockedArgs,
      "-p",
      pkg,
      ...profileArgs,
      ...featureArgs,
      "--target",
      row.triple,
    ];
  }
  throw new Error(`Cannot build ${row.triple}: unknown tool ${plan.tool} in matrix/targets.json`);
}

/**
 * The environment cargo runs with for a target row, on top of the inherited
 * one: `CARGO_TARGET_DIR` pinned to `<repo>/target` (where
 * {@linkcode cargoOutput} looks), and for macOS rows the table's
 * `MACOSX_DEPLOYMENT_TARGET`, so the minimum macOS the dylib asks for is the
 * table's and not whatever the runner or rustc defaults to. A macOS row
 * built on another OS ({@linkcode buildPlan}) links with `linker`:
 * `CARGO_TARGET_<TRIPLE>_LINKER` is rustup's `rust-lld` (cargo-zigbuild
 * sets its zig wrapper there only when the variable is unset, and still
 * names zig as the C compiler, `CC_<triple>`), which rustc runs as
 * `ld64.lld` with rustc's export list, and `KREPIS_MACOS_SYSLIBROOT` names
 * the system libraries' stubs, which the kernel's `build.rs` passes as
 * `-syslibroot`. No Rust or C flag changes: the code compiled is the
 * runners'.
 *
 * @param row The target.
 * @param hostOs The OS building. @default {Deno.build.os}
 * @param linker A macOS row's linker off macOS (lib/macos_link.ts); required there.
 * @returns Variables to set.
 * @throws {Error} A macOS row off macOS without `linker`.
 */
export function cargoEnv(
  row: TargetRow,
  hostOs: typeof Deno.build.os = Deno.build.os,
  linker?: DarwinLinker,
): Record<string, string> {
  // cargoOutput() reads <repo>/target: never let an inherited
  // CARGO_TARGET_DIR send the build elsewhere and leave a stale file there.
  const env: Record<string, string> = { CARGO_TARGET_DIR: `${REPO_ROOT}/target` };
  if (row.os === "darwin" && row.macosDeploymentTarget) {
    env.MACOSX_DEPLOYMENT_TARGET = row.macosDeploymentTarget;
  }
  if (row.os === "darwin" && buildPlan(row, hostOs).buildStd) {
    if (!linker) {
      throw new Error(
        `Cannot build ${row.triple} on ${hostOs}: no linker named\nHint: pass darwinLinker()'s result (lib/macos_link.ts)`,
      );
    }
    const triple = row.triple.replaceAll("-", "_").toUpperCase();
    env[`CARGO_TARGET_${triple}_LINKER`] = linker.lld;
    env.KREPIS_MACOS_SYSLIBROOT = linker.syslibroot;
  }
  return env;
}

/** The file cargo writes for a target row (`pkg`: the package, default the kernel). */
export function cargoOutput(
  row: TargetRow,
  profile: "release" | "dev",
  pkg = "krepis-kernel",
): string {
  const crate = pkg.replaceAll("-", "_");
  const name = row.os === "windows"
    ? `${crate}.dll`
    : row.os === "darwin"
    ? `lib${crate}.dylib`
    : `lib${crate}.so`;
  return `${REPO_ROOT}/target/${row.triple}/${profile === "release" ? "release" : "debug"}/${name}`;
}

/** Options for {@linkcode compileTarget}. */
export interface CompileOptions {
  /** Cargo profile. @default {"release"} */
  profile?: "release" | "dev";
  /** The workspace to build in (its target directory is still `<repo>/target`). @default {the repository} */
  cwd?: string;
  /** The package. @default {"krepis-kernel"} */
  pkg?: string;
  /** Print cargo's output. @default {true} */
  verbose?: boolean;
  /** Pass `--locked` (Cargo.lock must not change). @default {true} */
  locked?: boolean;
}

/**
 * Compiles a package for one target with the table's tool and returns the
 * library cargo wrote, unchecked. When rustup's toolchain lacks the target's
 * standard library, another compiler that has it builds instead
 * ({@linkcode rustcFor}, e.g. Debian's `rustc-web` with
 * `libstd-rust-web-dev:arm64`), passed to cargo as `RUSTC`, and a line says so.
 *
 * @param row The target.
 * @param options Profile, workspace, package, verbosity.
 * @returns The library's path and the compiler that built it.
 * @throws {Error} When no compiler here has the target's std, or cargo fails.
 */
export async function compileTarget(
  row: TargetRow,
  options: CompileOptions = {},
): Promise<{ library: string; rustc: TargetRustc }> {
  const {
    profile = "release",
    cwd = REPO_ROOT,
    pkg = "krepis-kernel",
    verbose = true,
    locked = true,
  } = options;
  if (buildPlan(row).buildStd) {
    const toolchain = await buildStdToolchain();
    if (!toolchain) {
      throw new Error(
        `Cannot build ${row.triple}: the std source for -Zbuild-std is not prepared\nHint: deno task setup --build --target ${row.triple}`,
      );
    }
    const linker = row.os === "darwin"
      ? await darwinLinker(toolchain.rustc, toolchain.sysroot)
      : undefined;
    const env = { ...cargoEnv(row, Deno.build.os, linker), ...buildStdEnv(toolchain) };
    const rustc: TargetRustc = {
      rustc: toolchain.rustc,
      version: `rustc ${toolchain.version}`,
      alternative: true,
    };
    if (verbose) {
      console.log(
        `build: ${row.triple} with cargo-zigbuild, a std built from source (${toolchain.sysroot})${
          linker ? ` and ${linker.lld} as ld64.lld (-syslibroot ${linker.syslibroot})` : ""
        }`,
      );
    }
    return { library: await runCargo(row, profile, pkg, locked, cwd, env, verbose), rustc };
  }
  const env = cargoEnv(row);
  const rustc = await rustcFor(row.triple);
  if (!rustc) {
    throw new Error(
      `Cannot build ${row.triple}: no Rust compiler here has its standard library\nHint: ${
        stdHint(row)
      }`,
    );
  }
  if (rustc.alternative) env.RUSTC = rustc.rustc;
  if (verbose) console.log(`build: ${row.triple} with ${describeRustc(rustc)}`);
  if (await hasSccache() && !Deno.env.get("RUSTC_WRAPPER")) env.RUSTC_WRAPPER = "sccache";
  return { library: await runCargo(row, profile, pkg, locked, cwd, env, verbose), rustc };
}

async function runCargo(
  row: TargetRow,
  profile: "release" | "dev",
  pkg: string,
  locked: boolean,
  cwd: string,
  env: Record<string, string>,
  verbose: boolean,
): Promise<string> {
  const [cmd, ...args] = cargoCommand(row, profile, pkg, locked);
  const status = await new Deno.Command(cmd, {
    args,
    cwd,
    env,
    stdout: verbose ? "inherit" : "null",
    stderr: verbose ? "inherit" : "piped",
  }).output();
  if (!status.success) {
    throw new Error(
      `Cannot build ${row.triple}: ${[cmd, ...args].join(" ")} exited with ${status.code}${
        verbose ? "" : `\n${new TextDecoder().decode(status.stderr)}`
      }\nHint: ${
        buildPlan(row).tool === "cargo-zigbuild"
          ? `install cargo-zigbuild and ziglang (deno task setup --build --target ${row.triple})`
          : `build on a ${row.runner} runner`
      }`,
    );
  }
  return cargoOutput(row, profile, pkg);
}

/** "rustc 1.95.0 (…) from rustup", or the alternative's path and why it was chosen. */
export function describeRustc(rustc: TargetRustc): string {
  return rustc.alternative
    ? `${rustc.version} at ${rustc.rustc} (rustup's toolchain has no std for this target)`
    : `${rustc.version} from PATH`;
}

/** How to get a target's standard library, for the error when none is found. */
export function stdHint(row: TargetRow): string {
  const rustup = `rustup target add ${row.triple}`;
  // `deno task setup` knows one other route: aarch64 Linux on x86_64 Linux.
  if (
    row.triple !== "aarch64-unknown-linux-gnu" || Deno.build.os !== "linux" ||
    Deno.build.arch !== "x86_64"
  ) {
    return rustup;
  }
  return `${rustup}; or, where rustup cannot download it, \`deno task setup --build --target ${row.triple}\`` +
    " (on Debian: rustc-web with libstd-rust-web-dev:arm64)";
}

/**
 * Builds, checks and packs the kernel for one target.
 *
 * @param row The target.
 * @param options Profile and output directory.
 * @returns Where the outputs are.
 * @throws {Error} When the build or a post-build check fails.
 */
export async function buildTarget(
  row: TargetRow,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const profile = options.profile ?? "release";
  const distDir = options.distDir ?? `${REPO_ROOT}/dist`;
  // A std built from source builds without sccache (tools/build_std.ts says why).
  const sccache = !buildPlan(row).buildStd && await hasSccache();
  if (sccache) await run(["sccache", "--zero-stats"], {}, false);
  const { library: output, rustc } = await compileTarget(row, {
    profile,
    verbose: options.verbose,
  });
  const stats = sccache ? await sccacheSummary() : null;
  const bytes = await Deno.readFile(output);
  const report = checkArtifact(bytes, row, undefined, undefined, {
    release: profile === "release",
  });
  const signature = await checkCodeSignature(output);
  report.codeSignature = signature.problem
    ? signature.codeSignature
    : mergeSignature(report.codeSignature, signature.codeSignature);
  if (signature.problem) report.problems.push(signature.problem);
  console.log(formatReport(output, row, report));
  if (report.problems.length) {
    throw new Error(`Cannot accept the build for ${row.triple}: ${report.problems.join("; ")}`);
  }
  const dir = `${distDir}/${row.triple}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const fragment = await writeFragmentDir(dir, bytes, row);
  return { dir, library: `${dir}/${row.file}`, fragment, sccache: stats, rustc };
}

async function hasSccache(): Promise<boolean> {
  try {
    return (await new Deno.Command("sccache", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

async function run(args: string[], env: Record<string, string>, inherit: boolean): Promise<string> {
  const output = await new Deno.Command(args[0], {
    args: args.slice(1),
    env,
    stdout: "piped",
    stderr: inherit ? "inherit" : "null",
  }).output();
  return new TextDecoder().decode(output.stdout);
}

/** "sccache: N hits, M misses (H% of compile requests)". */
async function sccacheSummary(): Promise<string> {
  const text = await run(["sccache", "--show-stats", "--stats-format", "json"], {}, false);
  try {
    const stats = JSON.parse(text).stats;
    const count = (o: Record<string, number> | undefined) =>
      Object.values(o ?? {}).reduce((a, b) => a + b, 0);
    const hits = count(stats.cache_hits?.counts);
    const misses = count(stats.cache_misses?.counts);
    const total = hits + misses;
    return `sccache: ${hits} hits, ${misses} misses (${
      total ? ((hits / total) * 100).toFixed(0) : 0
    }% hits); not cacheable: ${count(stats.not_cached)} (the final cdylib link is never cached)`;
  } catch {
    return "sccache: statistics unavailable";
  }
}

/**
 * A Windows MSVC row off Windows: the type-checks and the GNU test twin
 * (matrix/windows.ts), its post-build checks, then exit (nothing goes to
 * dist/: a twin is never a release artifact).
 */
async function buildWindowsHereMain(row: TargetRow, profile: "release" | "dev"): Promise<never> {
  try {
    const started = performance.now();
    const toolchain = await buildStdToolchain();
    const std = toolchain &&
      { cargo: toolchain.cargo, env: buildStdEnv(toolchain), args: BUILD_STD_ARGS };
    const result = await buildWindowsTarget(row, std, { profile });
    const report = checkTwin(await Deno.readFile(result.library), result.twin);
    console.log(formatReport(result.library, result.twin, report));
    for (const check of result.checks) {
      console.log(
        `type-checked ${row.triple} with ${check.features.join(",")} in ${
          check.seconds.toFixed(0)
        } s`,
      );
    }
    console.log(
      `built the test twin ${result.twin.triple} (${profile}) in ${
        result.seconds.toFixed(0)
      } s: ${result.library}`,
    );
    console.log(
      `total ${
        ((performance.now() - started) / 1000).toFixed(0)
      } s; the ${row.triple} DLL itself is built on a ${row.runner} runner`,
    );
    if (report.problems.length) {
      throw new Error(
        `Cannot accept the test twin of ${row.triple}: ${report.problems.join("; ")}`,
      );
    }
    Deno.exit(0);
  } catch (error) {
    printError((error as Error).message, "deno task build");
    Deno.exit(1);
  }
}

if (import.meta.main) {
  const { values } = commandLine({
    name: "deno task build",
    summary: "build, check and pack the kernel for one target into dist/<triple>/",
    usage: ["[--target <triple>] [--profile release|dev]"],
    options: {
      target: {
        type: "string",
        value: "<triple>",
        help: "a row of matrix/targets.json (default: this machine's target)",
      },
      profile: {
        type: "string",
        value: "<profile>",
        choices: ["release", "dev"],
        help: "the cargo profile; default release",
      },
    },
    env: {
      CARGO_HOME: "where rustup's cargo is looked for (default ~/.cargo); it goes first on PATH",
      RUSTC_WRAPPER: "a compiler wrapper cargo uses; when unset and sccache is installed, sccache",
    },
    exitCodes: {
      0: "built, checked and written to dist/<triple>/",
      1: "the build or a post-build check failed, or the target is not in the table",
      2: "usage error",
    },
    more: `Writes dist/<triple>/: the library under its release name, .zst and .gz copies,
and fragment.json (deno task release publish merges the fragments).
cargo always builds into <repo>/target (an inherited CARGO_TARGET_DIR is overridden),
with rustup's toolchain first on PATH (an inherited RUSTC or CARGO is dropped).`,
  });
  // rustup's toolchain first, whatever else is on PATH (Debian's /usr/bin/rustc).
  preferRustupCargo();
  const profile = values.profile === "dev" ? "dev" : "release";
  const rows = await loadTargetTable();
  let row;
  try {
    row = targetRow(rows, values.target ?? resolveTarget().triple);
  } catch (error) {
    exitUsage((error as Error).message);
  }
  if (row.os === "windows" && Deno.build.os !== "windows") await buildWindowsHereMain(row, profile);
  try {
    const result = await buildTarget(row, { profile });
    console.log(`\nwrote ${result.dir}/ (${row.file}, .zst, .gz, fragment.json)`);
    console.log(`built with ${describeRustc(result.rustc)}`);
    if (result.sccache) console.log(result.sccache);
  } catch (error) {
    printError((error as Error).message, "deno task build");
    Deno.exit(1);
  }
}
