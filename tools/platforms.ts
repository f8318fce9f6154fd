/**
 * `deno task platforms [--profile dev|release] [--target <triple>]…`: one
 * row per target of `matrix/targets.json` saying what this machine did
 * with it:
 *
 * - **built**: the release artifact (`deno task build`), or, for a Windows
 *   MSVC row off Windows, a type-check of the row plus its GNU test twin;
 * - **checked**: the post-build checks (`check-artifact`) on what was built;
 * - **ran**: how the kernel was loaded and called through the loader (the
 *   smoke step): natively, under qemu, under Wine, or why it cannot be here.
 *
 * It exits non-zero when anything this machine can do failed; what it
 * cannot do is reported, never counted as a failure. The table in
 * docs/targets.md is its output.
 *
 * @module
 */

import { join } from "node:path";
import { commandLine, exitUsage, printError } from "../lib/task.ts";
import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { preferRustupCargo } from "../lib/toolchain.ts";
import { outputWithin } from "../lib/process.ts";
import { buildTarget } from "../matrix/build.ts";
import { loadTargetTable, type TargetRow } from "../matrix/targets.ts";
import { buildWindowsTarget, checkTwin, TWINS } from "../matrix/windows.ts";
import { aarch64Emulator, emulatedDeno } from "./aarch64_emulator.ts";
import {
  BUILD_STD_ARGS,
  buildStdEnv,
  debianArchive,
  ensureBuildStdToolchain,
} from "./build_std.ts";
import { windowsPath, wineCommand, wineProbe } from "./wine.ts";

/** How this machine can run a target's kernel. */
export type RunPlan =
  | { how: "native" }
  | { how: "qemu" }
  | { how: "wine" }
  | { how: "cannot"; why: string };

/** What a host is. */
export interface Host {
  /** `Deno.build.os`. */
  os: typeof Deno.build.os;
  /** `Deno.build.arch`. */
  arch: typeof Deno.build.arch;
}

/**
 * How a target's kernel can run on a host (before probing for the tools).
 *
 * @param row The target.
 * @param host The machine.
 * @returns The plan, or why it cannot run here.
 * @example
 * ```ts
 * import { runPlan } from "./platforms.ts";
 * import { loadTargetTable, targetRow } from "../matrix/targets.ts";
 * const row = targetRow(await loadTargetTable(), "aarch64-apple-darwin");
 * runPlan(row, { os: "linux", arch: "x86_64" }).how; // "cannot"
 * ```
 */
export function runPlan(row: TargetRow, host: Host): RunPlan {
  if (row.os === host.os && row.arch === host.arch) return { how: "native" };
  if (host.os === "linux" && host.arch === "x86_64") {
    if (row.os === "linux" && row.arch === "aarch64") return { how: "qemu" };
    if (row.os === "windows" && row.arch === "x86_64") return { how: "wine" };
    if (row.os === "windows") {
      return { how: "cannot", why: "arm64 Wine under qemu hangs at its first child process" };
    }
  }
  if (row.os === "darwin" && host.os === "darwin") {
    return {
      how: "cannot",
      why:
        `deno task platforms runs only this Mac's own ${host.arch} kernel, not the ${row.arch} one`,
    };
  }
  if (row.os === "darwin") {
    return { how: "cannot", why: "nothing here runs a Mach-O file (a macOS runner does)" };
  }
  return { how: "cannot", why: `no way to run ${row.os} ${row.arch} on ${host.os} ${host.arch}` };
}

/** What a host can build with, besides its OS and CPU. */
export interface BuildHost extends Host {
  /** Whether apt and a Debian archive are there (the std source for `-Zbuild-std` comes from it). */
  apt: boolean;
}

/**
 * Whether this machine can build a row at all, decided before building: a
 * macOS row off macOS and a Windows row off Windows need the std source
 * for `-Zbuild-std`, which is made from the Debian archive, so they are
 * buildable only on Linux with apt and a Debian archive.
 *
 * @param row The target.
 * @param host The machine, with whether apt and a Debian archive are there.
 * @returns `{ cannot: why }` when the row cannot be built here, else null.
 * @example
 * ```ts
 * import { hostCapability } from "./platforms.ts";
 * import { loadTargetTable, targetRow } from "../matrix/targets.ts";
 * const row = targetRow(await loadTargetTable(), "aarch64-apple-darwin");
 * hostCapability(row, { os: "windows", arch: "x86_64", apt: false }); // { cannot: "…" }
 * ```
 */
export function hostCapability(row: TargetRow, host: BuildHost): { cannot: string } | null {
  const foreign = (row.os === "darwin" && host.os !== "darwin") ||
    (row.os === "windows" && host.os !== "windows");
  if (!foreign) return null;
  const what = row.os === "darwin" ? "a macOS row off macOS" : "a Windows row off Windows";
  if (host.os !== "linux") {
    return {
      cannot:
        `${what} is built only on Linux with apt and a Debian archive (its std source), not on ${host.os}`,
    };
  }
  if (!host.apt) {
    return {
      cannot:
        `${what} needs the std source made from a Debian archive, and this Linux has no apt with one`,
    };
  }
  return null;
}

/** One step's outcome: done, failed (with why), or not possible here (with why). */
export type Outcome = { ok: string } | { failed: string } | { cannot: string };

/** One row of the report. */
export interface PlatformRow {
  /** The target. */
  triple: string;
  /** The build. */
  built: Outcome;
  /** The post-build checks. */
  checked: Outcome;
  /** The run. */
  ran: Outcome;
}

function cell(outcome: Outcome): string {
  if ("ok" in outcome) return `yes: ${outcome.ok}`;
  if ("failed" in outcome) return `FAILED: ${outcome.failed}`;
  return `cannot here: ${outcome.cannot}`;
}

/**
 * The report as a Markdown table (the one in docs/targets.md).
 *
 * @param rows One row per target.
 * @returns The table's lines.
 */
export function formatPlatforms(rows: PlatformRow[]): string {
  const escape = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [
    "| target | built | checked | ran |",
    "| --- | --- | --- | --- |",
    ...rows.map((row) =>
      `| ${row.triple} | ${escape(cell(row.built))} | ${escape(cell(row.checked))} | ${
        escape(cell(row.ran))
      } |`
    ),
  ].join("\n");
}

/**
 * The exit code: 1 when anything this machine can do failed, else 0 (a
 * step it cannot do is not a failure).
 *
 * @param rows The report.
 */
export function exitCode(rows: PlatformRow[]): number {
  return rows.some((row) => [row.built, row.checked, row.ran].some((o) => "failed" in o)) ? 1 : 0;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** `deno run … matrix/smoke.ts <library>` as a command line's arguments. */
const SMOKE = ["run", "--quiet", "--allow-all", join("matrix", "smoke.ts")];

/** Runs the smoke step with a command line; ok with its summary line, or failed. */
async function smoke(
  argv: [string, ...string[]],
  env: Record<string, string> = {},
): Promise<Outcome> {
  const [cmd, ...args] = argv;
  const output = await outputWithin(
    new Deno.Command(cmd, {
      args,
      cwd: REPO_ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    600_000,
  );
  const text = new TextDecoder().decode(output.stdout);
  const summary = /^smoke: \d+ passed, \d+ failed$/m.exec(text)?.[0];
  if (output.success && summary) return { ok: summary };
  return {
    failed: `${summary ?? `exit ${output.code}${output.signal ? ` (${output.signal})` : ""}`} ${
      new TextDecoder().decode(output.stderr).trim().split("\n").slice(-1)[0] ?? ""
    }`.trim(),
  };
}

/**
 * The run step's outcome when the Wine probe found no working Wine: a part
 * `deno task setup` makes here (the Wine root, the Windows Deno) is a
 * failure with that hint, since this machine can do it; anything else it
 * cannot do here.
 *
 * @param probe What the probe found, without a working Wine.
 * @returns The outcome.
 */
export function wineOutcome(
  probe: { missing: string; setup?: boolean } | { broken: string },
): Outcome {
  if ("broken" in probe) return { failed: probe.broken };
  if (probe.setup) return { failed: `not set up: run deno task setup (${probe.missing})` };
  return { cannot: probe.missing };
}

/** What one target gives on this machine. */
async function platform(
  row: TargetRow,
  profile: "release" | "dev",
  host: BuildHost,
): Promise<PlatformRow> {
  const capability = hostCapability(row, host);
  if (capability) {
    const notBuilt = { cannot: "not built here" };
    return { triple: row.triple, built: capability, checked: notBuilt, ran: notBuilt };
  }
  const plan = runPlan(row, host);
  let library: string;
  let built: Outcome;
  let checked: Outcome;
  const started = performance.now();
  const took = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
  if (row.os === "windows" && host.os !== "windows") {
    try {
      // The std source is made if missing (setup's way), then the checks and the twin.
      const toolchain = await ensureBuildStdToolchain();
      const std = { cargo: toolchain.cargo, env: buildStdEnv(toolchain), args: BUILD_STD_ARGS };
      const result = await buildWindowsTarget(row, std, { profile });
      library = result.library;
      built = {
        ok: `${row.triple} type-checked (${
          result.checks.map((c) => c.features.join(",")).join("; ")
        }), test twin ${result.twin.triple} built, ${profile} (${took()})`,
      };
      const report = checkTwin(await Deno.readFile(library), result.twin);
      checked = report.problems.length
        ? { failed: `the twin: ${report.problems.join("; ")}` }
        : { ok: `the twin: ${report.info.format}, ${report.info.arch}, the table's exports` };
    } catch (error) {
      return {
        triple: row.triple,
        built: { failed: firstLine(error) },
        checked: { cannot: "not built" },
        ran: { cannot: "not built" },
      };
    }
  } else {
    try {
      const result = await buildTarget(row, { profile });
      library = result.library;
      built = { ok: `${row.file}, ${profile} (${took()})` };
      // buildTarget() refuses an artifact that fails a check.
      checked = { ok: "every post-build check" };
    } catch (error) {
      const message = firstLine(error);
      return {
        triple: row.triple,
        built: message.startsWith("Cannot accept") ? { ok: "built" } : { failed: message },
        checked: message.startsWith("Cannot accept")
          ? { failed: message }
          : { cannot: "not built" },
        ran: { cannot: "not built" },
      };
    }
  }
  let ran: Outcome;
  if (plan.how === "cannot") ran = { cannot: plan.why };
  else if (plan.how === "native") {
    ran = await smoke([Deno.execPath(), ...SMOKE, library]);
    if ("ok" in ran) ran = { ok: `natively: ${ran.ok}` };
  } else if (plan.how === "qemu") {
    const probe = await aarch64Emulator();
    if ("emulator" in probe) {
      ran = await smoke(emulatedDeno(probe.emulator, [...SMOKE, library]));
      if ("ok" in ran) ran = { ok: `arm64 Deno under qemu: ${ran.ok}` };
    } else ran = "missing" in probe ? { cannot: probe.missing } : { failed: probe.broken };
  } else {
    const probe = await wineProbe();
    if ("wine" in probe) {
      ran = await smoke(wineCommand(probe.wine, [probe.wine.deno, ...SMOKE, windowsPath(library)]));
      if ("ok" in ran) ran = { ok: `Windows Deno under ${probe.wine.version}: ${ran.ok}` };
    } else ran = wineOutcome(probe);
  }
  return { triple: row.triple, built, checked, ran };
}

/** Whether apt-get runs here and the apt sources name a Debian archive. */
async function hasApt(): Promise<boolean> {
  try {
    const ok = (await new Deno.Command("apt-get", {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output()).success;
    return ok && (await debianArchive()) !== null;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const { values } = commandLine({
    name: "deno task platforms",
    summary: "build, check and run the kernel for every target this machine can, one row each",
    usage: ["[--profile dev|release] [--target <triple>]…"],
    options: {
      profile: {
        type: "string",
        value: "<profile>",
        choices: ["release", "dev"],
        help: "the cargo profile; default dev (release builds of six targets take long here)",
      },
      target: {
        type: "string",
        multiple: true,
        value: "<triple>",
        help: "only these rows of matrix/targets.json (default: every row)",
      },
    },
    env: {
      KREPIS_TOOLS_DIR: "where the std source, the Wine root and the foreign Denos are kept",
    },
    exitCodes: {
      0: "everything this machine can do passed",
      1: "a build, check or run this machine can do failed",
      2: "usage error",
    },
    more: `Windows MSVC rows off Windows: a type-check (cargo check with the std built from
source) and a GNU test twin (${
      Object.values(TWINS).map((t) => t.triple).join(", ")
    }), never a release artifact.`,
  });
  preferRustupCargo();
  const profile = values.profile === "release" ? "release" : "dev";
  const rows = await loadTargetTable();
  const wanted = values.target ?? rows.map((r) => r.triple);
  for (const triple of wanted) {
    if (!rows.some((r) => r.triple === triple)) {
      exitUsage(`Cannot report ${triple}: it is not a row of matrix/targets.json`);
    }
  }
  const host: BuildHost = {
    os: Deno.build.os,
    arch: Deno.build.arch,
    apt: Deno.build.os === "linux" && await hasApt(),
  };
  console.log(`platforms: on ${resolveTarget().triple}, ${profile} builds`);
  const report: PlatformRow[] = [];
  for (const row of rows.filter((r) => wanted.includes(r.triple))) {
    console.log(`\n=== ${row.triple}`);
    try {
      report.push(await platform(row, profile, host));
    } catch (error) {
      report.push({
        triple: row.triple,
        built: { failed: firstLine(error) },
        checked: { cannot: "not built" },
        ran: { cannot: "not built" },
      });
    }
  }
  console.log(`\n${formatPlatforms(report)}`);
  const code = exitCode(report);
  if (code) {
    printError(
      "Cannot pass deno task platforms: a step this machine can do failed (FAILED above)\nHint: each row's build output is above the table",
    );
  }
  Deno.exit(code);
}
