/**
 * `deno task bench`: builds the release kernel, runs the benchmarks with
 * `deno bench`, and prints each result with its ratio to the baseline
 * measured in the same run.
 *
 * @module
 */

import { commandLine, printError } from "../lib/task.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { buildTarget } from "../matrix/build.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";
import { resolveTarget } from "../loader/mod.ts";

commandLine({
  name: "deno task bench",
  summary: "FFI call, protobuf, distribution, view, journal, server and build benchmarks",
  usage: ["(no options: runs every benchmark)"],
  options: {},
  env: {
    KREPIS_BENCH_RUNS: "runs per distribution and view measurement (default 15)",
    KREPIS_BENCH_JOURNAL_RUNS: "runs of each journal measurement (default 3; the median is shown)",
    KREPIS_BENCH_JOURNAL_DIR:
      "where the journal benchmarks make their projects (default: the temporary folder)",
    KREPIS_BENCH_ROUNDS: "rounds of the server benchmark, each side (default 3)",
    KREPIS_BENCH_SECONDS: "seconds each server benchmark round lasts (default 5)",
    RUSTC_WRAPPER: "a compiler wrapper cargo uses; when unset and sccache is installed, sccache",
  },
  exitCodes: { 0: "every benchmark ran", 1: "the build or a benchmark failed", 2: "usage error" },
  more: `Builds the release kernel for this machine (as deno task build does), runs
bench/ffi_bench.ts with deno bench and prints each result with its ratio to the
baseline, then bench/distribution.ts, views.ts, journal.ts, server.ts and build.ts.`,
});

const { library } = await buildTarget(targetRow(await loadTargetTable(), resolveTarget().triple));
const output = await new Deno.Command(Deno.execPath(), {
  args: ["bench", "--allow-all", "--json", `${REPO_ROOT}/bench/ffi_bench.ts`],
  env: { KREPIS_BENCH_KERNEL: library },
  stdout: "piped",
  stderr: "inherit",
}).output();
if (!output.success) {
  printError(
    `Cannot run the benchmarks: deno bench exited with ${output.code}\nHint: its output is above`,
  );
  Deno.exit(1);
}

interface BenchResult {
  name: string;
  group?: string;
  baseline: boolean;
  results: { ok?: { avg: number; p75: number; p99: number; n: number } }[];
}
const report = JSON.parse(new TextDecoder().decode(output.stdout)) as { benches: BenchResult[] };
const groups = Map.groupBy(report.benches, (bench) => bench.group ?? "");
console.log(`kernel: ${library}\n`);
for (const [group, benches] of groups) {
  const baseline = benches.find((bench) => bench.baseline)?.results[0].ok?.avg;
  console.log(`group ${group || "(none)"}`);
  for (const bench of benches) {
    const ok = bench.results[0].ok;
    if (!ok) {
      console.log(`  ${bench.name}: failed`);
      continue;
    }
    const ratio = baseline ? `${(ok.avg / baseline).toFixed(1)}x baseline` : "";
    console.log(
      `  ${ok.avg.toFixed(1).padStart(9)} ns/call  p99 ${ok.p99.toFixed(0).padStart(6)} ns  ${
        ratio.padEnd(16)
      } ${bench.name}`,
    );
  }
}

// The other benchmarks, each a script given the same release library.
for (const script of ["distribution.ts", "views.ts", "journal.ts", "server.ts", "build.ts"]) {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${REPO_ROOT}/bench/${script}`, library],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!run.success) Deno.exit(1); // the benchmark wrote its error (error: Cannot …)
}
