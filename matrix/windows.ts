/**
 * The Windows rows built on a machine that is not Windows: what ships (the
 * MSVC DLL) needs Microsoft's linker and C runtime, which only a Windows
 * runner has, so here
 *
 * - the MSVC target is **type-checked** (`cargo check` with the std built
 *   from source) with the row's features, and with `server` too, so the
 *   engine's code is known to compile for Windows before a runner sees it.
 *   The C code of build scripts (zstd-sys) is compiled with a GNU C
 *   compiler for Windows and archived with `llvm-lib`, for that check only:
 *   nothing of it is linked;
 * - the same source is **built for a GNU C runtime** that links here, the
 *   *test twin*: `x86_64-pc-windows-gnu` with Debian's mingw-w64 gcc,
 *   `aarch64-pc-windows-gnullvm` with zig. A twin is a test double: it is
 *   written under `target/test-twins/<triple>/`, named `…-test-twin.dll`,
 *   and never goes into `dist/`, so a release can never pack it. The twin
 *   has the row's features plus `server`, so the engine runs under Wine too.
 *
 * The generated workflows keep building the real MSVC DLL on Windows
 * runners; this file is what this machine can do about it.
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import type { TargetRow } from "./targets.ts";
import { type ArtifactReport, checkArtifact } from "./check_artifact.ts";
import { refuseImport } from "./artifact/imports.ts";

/** A twin: the GNU triple built from the same source as an MSVC row. */
export interface TwinSpec {
  /** The GNU triple. */
  triple: string;
  /** The C compiler and linker driver for it. */
  cc: "mingw-w64" | "zig";
}

/** The twin of each Windows MSVC row. */
export const TWINS: Readonly<Record<string, TwinSpec>> = {
  "x86_64-pc-windows-msvc": { triple: "x86_64-pc-windows-gnu", cc: "mingw-w64" },
  "aarch64-pc-windows-msvc": { triple: "aarch64-pc-windows-gnullvm", cc: "zig" },
};

/** The features a Windows build checked here has beyond the row's: the server engine. */
export const WINDOWS_EXTRA_FEATURES: readonly string[] = ["server"];

/** The row's features with {@linkcode WINDOWS_EXTRA_FEATURES}, in a stable order. */
export function withServer(row: TargetRow): string[] {
  return [...row.features, ...WINDOWS_EXTRA_FEATURES.filter((f) => !row.features.includes(f))];
}

/**
 * The test twin of a Windows MSVC row, as a row of its own: the GNU triple,
 * a file name that says it is a twin, and the row's features plus `server`.
 *
 * @param row A Windows MSVC row.
 * @returns The twin's row.
 * @throws {Error} When the row has no twin.
 * @example
 * ```ts
 * import { twinRow } from "./windows.ts";
 * import { loadTargetTable, targetRow } from "./targets.ts";
 * const twin = twinRow(targetRow(await loadTargetTable(), "x86_64-pc-windows-msvc"));
 * twin.file; // "krepis_kernel-x86_64-pc-windows-gnu-test-twin.dll"
 * ```
 */
export function twinRow(row: TargetRow): TargetRow {
  const spec = TWINS[row.triple];
  if (!spec) {
    throw new Error(`Cannot make a test twin of ${row.triple}: it is not a Windows MSVC row`);
  }
  return {
    ...row,
    triple: spec.triple,
    file: `krepis_kernel-${spec.triple}-test-twin.dll`,
    features: withServer(row),
    tool: "cargo",
  };
}

/**
 * The row a built kernel reports itself as: the table's row for its triple,
 * or, for a twin's triple, the twin's row (so the smoke step expects the
 * twin's features).
 *
 * @param rows The target table.
 * @param triple The triple `buildInfo()` reports.
 * @returns The row, or undefined when neither.
 */
export function rowOrTwin(rows: TargetRow[], triple: string): TargetRow | undefined {
  const row = rows.find((r) => r.triple === triple);
  if (row) return row;
  const of = rows.find((r) => TWINS[r.triple]?.triple === triple);
  return of ? twinRow(of) : undefined;
}

/** Where twins are written: never `dist/`. */
export function twinDir(triple: string): string {
  return join(REPO_ROOT, "target", "test-twins", triple);
}

/** The cargo profile directory name. */
function profileDir(profile: "release" | "dev"): string {
  return profile === "release" ? "release" : "debug";
}

/** The `cc` crate's name for a triple in variable names (`CC_x86_64_pc_windows_msvc`). */
function ccKey(triple: string): string {
  return triple.replaceAll("-", "_");
}

/**
 * The C compiler (and archiver) variables for a Windows triple built here:
 * mingw-w64's gcc for x86_64, zig for aarch64 (a small wrapper, as cargo
 * and the `cc` crate take one program). For the MSVC triples, the archive
 * is made by `llvm-lib` (lib.exe's options), since the `cc` crate asks for
 * lib.exe there, and CMake (libz-ng-sys) uses Ninja instead of a Visual
 * Studio generator.
 *
 * @param triple A Windows triple (MSVC or GNU).
 * @param zigCc The zig C compiler wrapper for aarch64 (see {@linkcode zigCcWrapper}).
 * @returns Variables to set.
 */
export function windowsCcEnv(triple: string, zigCc?: string): Record<string, string> {
  const key = ccKey(triple);
  const env: Record<string, string> = {};
  if (triple.startsWith("x86_64-")) {
    env[`CC_${key}`] = "x86_64-w64-mingw32-gcc";
    if (triple.endsWith("-gnu")) {
      env[`AR_${key}`] = "x86_64-w64-mingw32-ar";
      env[`CARGO_TARGET_${key.toUpperCase()}_LINKER`] = "x86_64-w64-mingw32-gcc";
    }
  } else if (zigCc) {
    env[`CC_${key}`] = zigCc;
    if (triple.endsWith("-gnullvm")) {
      env[`AR_${key}`] = "llvm-ar";
      env[`CARGO_TARGET_${key.toUpperCase()}_LINKER`] = zigCc;
    }
  }
  if (triple.endsWith("-msvc")) {
    env[`AR_${key}`] = "llvm-lib";
    // libz-ng-sys builds with CMake, which asks for a Visual Studio generator for MSVC.
    env[`CMAKE_GENERATOR_${key}`] = "Ninja";
  }
  return env;
}

/**
 * Writes a `cc` wrapper that runs zig's C compiler for aarch64 Windows
 * (GNU ABI, LLVM's runtime), dropping the options rustc passes that zig
 * refuses.
 *
 * @param python The Python that has the `ziglang` package.
 * @returns The wrapper's path (under `target/`).
 */
export async function zigCcWrapper(python: string): Promise<string> {
  const dir = join(REPO_ROOT, "target", "test-twins");
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "zig-cc-aarch64-windows");
  const script = `#!/bin/sh
# zig's C compiler and linker for aarch64-windows-gnu: the test twin's.
# rustc's options that zig does not take, and the cc crate's --target (an
# LLVM triple zig does not parse), are left out; rustc's export list (a
# .def file passed with -Wl,) goes to zig as an input file.
for a in "$@"; do
  shift
  case "$a" in
    --target=*|--unwindlib=none|-nolibc|-lgcc_s|-lgcc|-lgcc_eh|-lunwind|-Wl,--disable-auto-image-base|-Wl,--large-address-aware|-nodefaultlibs|-fno-use-linker-plugin) ;;
    -Wl,*.def) set -- "$@" "\${a#-Wl,}" ;;
    *) set -- "$@" "$a" ;;
  esac
done
exec ${python} -m ziglang cc -target aarch64-windows-gnu "$@"
`;
  await Deno.writeTextFile(path, script, { mode: 0o755 });
  return path;
}

/**
 * Writes a CMake toolchain file for aarch64 Windows with zig's wrapper as
 * the C compiler. Without it, CMake (libz-ng-sys) takes this machine's CPU
 * for the target's and configures x86 code.
 *
 * @param zigCc The zig C compiler wrapper ({@linkcode zigCcWrapper}).
 * @returns The file's path (under `target/`).
 */
export async function arm64CmakeToolchain(zigCc: string): Promise<string> {
  const path = join(REPO_ROOT, "target", "test-twins", "aarch64-windows.cmake");
  await Deno.writeTextFile(
    path,
    `# aarch64 Windows for CMake, with zig's C compiler: the test twin's and the MSVC check's.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR ARM64)
set(CMAKE_C_COMPILER ${zigCc})
set(CMAKE_C_COMPILER_TARGET aarch64)
`,
  );
  return path;
}

/** The build-std toolchain's parts the Windows builds use. */
export interface StdSource {
  /** The cargo to run. */
  cargo: string;
  /** Variables for a build-std build (RUSTC, RUSTC_BOOTSTRAP, PATH). */
  env: Record<string, string>;
  /** cargo's `-Zbuild-std=…` arguments. */
  args: readonly string[];
}

/**
 * The cargo command line that type-checks a Windows MSVC row here.
 *
 * @param row The row.
 * @param features The features to check with.
 * @param std The std source.
 */
export function msvcCheckCommand(row: TargetRow, features: string[], std: StdSource): string[] {
  return [
    std.cargo,
    "check",
    "--locked",
    "-j2",
    "-p",
    "krepis-kernel",
    "--lib",
    "--no-default-features",
    "--features",
    features.join(","),
    "--target",
    row.triple,
    ...std.args,
  ];
}

/**
 * The std crates a twin builds from source: the std source's, plus `test`
 * (the unit-test harness). `cargo test` adds `test` by itself, and a std of
 * other crates is another std: everything above it would be built twice.
 * Asking for it in the DLL's build too lets the DLL and the unit tests share
 * one build of every dependency.
 *
 * @param args cargo's `-Zbuild-std=…` arguments.
 * @returns The same, with `test` among the crates.
 */
export function withTestCrate(args: readonly string[]): string[] {
  return args.map((arg) =>
    arg.startsWith("-Zbuild-std=") && !arg.split("=")[1].split(",").includes("test")
      ? `${arg},test`
      : arg
  );
}

/**
 * The cargo command line that builds (or, with `test`, builds the unit tests
 * of) a twin, with the std crates of {@linkcode withTestCrate}.
 *
 * @param twin The twin's row.
 * @param profile The cargo profile.
 * @param std The std source.
 * @param test Build the kernel's unit tests instead (`cargo test --no-run`).
 */
export function twinCommand(
  twin: TargetRow,
  profile: "release" | "dev",
  std: StdSource,
  test = false,
): string[] {
  return [
    std.cargo,
    ...(test ? ["test", "--no-run"] : ["build"]),
    "--locked",
    "-j2",
    "-p",
    "krepis-kernel",
    ...(test ? ["--lib"] : []),
    ...(profile === "release" ? ["--release"] : []),
    "--no-default-features",
    "--features",
    twin.features.join(","),
    "--target",
    twin.triple,
    ...withTestCrate(std.args),
  ];
}

/** The DLL cargo writes for a twin. */
export function twinCargoOutput(twin: TargetRow, profile: "release" | "dev"): string {
  return join(REPO_ROOT, "target", twin.triple, profileDir(profile), "krepis_kernel.dll");
}

/** Options for {@linkcode buildWindowsHere}. */
export interface WindowsHereOptions {
  /** The std source (the build-std toolchain). */
  std: StdSource;
  /** The twin's cargo profile. @default {"dev"} */
  profile?: "release" | "dev";
  /** The zig C compiler wrapper, for aarch64 (see {@linkcode zigCcWrapper}). */
  zigCc?: string;
  /** The CMake toolchain file, for aarch64 (see {@linkcode arm64CmakeToolchain}). */
  cmakeToolchain?: string;
  /** Print cargo's output. @default {true} */
  verbose?: boolean;
  /** Also build the kernel's unit tests for the twin (`cargo test --no-run`). @default {false} */
  unitTests?: boolean;
}

/** What {@linkcode buildWindowsHere} did. */
export interface WindowsHereResult {
  /** Each type-check of the MSVC row: the features and how long it took. */
  checks: { features: string[]; seconds: number }[];
  /** The twin's row. */
  twin: TargetRow;
  /** The twin DLL, copied to {@linkcode twinDir}. */
  library: string;
  /** The twin's build time. */
  seconds: number;
}

async function cargo(
  argv: string[],
  env: Record<string, string>,
  verbose: boolean,
  what: string,
): Promise<number> {
  const started = performance.now();
  if (verbose) console.log(`build: ${argv.slice(1).join(" ")}`);
  const status = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: REPO_ROOT,
    env: { CARGO_TARGET_DIR: join(REPO_ROOT, "target"), ...env },
    stdin: "null",
    stdout: verbose ? "inherit" : "null",
    stderr: verbose ? "inherit" : "piped",
  }).output();
  if (!status.success) {
    throw new Error(
      `Cannot ${what}: cargo exited with ${status.code}${
        verbose
          ? ""
          : `\n${new TextDecoder().decode(status.stderr).trim().split("\n").slice(-20).join("\n")}`
      }\nHint: deno task setup --build --target <triple> installs mingw-w64, llvm-lib and the std source`,
    );
  }
  return (performance.now() - started) / 1000;
}

/**
 * What this machine does for a Windows MSVC row: type-checks it with the
 * row's features and with `server`, then builds its test twin and copies
 * the DLL to {@linkcode twinDir}. The caller checks the twin
 * (`checkArtifact(bytes, result.twin)`).
 *
 * @param row A Windows MSVC row.
 * @param options The std source, profile, zig wrapper, verbosity.
 * @returns The checks, the twin and its DLL.
 * @throws {Error} When a check or the build fails.
 */
export async function buildWindowsHere(
  row: TargetRow,
  options: WindowsHereOptions,
): Promise<WindowsHereResult> {
  const { std, profile = "dev", verbose = true } = options;
  const twin = twinRow(row);
  const cmake = (triple: string): Record<string, string> =>
    options.cmakeToolchain
      ? { [`CMAKE_TOOLCHAIN_FILE_${ccKey(triple)}`]: options.cmakeToolchain }
      : {};
  const checks = [];
  for (const features of [row.features, withServer(row)]) {
    const env = { ...std.env, ...windowsCcEnv(row.triple, options.zigCc), ...cmake(row.triple) };
    const seconds = await cargo(
      msvcCheckCommand(row, features, std),
      env,
      verbose,
      `type-check ${row.triple} with ${features.join(",") || "no features"}`,
    );
    checks.push({ features, seconds });
    if (features.join(",") === withServer(row).join(",")) break;
  }
  const env = { ...std.env, ...windowsCcEnv(twin.triple, options.zigCc), ...cmake(twin.triple) };
  const seconds = await cargo(
    twinCommand(twin, profile, std),
    env,
    verbose,
    `build the test twin ${twin.triple}`,
  );
  if (options.unitTests) {
    await cargo(
      twinCommand(twin, profile, std, true),
      env,
      verbose,
      `build the unit tests of ${twin.triple}`,
    );
  }
  const library = await copyTwin(twin, profile);
  return { checks, twin, library, seconds };
}

/**
 * Copies the twin cargo built to {@linkcode twinDir} under its twin name,
 * without its symbols and debug information (a dev DLL is ~90 MB with them,
 * 33 MB without; the export table stays), since every
 * test that publishes the kernel compresses it: minutes under Wine).
 *
 * @param twin The twin's row.
 * @param profile The profile it was built with.
 * @returns The copy's path.
 */
export async function copyTwin(twin: TargetRow, profile: "release" | "dev"): Promise<string> {
  const dir = twinDir(twin.triple);
  await Deno.mkdir(dir, { recursive: true });
  const library = join(dir, twin.file);
  await Deno.remove(library).catch(() => {});
  await Deno.copyFile(twinCargoOutput(twin, profile), library);
  const strip = twin.arch === "x86_64" ? "x86_64-w64-mingw32-strip" : "llvm-strip";
  const stripped = await new Deno.Command(strip, {
    args: ["--strip-all", library],
    stdout: "null",
    stderr: "piped",
  }).output().catch((error: Error) => ({
    success: false,
    stderr: new TextEncoder().encode(error.message),
  }));
  if (!stripped.success) {
    throw new Error(
      `Cannot strip the test twin ${library}: ${
        new TextDecoder().decode(stripped.stderr).trim()
      }\nHint: deno task setup --build installs mingw-w64 (x86_64) and llvm (aarch64)`,
    );
  }
  return library;
}

/** The Python that has zig (`ziglang` from PyPI), as cargo-zigbuild finds it. */
async function zigPython(): Promise<string> {
  for (const python of ["python3", "python"]) {
    try {
      const ok = await new Deno.Command(python, {
        args: ["-m", "ziglang", "version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (ok.success) return python;
    } catch {
      // not this one
    }
  }
  throw new Error(
    "Cannot build for aarch64 Windows here: no Python with zig\nHint: deno task setup --build installs ziglang",
  );
}

/**
 * `deno task build --target <windows-msvc>` off Windows: with the std
 * source (the toolchain copy `deno task setup --build --target <triple>`
 * makes, tools/build_std.ts), and zig's wrapper for aarch64, then
 * {@linkcode buildWindowsHere}.
 *
 * @param row A Windows MSVC row.
 * @param std The std source, or null when there is none here.
 * @param options The twin's profile, verbosity, unit tests.
 * @returns What {@linkcode buildWindowsHere} did.
 * @throws {Error} When the std source is missing, or a check or the build fails.
 */
export async function buildWindowsTarget(
  row: TargetRow,
  std: StdSource | null,
  options: Omit<WindowsHereOptions, "std" | "zigCc"> = {},
): Promise<WindowsHereResult> {
  if (!std) {
    throw new Error(
      `Cannot build ${row.triple} here: no Rust std source for -Zbuild-std\nHint: deno task setup --build --target ${row.triple}`,
    );
  }
  const zigCc = TWINS[row.triple]?.cc === "zig" ? await zigCcWrapper(await zigPython()) : undefined;
  const cmakeToolchain = zigCc ? await arm64CmakeToolchain(zigCc) : undefined;
  return await buildWindowsHere(row, { ...options, std, zigCc, cmakeToolchain });
}

/**
 * The twin's own C runtime: mingw-w64 links Windows' `msvcrt.dll`, which
 * is in System32 of every Windows. The post-build checks refuse it for
 * what ships (the MSVC DLL links its runtime statically, checked on its
 * runner); for a twin it is expected.
 */
export const TWIN_RUNTIME = /^msvcrt\.dll$/i;

/**
 * The post-build checks on a twin: every check of `check-artifact` (format,
 * CPU, shared library, exactly the table's exports, the ABI fingerprint,
 * only system imports), with {@linkcode TWIN_RUNTIME} allowed.
 *
 * @param bytes The twin DLL.
 * @param twin The twin's row.
 * @returns The report.
 */
export function checkTwin(bytes: Uint8Array, twin: TargetRow): ArtifactReport {
  const report = checkArtifact(bytes, twin);
  const refused = report.info.imports.flatMap((name) => {
    const reason = TWIN_RUNTIME.test(name) ? null : refuseImport(report.info.format, name);
    return reason ? [`${name} (${reason})`] : [];
  });
  report.problems = report.problems.filter((p) => !p.startsWith("imports: "));
  if (refused.length) {
    report.problems.push(`imports: expected only system libraries, found ${refused.join(", ")}`);
  }
  return report;
}
