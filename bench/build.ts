/**
 * Build benchmarks:
 *
 * 1. a release build of the kernel from a clean target directory with a warm
 *    sccache vs a cold build (no sccache), same command (the table's tool for
 *    this machine); sccache cannot cache the final cdylib link (or the build
 *    script runs), so the warm build is never free;
 * 2. library size raw vs zstd vs gzip (goal: zstd ≤ 0.4 of raw);
 * 3. what the server engine costs: the same cold release build, size raw
 *    and zstd, without the `server` feature (before) and with the table's
 *    features (after), when this machine's row has the engine.
 *
 * Usage: deno run -A bench/build.ts <dist library>
 *
 * @module
 */

import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { installed } from "../lib/process.ts";
import { cargoCommand, cargoOutput } from "../matrix/build.ts";
import { packArtifact } from "../matrix/pack_artifact.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";
import { reportUncaught } from "../lib/task.ts";

// Run by `deno task bench`: a failure is written as every task writes one.
reportUncaught("deno task bench");

const library = Deno.args[0];
if (!library) {
  throw new Error(
    "Cannot run the build benchmarks: no dist library given\nHint: run `deno task bench`",
  );
}
const row = targetRow(await loadTargetTable(), resolveTarget().triple);
const [cmd, ...args] = cargoCommand(row, "release");

async function timedBuild(
  targetDir: string,
  sccache: boolean,
  command: string[] = [cmd, ...args],
): Promise<number> {
  await Deno.remove(targetDir, { recursive: true }).catch(() => {});
  const env: Record<string, string> = {
    CARGO_TARGET_DIR: targetDir,
    RUSTC_WRAPPER: sccache ? "sccache" : "",
  };
  const start = performance.now();
  const out = await new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: REPO_ROOT,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`Cannot build: ${new TextDecoder().decode(out.stderr)}`);
  return (performance.now() - start) / 1000;
}

const rows: string[] = [];
const hasSccache = await installed("sccache");
const targetDir = await Deno.makeTempDir({ prefix: "krepis-bench-target-" });
try {
  const cold = await timedBuild(targetDir, false);
  if (hasSccache) {
    await timedBuild(targetDir, true); // fills the cache
    const warm = await timedBuild(targetDir, true);
    rows.push(
      `release build, clean target dir: warm sccache ${warm.toFixed(1)} s vs cold ${
        cold.toFixed(1)
      } s = ${(warm / cold).toFixed(2)}x`,
    );
  } else {
    rows.push(
      `release build, clean target dir: cold ${cold.toFixed(1)} s (no sccache on this machine)`,
    );
  }
} finally {
  await Deno.remove(targetDir, { recursive: true });
}

// 3. Before and after the engine: cold builds, so both pay for their own
// dependencies.
if (row.features.includes("server")) {
  const without = { ...row, features: row.features.filter((f) => f !== "server") };
  const dir = await Deno.makeTempDir({ prefix: "krepis-bench-target-" });
  try {
    const before = await timedBuild(dir, false, cargoCommand(without, "release"));
    const bytes = await Deno.readFile(
      cargoOutput(without, "release").replace(`${REPO_ROOT}/target`, dir),
    );
    const packed = packArtifact(bytes, row);
    const after = await timedBuild(dir, false);
    const withEngine = packArtifact(
      await Deno.readFile(cargoOutput(row, "release").replace(`${REPO_ROOT}/target`, dir)),
      row,
    );
    const [rawBefore, zstBefore] = [packed.files[0].bytes.length, packed.files[1].bytes.length];
    const [rawAfter, zstAfter] = [
      withEngine.files[0].bytes.length,
      withEngine.files[1].bytes.length,
    ];
    rows.push(
      `server engine: cold release build ${before.toFixed(1)} s without -> ${
        after.toFixed(1)
      } s with (${(after / before).toFixed(2)}x); size raw ${rawBefore} -> ${rawAfter} B (${
        (rawAfter / rawBefore).toFixed(2)
      }x), zstd ${zstBefore} -> ${zstAfter} B (${(zstAfter / zstBefore).toFixed(2)}x)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
} else {
  rows.push(`server engine: not built for ${row.triple} (matrix/targets.json)`);
}

const raw = (await Deno.stat(library)).size;
const zst = (await Deno.stat(`${library}.zst`)).size;
const gz = (await Deno.stat(`${library}.gz`)).size;
rows.push(
  `library size: raw ${raw} B, zstd ${zst} B (${(zst / raw).toFixed(3)}x raw), gzip ${gz} B (${
    (gz / raw).toFixed(3)
  }x raw); zstd/gzip ${(zst / gz).toFixed(3)}`,
);
console.log(`\nbuild (${cmd} ${args.join(" ")})`);
for (const line of rows) console.log(`  ${line}`);
