/**
 * The command line of `deno task release`, run as a process: `--help` on
 * every form lists its options, environment and exit codes on stdout (exit
 * 0) and does nothing else; no command prints the usage on stderr (exit 2);
 * a mistyped command or option names the nearest valid one (exit 2).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";

async function release(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", join(REPO_ROOT, "release", "main.ts"), ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

const CUT = [
  "--execute",
  "--branch <name>",
  "--gate <cmd>",
  "--root <dir>",
  "--previous-lib <file>",
];
const KEYGEN = ["--loader-dir <dir>", "--force"];
const PUBLISH = [
  "--dist <dir>",
  "--to-dir <dir>",
  "--targets <a,b>",
  "--repository <owner/repo>",
  "--api-url <url>",
  "--loader-dir <dir>",
  "--jsr ",
  "--jsr-dry-run",
];
const ENV = ["KREPIS_SIGNING_KEY", "GITHUB_TOKEN", "GITHUB_REPOSITORY"];

function assertHelp(run: { code: number; stdout: string; stderr: string }, expected: string[]) {
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  for (const section of ["Usage:", "Options:", "Exit codes:"]) {
    assert.match(run.stdout, new RegExp(`^${section}`, "m"));
  }
  assert.match(run.stdout, /^ {2}-h, --help/m);
  assert.match(run.stdout, /^ {2}2 +usage error$/m);
  const options = run.stdout.slice(run.stdout.indexOf("Options:"));
  for (const word of expected) assert.ok(options.includes(word), `${word} in:\n${run.stdout}`);
}

Deno.test("deno task release --help and -h list every command, every option, the environment and the exit codes", async () => {
  for (const flag of ["--help", "-h"]) {
    const run = await release(flag);
    assertHelp(run, [...CUT, ...KEYGEN, ...PUBLISH, ...ENV]);
    assert.match(run.stdout, /^Usage: deno task release <patch\|minor\|major\|X\.Y\.Z> /m);
    assert.match(run.stdout, /^ {7}deno task release keygen /m);
    assert.match(run.stdout, /^ {7}deno task release publish --dist <dir> /m);
    assert.match(run.stdout, /^Environment:$/m);
  }
  // --help wins over a mistyped command too.
  const mistyped = await release("minr", "--help");
  assert.equal(mistyped.code, 0, mistyped.stderr);
  assert.ok(mistyped.stdout.startsWith("deno task release: "), mistyped.stdout);
});

Deno.test("deno task release minor|keygen|publish --help list that command's options and do nothing else", async () => {
  const keysDir = await Deno.makeTempDir();
  try {
    const cut = await release("minor", "--help", "--root", join(keysDir, "no-such-repo"));
    assertHelp(cut, CUT);
    assert.match(cut.stdout, /^Usage: deno task release minor \[--execute\]/m);
    assert.match(cut.stdout, /runs the gate only with --gate/);

    const keygen = await release("keygen", "--loader-dir", keysDir, "-h");
    assertHelp(keygen, KEYGEN);
    assert.deepEqual([...Deno.readDirSync(keysDir)], [], "no key was written");

    const publish = await release("publish", "--help");
    assertHelp(publish, [...PUBLISH, ...ENV]);
    assert.match(publish.stdout, /skipped with --to-dir unless --jsr/);
  } finally {
    await Deno.remove(keysDir, { recursive: true });
  }
});

Deno.test("deno task release with no command prints the three forms on stderr and exits 2", async () => {
  const run = await release();
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(run.stderr, /^error: Cannot run deno task release: no command given\n/);
  assert.match(run.stderr, /^Usage: deno task release <patch\|minor\|major\|X\.Y\.Z> /m);
  assert.match(run.stderr, /^ {7}deno task release keygen /m);
  assert.match(run.stderr, /^ {7}deno task release publish --dist <dir> /m);
  assert.match(run.stderr, /^Hint: .*`deno task release --help`/m);
  assert.doesNotMatch(run.stderr, /expected publish --dist/);
});

Deno.test("deno task release names the nearest command or option for a mistyped one, with exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["minr"],
      /^error: Cannot run deno task release: no command "minr"\nHint: did you mean minor\?/,
    ],
    [["publsh", "--dist", "dist"], /no command "publsh"\nHint: did you mean publish\?/],
    [["kegyen"], /no command "kegyen"\nHint: did you mean keygen\?/],
    [
      ["1.2"],
      /no command "1\.2"\nHint: expected patch, minor, major, a version X\.Y\.Z, keygen or publish/,
    ],
    [
      ["minor", "--exectue"],
      /^error: Cannot run deno task release minor: unknown option --exectue\nHint: did you mean --execute\?/,
    ],
    [
      ["keygen", "--forse"],
      /^error: Cannot run deno task release keygen: unknown option --forse\nHint: did you mean --force\?/,
    ],
    [
      ["publish", "--dist", "dist", "--to-dri", "mirror"],
      /^error: Cannot run deno task release publish: unknown option --to-dri\nHint: did you mean --to-dir\?/,
    ],
    [["minor", "now"], /^error: Cannot run deno task release minor: unexpected argument "now"/],
    [
      ["--hepl"],
      /^error: Cannot run deno task release: unknown option --hepl\nHint: did you mean --help\?/,
    ],
  ];
  for (const [args, expected] of cases) {
    const run = await release(...args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, expected);
  }
});
