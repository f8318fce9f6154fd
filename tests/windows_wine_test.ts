/**
 * Windows x86_64 for real, on an x86_64 Linux machine: the kernel's test
 * twin (`x86_64-pc-windows-gnu`, the same source as the shipped MSVC DLL,
 * see matrix/windows.ts) is built once, and then, under Wine 10 in a
 * private mount namespace (tools/wine.ts):
 *
 * - the kernel's Rust unit tests run as Windows programs (Wine is cargo's
 *   target runner);
 * - the matrix's smoke step loads the twin through the loader on Windows Deno;
 * - the loader's Deno tests that carry Windows rules ({@linkcode WINE_TEST_FILES})
 *   run on Windows Deno, in one Wine session, against the twin.
 *
 * Skipped, with the reason, where a part cannot exist (not x86_64 Linux, no
 * std source for `-Zbuild-std`, no mingw-w64, no Wine root, no Windows Deno,
 * no user or mount namespaces); `deno task setup` makes every part on x86_64
 * Linux. When every part is there but they do not run together, the tests fail.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { outputWithin } from "../lib/process.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";
import {
  checkTwin,
  copyTwin,
  type StdSource,
  twinCommand,
  twinRow,
  windowsCcEnv,
} from "../matrix/windows.ts";
import { BUILD_STD_ARGS, buildStdEnv, buildStdToolchain } from "../tools/build_std.ts";
import { windowsPath, type Wine, WINE_ROOT_ONLY, wineCommand, wineProbe } from "../tools/wine.ts";
import { has, skipIf } from "./_tools.ts";

/**
 * The loader's Deno test files run under Wine: loading, installing and
 * caching, the journal, views, the server engine and the CLI. A test in
 * them that cannot run under Wine is skipped there with its reason (listed
 * in docs/testing.md).
 */
export const WINE_TEST_FILES: readonly string[] = [
  "loader/load_test.ts",
  "loader/kernel/library_file_test.ts",
  "loader/_install/cache_test.ts",
  "tests/install_test.ts",
  "loader/kernel/journal_test.ts",
  "loader/kernel/view_test.ts",
  "loader/kernel/server_test.ts",
  "tests/cli_undo_test.ts",
];

/**
 * Run under Wine only with `KREPIS_WINE_ALL=1`: the CLI's end-to-end tests
 * start Windows Deno dozens of times (5 to 10 s each under Wine), about ten
 * minutes that a fresh gate cannot afford on a 2-core machine.
 */
export const WINE_SLOW_TEST_FILES: readonly string[] = ["tests/cli_test.ts"];

/** The files this run takes: {@linkcode WINE_TEST_FILES}, and the slow ones when asked. */
const wineFiles = Deno.env.get("KREPIS_WINE_ALL") === "1"
  ? [...WINE_TEST_FILES, ...WINE_SLOW_TEST_FILES]
  : [...WINE_TEST_FILES];

const MSVC = "x86_64-pc-windows-msvc";
const twin = twinRow(targetRow(await loadTargetTable(), MSVC));
const HOST = resolveTarget().triple;

const toolchain = HOST === "x86_64-unknown-linux-gnu" ? await buildStdToolchain() : null;
const probe = await wineProbe();
/** Why Windows x86_64 cannot run here, or null (a broken Wine is not a reason: it fails). */
const skip = HOST !== "x86_64-unknown-linux-gnu"
  ? "Windows x86_64 runs under Wine on x86_64 Linux only"
  : Deno.uid() !== 0
  ? WINE_ROOT_ONLY
  : toolchain === null
  ? "no Rust std source for -Zbuild-std here (deno task setup fetches it)"
  : !has("x86_64-w64-mingw32-gcc")
  ? "no mingw-w64 gcc (deno task setup installs mingw-w64)"
  : "missing" in probe
  ? probe.missing
  : null;

function wine(): Wine {
  if ("broken" in probe) assert.fail(probe.broken);
  assert.ok("wine" in probe);
  return probe.wine;
}

function std(): StdSource {
  assert.ok(toolchain);
  return { cargo: toolchain.cargo, env: buildStdEnv(toolchain), args: BUILD_STD_ARGS };
}

/** The environment of the twin's cargo builds. */
function cargoEnv(): Record<string, string> {
  return {
    CARGO_TARGET_DIR: join(REPO_ROOT, "target"),
    ...std().env,
    ...windowsCcEnv(twin.triple),
  };
}

/** A dev build of the twin (with -Zbuild-std) takes minutes here; it must end. */
const BUILD_LIMIT_MS = 40 * 60_000;

let built: Promise<string> | undefined;
/** The twin DLL, built once (dev), copied to target/test-twins/. */
function twinLibrary(): Promise<string> {
  built ??= (async () => {
    const [cmd, ...args] = twinCommand(twin, "dev", std());
    const output = await outputWithin(
      new Deno.Command(cmd, {
        args,
        cwd: REPO_ROOT,
        env: cargoEnv(),
        stdout: "piped",
        stderr: "piped",
      }),
      BUILD_LIMIT_MS,
    );
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    return await copyTwin(twin, "dev");
  })();
  return built;
}

/** Runs `argv` under Wine in the repository, killed after `limitMs`. */
async function underWine(
  argv: string[],
  env: Record<string, string>,
  limitMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = wineCommand(wine(), argv, { env: { NO_COLOR: "1", ...env } });
  const output = await outputWithin(
    new Deno.Command(cmd, {
      args,
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    limitMs,
  );
  assert.equal(
    output.signal,
    null,
    `killed after ${limitMs / 1000} s under Wine: ${argv.join(" ")}`,
  );
  const decode = (b: Uint8Array) => new TextDecoder().decode(b).replaceAll("\r\n", "\n");
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Per test file: passed, failed and ignored, from `deno test`'s default report. */
export function denoTestCounts(
  report: string,
): Record<string, { passed: number; failed: number; ignored: number }> {
  const counts: Record<string, { passed: number; failed: number; ignored: number }> = {};
  let file = "";
  for (const line of report.split("\n")) {
    const running = /^running \d+ tests? from \.[\\/](.+)$/.exec(line.trim());
    if (running) {
      file = running[1].replaceAll("\\", "/");
      counts[file] ??= { passed: 0, failed: 0, ignored: 0 };
      continue;
    }
    const result = /^(.*) \.\.\. (ok|FAILED|ignored)\b/.exec(line);
    if (!file || !result || /^\s/.test(line)) continue;
    const key = result[2] === "ok" ? "passed" : result[2] === "FAILED" ? "failed" : "ignored";
    counts[file][key]++;
  }
  return counts;
}

Deno.test("denoTestCounts() counts each file's passed, failed and ignored tests", () => {
  const report = [
    "running 2 tests from ./loader/a_test.ts",
    "one ... ok (3ms)",
    "two ... FAILED (1ms)",
    "running 1 test from .\\tests\\b_test.ts",
    "three ... ignored (0ms)",
    "  step ... ok (1ms)",
  ].join("\n");
  assert.deepEqual(denoTestCounts(report), {
    "loader/a_test.ts": { passed: 1, failed: 1, ignored: 0 },
    "tests/b_test.ts": { passed: 0, failed: 0, ignored: 1 },
  });
});

Deno.test(
  skipIf("the test twin x86_64-pc-windows-gnu builds and passes the post-build checks", skip),
  async () => {
    const library = await twinLibrary();
    const report = checkTwin(await Deno.readFile(library), twin);
    assert.ok(report.info.imports.some((name) => /^msvcrt\.dll$/i.test(name)), "mingw's runtime");
    assert.deepEqual(report.problems, []);
    assert.equal(report.info.format, "pe");
    assert.equal(report.info.arch, "x86_64");
    // Never a release artifact: not under dist/.
    assert.ok(!library.startsWith(join(REPO_ROOT, "dist")), library);
    assert.match(library, /-test-twin\.dll$/);
  },
);

Deno.test(
  skipIf("the kernel's Rust unit tests pass as Windows programs under Wine", skip),
  async () => {
    await twinLibrary();
    const argv = twinCommand(twin, "dev", std(), true).filter((a) => a !== "--no-run");
    const runner = [Deno.execPath(), "run", "--allow-all", join(REPO_ROOT, "tools", "wine.ts")];
    const output = await outputWithin(
      new Deno.Command(argv[0], {
        args: argv.slice(1),
        cwd: REPO_ROOT,
        env: {
          ...cargoEnv(),
          [`CARGO_TARGET_${twin.triple.replaceAll("-", "_").toUpperCase()}_RUNNER`]: runner.join(
            " ",
          ),
        },
        stdout: "piped",
        stderr: "piped",
      }),
      BUILD_LIMIT_MS,
    );
    const stdout = new TextDecoder().decode(output.stdout).replaceAll("\r\n", "\n");
    const result = /^test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored/m.exec(stdout);
    console.log(`under Wine: ${result?.[0] ?? "no result line"}`);
    assert.ok(output.success, stdout + new TextDecoder().decode(output.stderr));
    assert.ok(result, stdout);
    assert.equal(result[3], "0");
    // 50 on Windows (the others are Unix-only: FIFOs, modes, owners, links).
    assert.ok(Number(result[2]) >= 40, `only ${result[2]} unit tests ran`);
  },
);

Deno.test(
  skipIf("the matrix's smoke step passes on the test twin under Wine with Windows Deno", skip),
  async () => {
    const library = await twinLibrary();
    const run = await underWine(
      [
        wine().deno,
        "run",
        "--quiet",
        "--allow-all",
        join("matrix", "smoke.ts"),
        windowsPath(library),
      ],
      {},
      600_000,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /buildInfo\(\) through the loader: x86_64-pc-windows-gnu debug/);
    assert.match(run.stdout, /^ok +server\.start\(\) proxies a request/m);
    assert.match(run.stdout, /^ok +every export called: \d+ exports$/m);
    assert.match(run.stdout, /^smoke: \d+ passed, 0 failed$/m);
  },
);

Deno.test(
  skipIf(
    "the loader's tests with Windows rules pass on Windows Deno under Wine (load, cache, journal, views, server, CLI undo)",
    skip,
  ),
  async () => {
    const library = windowsPath(await twinLibrary());
    const run = await underWine(
      [wine().deno, "test", "--allow-all", "--lock=deno.lock", ...wineFiles],
      {
        KREPIS_TEST_KERNEL: library,
        KREPIS_KERNEL_PATH: library,
        KREPIS_TEST_KERNEL_TARGET: twin.triple,
        KREPIS_UNDER_WINE: "1",
      },
      BUILD_LIMIT_MS,
    );
    const counts = denoTestCounts(run.stdout);
    for (const [file, c] of Object.entries(counts)) {
      console.log(
        `under Wine: ${
          file.padEnd(30)
        } ${c.passed} passed, ${c.failed} failed, ${c.ignored} ignored`,
      );
    }
    assert.deepEqual(
      Object.keys(counts).sort(),
      [...wineFiles].sort(),
      run.stdout + run.stderr,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const c of Object.values(counts)) assert.equal(c.failed, 0);
  },
);
