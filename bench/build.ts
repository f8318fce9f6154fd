/**
 * Build benchmarks:
 *
 * 1. a release build of the kernel from a clean target directory with a warm
 *    sccache vs a cold build (no sccache), same command (the table's tool for
 *    this machine); sccache cannot cache the final cdylib link (or the build
 *    script runs), so the warm build is never free;
 * 2. library size raw vs zstd vs gzip (goal: zstd ≤ 0.4 of raw).
 *
 * Usage: deno run -A bench/build.ts <dist library>
 *
 * @module
 */

import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { cargoCommand } from "../matrix/build.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";

const library = Deno.args[0];
if (!library) {
  throw new Error(
    "Cannot run the build benchmarks: no dist library given\nHint: run `deno task bench`",
  );
}
const row = targetRow(await loadTargetTable(), resolveTarget().triple);
const [cmd, ...args] = cargoCommand(row, "release");

async function timedBuild(targetDir: string, sccache: boolean): Promise<number> {
  await Deno.remove(targetDir, { recursive: true }).catch(() => {});
  const env: Record<string, string> = {
    CARGO_TARGET_DIR: targetDir,
    RUSTC_WRAPPER: sccache ? "sccache" : "",
  };
  const start = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    cwd: REPO_ROOT,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`Cannot build: ${new TextDecoder().decode(out.stderr)}`);
  return (performance.now() - start) / 1000;
}

const rows: string[] = [];
const hasSccache = await new Deno.Command("sccache", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
}).output()
  .then((o) => o.success, () => false);
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
