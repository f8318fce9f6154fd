/**
 * Journal benchmarks, each as a ratio to a baseline measured in the same
 * run:
 *
 * 1. `trackAll` of every file + `commit` + `undo`, for 1,000 and 10,000 small
 *    files (1 KiB each, 100 to a folder), against copying the same files
 *    with `cp -a` (goal ≤ 3×), and the per-file cost at 10,000 against the
 *    per-file cost at 1,000 (goal ≤ 1.5×: tracking is O(1) amortised); and
 *    one `track` call per file at 1,000, for contrast (each syncs the disk);
 * 2. the bytes `.krepis/` takes after three commits of a file, an undo and
 *    `forget({ keep: 1 })`, against the bytes of the snapshots still live
 *    (goal ≤ 1.1×), for one 64 MiB file and for 1,000 small files.
 *
 * The baseline copy is `cp -a` where it exists (Linux, macOS); on Windows a
 * copy loop through `Deno.copyFile`, named as such in the output.
 *
 * Usage: deno run -A bench/journal.ts <kernel library>
 *
 * @module
 */

import { join } from "node:path";
import { load } from "../loader/mod.ts";

const library = Deno.args[0];
if (!library) {
  throw new Error(
    "Cannot run the journal benchmarks: no library given\nHint: run `deno task bench`",
  );
}
const runs = Number(Deno.env.get("KREPIS_BENCH_JOURNAL_RUNS") ?? "3");
// Where the projects are made: the system's temporary folder, or another
// disk (a tmpfs shows the cost without the disk's).
const base = Deno.env.get("KREPIS_BENCH_JOURNAL_DIR");
const KiB = 1024;
const MiB = 1024 * KiB;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** `count` files of 1 KiB under `dir`, 100 to a folder; their relative names. */
async function smallFiles(dir: string, count: number): Promise<string[]> {
  const names: string[] = [];
  const bytes = new Uint8Array(KiB).map((_, i) => 97 + (i % 26));
  for (let i = 0; i < count; i++) {
    const folder = `d${Math.floor(i / 100)}`;
    if (i % 100 === 0) await Deno.mkdir(join(dir, folder), { recursive: true });
    const name = `${folder}/f${i}.txt`;
    await Deno.writeFile(join(dir, name), bytes);
    names.push(name);
  }
  return names;
}

const windows = Deno.build.os === "windows";
const baselineName = windows ? "Deno.copyFile loop" : "cp -a";

/** Milliseconds to copy `dir` to a new folder with the baseline tool. */
async function copyBaseline(dir: string, names: string[]): Promise<number> {
  const target = `${dir}-copy`;
  const start = performance.now();
  if (windows) {
    for (const name of names) {
      const to = join(target, name);
      await Deno.mkdir(join(to, ".."), { recursive: true });
      await Deno.copyFile(join(dir, name), to);
    }
  } else {
    const done = await new Deno.Command("cp", { args: ["-a", dir, target] }).output();
    if (!done.success) {
      throw new Error(`Cannot run cp -a: ${new TextDecoder().decode(done.stderr)}`);
    }
  }
  const elapsed = performance.now() - start;
  await Deno.remove(target, { recursive: true });
  return elapsed;
}

/** The apparent bytes of every file under `dir`. */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) total += await bytesUnder(path);
    else if (entry.isFile) total += (await Deno.stat(path)).size;
  }
  return total;
}

using kernel = await load({ path: library });
console.log(`\njournal benchmarks in ${base ?? "the temporary folder"}`);

console.log(
  `\njournal: trackAll + commit + undo of N small files, against ${baselineName} of the same files`,
);
const perFile: Record<number, number> = {};
for (const count of [1_000, 10_000]) {
  const journalTimes: number[] = [];
  const copyTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    const root = await Deno.makeTempDir({ dir: base, prefix: "krepis-bench-journal-" });
    const names = await smallFiles(root, count);
    copyTimes.push(await copyBaseline(root, names));
    using journal = kernel.journal.open(root);
    const start = performance.now();
    const tx = journal.begin("bench");
    tx.trackAll(names);
    const tracked = performance.now();
    // The tool's edit is not timed.
    for (const name of names) await Deno.writeTextFile(join(root, name), "edited");
    const editStart = performance.now();
    tx.commit();
    journal.undo();
    const end = performance.now();
    journalTimes.push(tracked - start + (end - editStart));
    journal.close();
    await Deno.remove(root, { recursive: true });
  }
  const journalMs = median(journalTimes);
  const copyMs = median(copyTimes);
  perFile[count] = journalMs / count;
  console.log(
    `  ${String(count).padStart(6)} files: journal ${
      journalMs.toFixed(0).padStart(7)
    } ms, ${baselineName} ${copyMs.toFixed(0).padStart(6)} ms: ${
      (journalMs / copyMs).toFixed(2)
    }x (goal ≤ 3x); ${(perFile[count] * 1000).toFixed(0)} µs/file`,
  );
}
{
  // For contrast: one track() call per file, each syncing the disk.
  const root = await Deno.makeTempDir({ dir: base, prefix: "krepis-bench-journal-one-" });
  const names = await smallFiles(root, 1_000);
  const copyMs = await copyBaseline(root, names);
  using journal = kernel.journal.open(root);
  const start = performance.now();
  const tx = journal.begin("bench");
  for (const name of names) tx.track(name);
  const tracked = performance.now();
  for (const name of names) await Deno.writeTextFile(join(root, name), "edited");
  const editStart = performance.now();
  tx.commit();
  journal.undo();
  const ms = tracked - start + (performance.now() - editStart);
  console.log(
    `  ${String(1_000).padStart(6)} files, track() one by one: ${
      ms.toFixed(0).padStart(7)
    } ms, ${baselineName} ${copyMs.toFixed(0).padStart(6)} ms: ${(ms / copyMs).toFixed(2)}x`,
  );
  journal.close();
  await Deno.remove(root, { recursive: true });
}
console.log(
  `  per-file cost at 10,000 / at 1,000: ${
    (perFile[10_000] / perFile[1_000]).toFixed(2)
  }x (goal ≤ 1.5x)`,
);

console.log(
  `\njournal: .krepis/ bytes after 3 commits, an undo and forget({ keep: 1 }), against live snapshots`,
);
for (
  const [label, make] of [
    ["one 64 MiB file", async (root: string) => {
      const chunk = new Uint8Array(MiB);
      using file = await Deno.open(join(root, "big.bin"), { write: true, create: true });
      for (let i = 0; i < 64; i++) {
        chunk.fill(i);
        await file.write(chunk);
      }
      return ["big.bin"];
    }],
    ["1,000 files of 1 KiB", (root: string) => smallFiles(root, 1_000)],
  ] as const
) {
  const root = await Deno.makeTempDir({ dir: base, prefix: "krepis-bench-journal-space-" });
  const names = await make(root);
  {
    using journal = kernel.journal.open(root);
    for (let round = 0; round < 3; round++) {
      using tx = journal.begin(`round ${round}`);
      tx.trackAll(names);
      for (const name of names) {
        using file = await Deno.open(join(root, name), { write: true });
        await file.write(new Uint8Array([round]));
      }
      tx.commit();
    }
    journal.undo();
    journal.forget({ keep: 1 });
    const live = journal.history().reduce((sum, entry) => sum + entry.snapshotBytes, 0);
    journal.close();
    const stored = await bytesUnder(join(root, ".krepis"));
    console.log(
      `  ${label.padEnd(22)} live snapshots ${(live / MiB).toFixed(2)} MiB, .krepis/ ${
        (stored / MiB).toFixed(2)
      } MiB: ${(stored / live).toFixed(2)}x (goal ≤ 1.1x)`,
    );
  }
  await Deno.remove(root, { recursive: true });
}
