/**
 * docs/development.md's "Getting started from a clone" as a user follows it, on a
 * signed release written as `deno task demo --out` writes one (the mirror
 * layout and its `key.pub`): `deno task serve` it, take the `KREPIS_MIRROR`
 * and `KREPIS_TRUSTED_KEY` it prints, `krepis init`, then a program that
 * imports `loader/mod.ts` and runs with exactly the permissions the section
 * gives for a warm `load()`. The commands and flags it runs are checked to be
 * the section's.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { LOADER_ENV } from "../loader/_internal/env.ts";
import { within } from "../lib/process.ts";
import { releaseFixture } from "./_release_fixture.ts";
import { runDeno } from "./_cli.ts";
import { WINDOWS } from "./_tools.ts";

const LIMIT_MS = 120_000;

/** `deno task serve <dir> --port 0`, up to the lines it prints before serving. */
async function serve(dir: string) {
  const env = Deno.env.toObject();
  delete env.INIT_CWD; // deno task keeps an inherited one (the gate's)
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "serve", dir, "--port", "0", "--quiet"],
    cwd: REPO_ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("stop it:")) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
  }
  return {
    printed,
    async [Symbol.asyncDispose]() {
      child.kill(WINDOWS ? "SIGKILL" : "SIGINT");
      await reader.cancel();
      await within(child, LIMIT_MS, (c) => c.status);
    },
  };
}

Deno.test("the getting-started: serve a release, krepis init with what serve prints, load() with the section's permissions", async () => {
  const fixture = await releaseFixture();
  await using server = await serve(fixture.dir);
  // `use it:   KREPIS_MIRROR=… KREPIS_TRUSTED_KEY=<dir>/key.pub krepis init`
  const use = server.printed.split("\n").find((line) => line.startsWith("use it:"));
  assert.ok(use, server.printed);
  const given = Object.fromEntries(
    [...use.matchAll(/(KREPIS_\w+)=(\S+)/g)].map((m) => [m[1], m[2]]),
  );
  assert.deepEqual(Object.keys(given), ["KREPIS_MIRROR", "KREPIS_TRUSTED_KEY"]);
  assert.equal(given.KREPIS_TRUSTED_KEY, join(fixture.dir, "key.pub"));

  const cache = await Deno.makeTempDir({ prefix: "krepis-start-" });
  try {
    const env = { ...given, KREPIS_CACHE_DIR: cache, KREPIS_KERNEL_PATH: "", KREPIS_OFFLINE: "" };
    // deno run -A loader/cli.ts init
    const init = await runDeno(["run", "-A", join("loader", "cli.ts"), "init"], env, LIMIT_MS);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /^installed /);

    // A program of the user's, with the warm-load permissions the section lists.
    const program = join(cache, "main.ts");
    await Deno.writeTextFile(
      program,
      `import { load } from ${JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href)};
using kernel = await load();
console.log(JSON.stringify({ version: kernel.version, capabilities: kernel.buildInfo().capabilities }));
`,
    );
    const reads = [
      cache,
      given.KREPIS_TRUSTED_KEY,
      ...(Deno.build.os === "linux" ? ["/proc/self/maps"] : []),
    ];
    const run = await runDeno(
      [
        "run",
        "--no-prompt",
        `--allow-env=${LOADER_ENV.join(",")}`,
        `--allow-read=${reads.join(",")}`,
        "--allow-ffi",
        "--allow-sys=uid",
        program,
      ],
      env,
      LIMIT_MS,
    );
    assert.equal(run.code, 0, run.stderr);
    const loaded = JSON.parse(run.stdout);
    assert.equal(loaded.version, fixture.manifest.version);
    assert.ok(loaded.capabilities.includes("view"), run.stdout);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("docs/development.md's getting-started gives the commands and permissions the test above runs", async () => {
  const text = await Deno.readTextFile(join(REPO_ROOT, "docs", "development.md"));
  const start = text.indexOf("## Getting started from a clone");
  assert.notEqual(start, -1, "docs/development.md has the getting-started section");
  const section = text.slice(start, text.indexOf("\n## ", start + 1));
  for (
    const given of [
      "deno task serve /tmp/krepis-release",
      "deno run -A loader/cli.ts init",
      `--allow-env=${LOADER_ENV.join(",")}`,
      "--allow-ffi --allow-sys=uid",
      "--allow-read=<cache>,/tmp/krepis-release/key.pub,/proc/self/maps",
      'import { load } from "./loader/mod.ts";',
      "using kernel = await load();",
    ]
  ) assert.ok(section.includes(given), `the section gives ${given}`);
});
