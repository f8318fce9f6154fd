/**
 * A tool that is not installed makes its test or benchmark skip with a
 * one-line reason: asking for it never throws (`Deno.Command.output()`
 * throws synchronously when the program cannot be spawned).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { installed, outputOrNull } from "../lib/process.ts";

/** Runs `deno <args>` with a PATH that holds nothing (an empty folder). */
async function withEmptyPath(args: string[]) {
  const empty = await Deno.makeTempDir({ prefix: "krepis-empty-path-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT,
      env: { PATH: empty, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    await Deno.remove(empty);
  }
}

Deno.test("outputOrNull() and installed() say a missing program is missing instead of throwing", async () => {
  assert.equal(await outputOrNull(new Deno.Command("krepis-no-such-tool")), null);
  assert.equal(await installed("krepis-no-such-tool"), false);
  assert.equal(await installed(Deno.execPath()), true);
  const out = await outputOrNull(
    new Deno.Command(Deno.execPath(), { args: ["eval", "Deno.exit(3)"] }),
  );
  assert.equal(out?.code, 3, "a program that runs and fails is its output, not null");
});

Deno.test("tests/_release_tools.ts loads without sha256sum and minisign on PATH, giving each reason", async () => {
  const tools = join(REPO_ROOT, "tests", "_release_tools.ts");
  const run = await withEmptyPath([
    "eval",
    `const t = await import(${JSON.stringify(new URL(`file://${tools}`).href)});
     console.log(JSON.stringify([t.NO_SHA256SUM, t.NO_MINISIGN]));`,
  ]);
  assert.equal(run.code, 0, run.stderr);
  const [sha, minisign] = JSON.parse(run.stdout);
  assert.match(sha, /^GNU sha256sum is not installed/);
  assert.match(minisign, /^minisign is not installed/);
});

Deno.test("bench/server.ts without wrk on PATH skips with one line and exits 0", async () => {
  const run = await withEmptyPath([
    "run",
    "--allow-all",
    "--quiet",
    join(REPO_ROOT, "bench", "server.ts"),
    "no-library-needed-to-skip",
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^ {2}skipped: wrk is not installed \(.*\)$/m);
  assert.equal(run.stderr, "");
});
