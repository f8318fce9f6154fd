/**
 * A user's commands download only what they use: `deno task krepis …` in a
 * fresh Deno cache installs no npm package (the release tools' packages are
 * imported by the files that use them, and deno.json turns the lockfile
 * off, since `deno task` installs every npm package a lockfile or an import
 * map names before it runs anything). The published package's first run is
 * measured by `deno task rehearse` (tests/rehearse_test.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { runDeno } from "./_cli.ts";

async function sizeOf(path: string): Promise<number> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return info.size;
  let total = 0;
  for await (const entry of Deno.readDir(path)) total += await sizeOf(join(path, entry.name));
  return total;
}

Deno.test("deno task krepis version in a fresh Deno cache installs no npm package", async () => {
  const denoDir = await Deno.makeTempDir({ prefix: "krepis-deno-dir-" });
  try {
    const run = await runDeno(["task", "--quiet", "krepis", "version"], { DENO_DIR: denoDir });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^krepis \d+\.\d+\.\d+/);
    // Deno makes an empty npm/ folder; a package would put files in it.
    const npm = await sizeOf(join(denoDir, "npm")).catch(() => 0);
    assert.equal(npm, 0, `npm packages in ${denoDir}: ${npm} bytes`);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});

Deno.test("deno.json names no npm package and keeps no lockfile for deno task", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
  assert.equal(config.imports, undefined);
  assert.equal(config.lock, false);
  for (const [name, task] of Object.entries(config.tasks as Record<string, { command: string }>)) {
    if (name === "krepis") assert.doesNotMatch(task.command, /--lock/);
  }
});
