/**
 * Every `deno task` answers `--help` (usage, options, environment, exit
 * codes on stdout, exit 0) before doing any work, and refuses a mistyped
 * option with a suggestion (exit 2), written as every failure is:
 * `error: Cannot …`, the hint on the next line. The tasks are read from deno.json, so
 * a new task without a help fails here.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { runDeno } from "./_cli.ts";

/** Tasks whose command lines are tested with their own code (release/main.ts, loader/cli.ts). */
const TESTED_ELSEWHERE = ["release", "krepis"];

/**
 * The longest a `--help` may take: far more than printing needs, far less
 * than a kernel build, so a task that starts working before it parses its
 * arguments is killed and fails on its exit code instead of hanging.
 */
const LIMIT_MS = 60_000;

const config = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))) as {
  tasks: Record<string, string | { command: string }>;
};
const tasks = Object.keys(config.tasks).filter((name) => !TESTED_ELSEWHERE.includes(name));

Deno.test("the task list comes from deno.json and holds every task this test covers", () => {
  for (const name of ["test", "build", "serve", "versions"]) assert.ok(tasks.includes(name), name);
  for (const name of TESTED_ELSEWHERE) assert.ok(name in config.tasks, `${name} is still a task`);
});

for (const name of tasks) {
  Deno.test(`deno task ${name} --help prints its help and exits 0; --hepl exits 2 suggesting --help`, async () => {
    const [help, typo] = await Promise.all([
      runDeno(["task", name, "--help"], {}, LIMIT_MS),
      runDeno(["task", "--quiet", name, "--hepl"], {}, LIMIT_MS),
    ]);
    assert.equal(help.code, 0, help.stderr);
    assert.ok(
      help.stdout.startsWith(`deno task ${name}: `),
      `stdout starts with "deno task ${name}: ":\n${help.stdout}`,
    );
    assert.match(help.stdout, new RegExp(`^Usage: deno task ${escape(name)}`, "m"));
    assert.match(help.stdout, /^Options:\n(.*\n)*? {2}-h, --help {2,}show this help$/m);
    assert.match(help.stdout, /^Exit codes:\n {2}\d+ {2}/m);
    // Every option of the Options table (its left column) is in a usage line.
    const usage = help.stdout.split("\n").filter((l) => /^(Usage:| {6}) deno task /.test(l)).join(
      "\n",
    );
    const table = help.stdout.split("\nOptions:\n")[1].split("\n\n")[0];
    for (const [, option] of table.matchAll(/^ {2}(?:-\w, )?--([\w-]+)/gm)) {
      if (option === "help") continue;
      assert.ok(
        new RegExp(`--${option}(?![\\w-])`).test(usage),
        `--${option} is not in a usage line:\n${usage}`,
      );
    }

    assert.equal(typo.code, 2, typo.stderr);
    assert.equal(typo.stdout, "");
    // Deno's own `Download …` lines (a cold cache) are not the task's output.
    const stderr = typo.stderr.replace(/^Download .*\n/gm, "");
    // The one shape of every failure: `error: Cannot …`, the hint on the next line, nothing else.
    assert.equal(
      stderr,
      `error: Cannot run deno task ${name}: unknown option --hepl\nHint: did you mean --help? (\`deno task ${name} --help\` lists the options)\n`,
    );
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("an unknown --target is exit 2 naming the nearest triple, before any build starts", async () => {
  const cases: [string[], RegExp][] = [
    [["build", "--target", "x86_64-unknown-linux-gun"], /did you mean x86_64-unknown-linux-gnu\?/],
    [["demo", "--target", "aarch64-apple-darwn"], /did you mean aarch64-apple-darwin\?/],
    [
      ["check-artifact", "deno.json", "--target", "sparc"],
      /the table has x86_64-unknown-linux-gnu/,
    ],
  ];
  for (const [args, hint] of cases) {
    const run = await runDeno(["task", ...args], {}, LIMIT_MS);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(`^error: Cannot find target ${escape(args.at(-1)!)} in `, "m"),
    );
    assert.match(run.stderr, hint);
    assert.doesNotMatch(run.stdout + run.stderr, /Compiling|build the kernel/);
  }
});

Deno.test("a relative path is read from the folder deno task was started in, not the repository's", async () => {
  // mod.ts exists in loader/ only: from there it is found (and is no library).
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["task", "check-artifact", "mod.ts", "--target", "x86_64-unknown-linux-gnu"],
    cwd: join(REPO_ROOT, "loader"),
    // deno task keeps an inherited INIT_CWD (the gate's own, under deno task test): none here.
    env: Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([k]) => k !== "INIT_CWD")),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(run.stderr);
  assert.equal(run.code, 1, stderr);
  assert.match(stderr, /it is not an ELF, Mach-O or PE file/);
  assert.doesNotMatch(stderr, /no such file/);
});

Deno.test("deno task versions --tag takes a release tag vX.Y.Z; anything else is exit 2", async () => {
  for (const tag of ["0.1.0", "1.2", "release-1"]) {
    const run = await runDeno(["task", "--quiet", "versions", "--tag", tag], {}, LIMIT_MS);
    assert.equal(run.code, 2, `${tag}: ${run.stderr}`);
    assert.match(run.stderr, /--tag takes a release tag vX\.Y\.Z, not /);
  }
  const version =
    JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "loader", "deno.json"))).version;
  const ok = await runDeno(["task", "--quiet", "versions", "--tag", `v${version}`], {}, LIMIT_MS);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`^${escape(version)} +the tag$`, "m"));
});
