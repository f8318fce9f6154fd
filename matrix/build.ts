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
 * build` gets it too). With sccache on the machine it is used
 * (`RUSTC_WRAPPER`) and its hit statistics are printed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LOADER_ABI, resolveTarget, type TargetInfo, VERSION } from "../loader/mod.ts";
import { REPO_ROOT } from "../tools/cargo_build.ts";
import { packArtifact } from "../release/pack_artifact.ts";
import { checkArtifact, checkCodeSignature, formatReport } from "./check_artifact.ts";
import { loadTargetTable, type TargetRow, targetRow } from "./targets.ts";

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
}

/** The cargo command line for a target row. */
export function cargoCommand(row: TargetRow, profile: "release" | "dev"): string[] {
  const profileArgs = profile === "release" ? ["--release"] : [];
  if (row.tool === "cargo-zigbuild") {
    const target = row.glibcFloor ? `${row.triple}.${row.glibcFloor}` : row.triple;
    return [
      "cargo",
      "zigbuild",
      "--locked",
      "-p",
      "krepis-kernel",
      ...profileArgs,
      "--target",
      target,
    ];
  }
  if (row.tool === "cargo") {
    return [
      "cargo",
      "build",
      "--locked",
      "-p",
      "krepis-kernel",
      ...profileArgs,
      "--target",
      row.triple,
    ];
  }
  throw new Error(`Cannot build ${row.triple}: unknown tool ${row.tool} in matrix/targets.json`);
}

/**
 * The environment cargo runs with for a target row, on top of the inherited
 * one: `CARGO_TARGET_DIR` pinned to `<repo>/target` (where
 * {@linkcode cargoOutput} looks), and for macOS rows the table's
 * `MACOSX_DEPLOYMENT_TARGET`, so the minimum macOS the dylib asks for is the
 * table's and not whatever the runner or rustc defaults to.
 *
 * @param row The target.
 * @returns Variables to set.
 */
export function cargoEnv(row: TargetRow): Record<string, string> {
  // cargoOutput() reads <repo>/target: never let an inherited
  // CARGO_TARGET_DIR send the build elsewhere and leave a stale file there.
  const env: Record<string, string> = { CARGO_TARGET_DIR: `${REPO_ROOT}/target` };
  if (row.os === "darwin" && row.macosDeploymentTarget) {
    env.MACOSX_DEPLOYMENT_TARGET = row.macosDeploymentTarget;
  }
  return env;
}

/** The file cargo writes for a target row. */
export function cargoOutput(row: TargetRow, profile: "release" | "dev"): string {
  const name = row.os === "windows"
    ? "krepis_kernel.dll"
    : row.os === "darwin"
    ? "libkrepis_kernel.dylib"
    : "libkrepis_kernel.so";
  return `${REPO_ROOT}/target/${row.triple}/${profile === "release" ? "release" : "debug"}/${name}`;
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
  const env = cargoEnv(row);
  const sccache = await hasSccache();
  if (sccache && !Deno.env.get("RUSTC_WRAPPER")) env.RUSTC_WRAPPER = "sccache";
  if (sccache) await run(["sccache", "--zero-stats"], {}, false);
  const [cmd, ...args] = cargoCommand(row, profile);
  const status = await new Deno.Command(cmd, {
    args,
    cwd: REPO_ROOT,
    env,
    stdout: options.verbose === false ? "null" : "inherit",
    stderr: options.verbose === false ? "piped" : "inherit",
  }).output();
  if (!status.success) {
    throw new Error(
      `Cannot build ${row.triple}: ${[cmd, ...args].join(" ")} exited with ${status.code}${
        options.verbose === false ? `\n${new TextDecoder().decode(status.stderr)}` : ""
      }\nHint: ${
        row.tool === "cargo-zigbuild"
          ? "install cargo-zigbuild and ziglang (pip install cargo-zigbuild ziglang)"
          : `build on a ${row.runner} runner`
      }; rustup target add ${row.triple}`,
    );
  }
  const stats = sccache ? await sccacheSummary() : null;
  const output = cargoOutput(row, profile);
  const bytes = await Deno.readFile(output);
  const report = checkArtifact(bytes, row);
  const signature = await checkCodeSignature(output);
  report.codeSignature = signature.codeSignature;
  if (signature.problem) report.problems.push(signature.problem);
  console.log(formatReport(output, row, report));
  if (report.problems.length) {
    throw new Error(`Cannot accept the build for ${row.triple}: ${report.problems.join("; ")}`);
  }
  const dir = `${distDir}/${row.triple}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const fragment = await writeFragmentDir(dir, bytes, row);
  return { dir, library: `${dir}/${row.file}`, fragment, sccache: stats };
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

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { target: { type: "string" }, profile: { type: "string", default: "release" } },
  });
  if (values.profile !== "release" && values.profile !== "dev") {
    console.error(`Cannot build: --profile takes release or dev, not ${values.profile}`);
    Deno.exit(2);
  }
  const rows = await loadTargetTable();
  const row = targetRow(rows, values.target ?? resolveTarget().triple);
  try {
    const result = await buildTarget(row, { profile: values.profile });
    console.log(`\nwrote ${result.dir}/ (${row.file}, .zst, .gz, fragment.json)`);
    if (result.sccache) console.log(result.sccache);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
