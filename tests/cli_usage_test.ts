/**
 * The `krepis` command line as a person types it (a child process): help
 * for every command, the version, typos answered with the nearest valid
 * word and exit 2, mirrors without a scheme, one `--json` shape for every
 * command, read-only commands that write nothing, and a trusted key given
 * as a `.pub` file.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { EXIT_CODES } from "../loader/cli.ts";
import { COMMANDS, KREPIS } from "../loader/_cli/commands.ts";
import { runCli } from "./_cli.ts";
import { hostedRelease } from "./_hosted_release.ts";
import { snapshotTree } from "./_fs.ts";
import { generateSigningKey } from "../release/minisign_sign.ts";
import { exportSigningKey } from "../release/signing_key.ts";

/** A fresh, empty temporary folder (removed when disposed). */
async function emptyDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "krepis-usage-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

Deno.test("every krepis command answers --help, -h and `krepis help <command>` with its usage, options, environment and exit codes", async () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const run = await runCli(args, {});
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stdout, /^krepis: /);
    for (const word of Object.keys(COMMANDS)) assert.match(run.stdout, new RegExp(`\n  ${word} `));
    assert.match(run.stdout, /\nExit codes:\n/);
    for (const code of Object.values(EXIT_CODES)) {
      assert.match(run.stdout, new RegExp(`\n  ${code} +\\S`), `exit code ${code} is listed`);
    }
    assert.equal(run.stderr, "");
  }
  for (const [word, spec] of Object.entries(COMMANDS)) {
    for (const args of [[word, "--help"], [word, "-h"], ["help", word]]) {
      const run = await runCli(args, {});
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      assert.ok(run.stdout.startsWith(`krepis ${word}: ${spec.summary}\n`), run.stdout);
      assert.match(run.stdout, new RegExp(`\nUsage: krepis ${word} `));
      for (const option of [...Object.keys(spec.options), "help"]) {
        assert.match(run.stdout, new RegExp(`\n  (-\\w, )?--${option}\\b`), `${word}: --${option}`);
      }
      assert.match(run.stdout, /\nExit codes:\n {2}0 +success\n/);
      if ("env" in spec) {
        for (const name of Object.keys(spec.env)) assert.ok(run.stdout.includes(`\n  ${name} `));
      }
    }
  }
  // With no command at all: the help, where errors go, and exit 2.
  const bare = await runCli([], {});
  assert.equal(bare.code, EXIT_CODES.usage);
  assert.equal(bare.stdout, "");
  assert.match(bare.stderr, /^krepis: /);
});

Deno.test("krepis --version, -V and `krepis version` print the loader version, the kernel ABI it needs and Deno's version", async () => {
  const expected =
    `krepis ${VERSION}\nkernel ABI ${LOADER_ABI.major}.${LOADER_ABI.minor} (fingerprint ${LOADER_ABI.fingerprint})\ndeno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})\n`;
  for (const args of [["--version"], ["-V"], ["version"]]) {
    const run = await runCli(args, {});
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, expected);
  }
  for (const args of [["version", "--json"], ["--version", "--json"]]) {
    const report = JSON.parse((await runCli(args, {})).stdout);
    assert.deepEqual(report, {
      ok: true,
      code: 0,
      command: args[0] === "version" ? "version" : "krepis",
      version: VERSION,
      abi: {
        major: LOADER_ABI.major,
        minor: LOADER_ABI.minor,
        fingerprint: LOADER_ABI.fingerprint,
      },
      deno: Deno.version,
    });
  }
});

Deno.test("typos in commands, subcommands, options and values are exit 2 with the nearest valid word", async () => {
  await using cache = await emptyDir();
  const env = { KREPIS_CACHE_DIR: cache.path };
  // [arguments, what stderr must say]
  const cases: [string[], RegExp][] = [
    [["int"], /no such command\nHint: did you mean init\?/],
    [["cahce", "ls"], /no such command\nHint: did you mean cache\?/],
    [["verfy"], /no such command\nHint: did you mean verify\?/],
    [["frobnicate"], /no such command\nHint: expected one of init, info, verify, cache, undo/],
    [["init", "--ofline"], /unknown option --ofline\nHint: did you mean --offline\?/],
    [["init", "--tagret", "x"], /unknown option --tagret\nHint: did you mean --target\?/],
    [["info", "--jsno"], /unknown option --jsno\nHint: did you mean --json\?/],
    [
      ["cache", "ls", "--cache-dr", "x"],
      /unknown option --cache-dr\nHint: did you mean --cache-dir\?/,
    ],
    [["init", "-x"], /unknown option -x\n/],
    [["--verison"], /unknown option --verison\nHint: did you mean --version\?/],
    [
      ["--cache-dir", "x"],
      /^error: Cannot run krepis: no command given \(--cache-dir goes with a command\)\n/,
    ],
    [["init", "--verify", "quick"], /--verify takes stamp or full, not "quick"/],
    [
      ["init", "--verify", "ful"],
      /--verify takes stamp or full, not "ful"\nHint: did you mean --verify full\?/,
    ],
    [["cache", "lss"], /no command "lss"\nHint: did you mean ls\?/],
    [["cache", "prnue"], /no command "prnue"\nHint: did you mean prune\?/],
    [["cache", "ls", "extra"], /unexpected argument "extra"/],
    [["info", "extra", "more"], /unexpected arguments "extra" "more"/],
    [["cache"], /^error: Cannot run krepis cache: it needs a subcommand: ls, prune or clean\n/],
    [["init", "--target"], /--target needs a value <triple>/],
    [["init", "--all=yes"], /--all takes no value/],
    [["init", "--target", "a", "--target", "b"], /--target is given twice/],
    [["info", "--all"], /unknown option --all/],
    [["init", "--all", "--target", "x"], /--target and --all exclude each other/],
    [["undo", "--steps", "two"], /--steps takes a positive whole number, not "two"/],
    [
      ["help", "inti"],
      /Cannot show the help of "inti": no such command\nHint: did you mean init\?/,
    ],
    // Names an object has by inheritance are no commands or options.
    [["constructor"], /Cannot run krepis constructor: no such command\n/],
    [["__proto__"], /Cannot run krepis __proto__: no such command\n/],
    [["help", "toString"], /Cannot show the help of "toString": no such command\n/],
    [["init", "--constructor"], /unknown option --constructor\n/],
    [["--hasOwnProperty"], /unknown option --hasOwnProperty\n/],
  ];
  for (const [args, expected] of cases) {
    const run = await runCli(args, env);
    const what = `krepis ${args.join(" ")}`;
    assert.equal(run.code, EXIT_CODES.usage, `${what}: ${run.stderr}`);
    assert.match(run.stderr, expected, what);
    assert.match(run.stderr, /^error: Cannot [^\n]+\nHint: [^\n]+\n$/, what);
    assert.equal(run.stdout, "", what);
    // With --json the same failure is also one JSON document (help has no --json).
    if (args[0] === "help") continue;
    const json = await runCli([...args, "--json"], env);
    assert.equal(json.code, EXIT_CODES.usage, `${what} --json`);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.code, EXIT_CODES.usage);
    // The document's error is the message, the label only on stderr.
    assert.match(`error: ${report.error}\n`, expected, `${what} --json`);
    assert.equal(json.stderr, `error: ${report.error}\n`, `${what} --json`);
  }
  // Nothing above made anything in the cache.
  assert.deepEqual(await snapshotTree(cache.path), {});
});

Deno.test("a mirror that is not an http(s) URL is exit 2 with the URL it probably meant", async () => {
  await using cache = await emptyDir();
  const cases: [string, RegExp][] = [
    ["127.0.0.1:18765", /Hint: write the scheme, e\.g\. http:\/\/127\.0\.0\.1:18765\n/],
    [
      "localhost:8000/releases",
      /Hint: write the scheme, e\.g\. http:\/\/localhost:8000\/releases\n/,
    ],
    ["mirror.example/krepis", /Hint: write the scheme, e\.g\. https:\/\/mirror\.example\/krepis\n/],
    ["ftp://mirror.example/krepis", /Hint: use an https:\/\/ URL \(http:\/\/ on loopback\)\n/],
    ["not a url", /Hint: write the scheme/],
    ["127.evil.example:80", /Hint: write the scheme, e\.g\. https:\/\/127\.evil\.example:80\n/],
    ["localhost.example.com", /Hint: write the scheme, e\.g\. https:\/\/localhost\.example\.com\n/],
    ["http://", /Hint: use an https:\/\/ URL/],
  ];
  for (const [mirror, hint] of cases) {
    for (
      const [args, env] of [
        [["init", "--mirror", mirror], { KREPIS_CACHE_DIR: cache.path }],
        [["init"], { KREPIS_CACHE_DIR: cache.path, KREPIS_MIRROR: mirror }],
      ] as const
    ) {
      const run = await runCli([...args], env);
      assert.equal(run.code, EXIT_CODES.usage, `${mirror}: ${run.stderr}`);
      assert.ok(
        run.stderr.startsWith(
          `error: Cannot use the mirror "${mirror}": it is not an http:// or https:// URL\n`,
        ),
        run.stderr,
      );
      assert.match(run.stderr, hint);
    }
  }
  assert.deepEqual(await snapshotTree(cache.path), {});
});

Deno.test("--json: every command prints one indented document with ok, code and command; failures add error", async () => {
  await using cache = await emptyDir();
  await using project = await emptyDir();
  const env = { KREPIS_CACHE_DIR: cache.path, KREPIS_MIRROR: "http://127.0.0.1:9" };
  // [arguments, exit code]
  const cases: [string[], number][] = [
    [["version"], EXIT_CODES.ok],
    [["info"], EXIT_CODES.ok],
    [["cache", "ls"], EXIT_CODES.ok],
    [["verify"], EXIT_CODES.cache], // an empty folder is not a Krepis cache
    [["cache", "prune"], EXIT_CODES.cache], // before init makes the folder a Krepis cache
    [["init", "--offline"], EXIT_CODES.offline],
    [["undo", "--project", project.path, "--offline"], EXIT_CODES.journal],
    [["init", "--target", "sparc-sun-solaris"], EXIT_CODES.unsupported],
  ];
  for (const [args, code] of cases) {
    const run = await runCli([...args, "--json"], env);
    const what = `krepis ${args.join(" ")} --json`;
    assert.equal(run.code, code, `${what}: ${run.stderr}`);
    assert.ok(run.stdout.startsWith('{\n  "ok": '), `${what}: indented, ok first`);
    const report = JSON.parse(run.stdout);
    assert.equal(report.ok, code === 0, what);
    assert.equal(report.code, code, what);
    assert.equal(report.command, args[0] === "cache" ? `cache ${args[1]}` : args[0], what);
    if (code === 0) assert.equal(report.error, undefined, what);
    else assert.match(report.error, /^Cannot [^\n]+\nHint: /, what);
  }
});

Deno.test("--json with --help, help and no command: still one document with ok and code", async () => {
  for (
    const args of [["init", "--help", "--json"], ["--json", "--help"], ["help", "cache", "--json"]]
  ) {
    const run = await runCli(args, {});
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.deepEqual([report.ok, report.code], [true, 0]);
    assert.match(report.help, /\nUsage: krepis /);
  }
  const bare = await runCli(["--json"], {});
  assert.equal(bare.code, EXIT_CODES.usage);
  const report = JSON.parse(bare.stdout);
  assert.deepEqual([report.ok, report.code, report.command], [false, 2, "krepis"]);
  assert.match(report.error, /^Cannot run krepis: no command given\nHint: /);
});

Deno.test("read-only commands write nothing: no cache folder appears, an empty one stays empty", async () => {
  await using parent = await emptyDir();
  const missing = join(parent.path, "cache");
  const readOnly = [
    ["info"],
    ["info", "--json"],
    ["cache", "ls"],
    ["cache", "ls", "--json"],
    ["version"],
    ["help"],
    ["init", "--help"],
  ];
  for (const args of readOnly) {
    for (const env of [{ KREPIS_CACHE_DIR: missing }, {}] as Record<string, string>[]) {
      const takesDir = ["info", "cache", "verify"].includes(args[0]) && !args.includes("--help");
      const flags = "KREPIS_CACHE_DIR" in env || !takesDir ? [] : ["--cache-dir", missing];
      const run = await runCli([...args, ...flags], env);
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      assert.deepEqual(await snapshotTree(parent.path), {}, `krepis ${args.join(" ")}`);
    }
  }
  // verify refuses a folder Krepis did not make, and makes none either.
  const verify = await runCli(["verify"], { KREPIS_CACHE_DIR: missing });
  assert.equal(verify.code, EXIT_CODES.cache, verify.stderr);
  assert.deepEqual(await snapshotTree(parent.path), {});
  await Deno.mkdir(missing);
  for (const args of [...readOnly, ["verify"]]) {
    const run = await runCli(args, { KREPIS_CACHE_DIR: missing });
    assert.equal(run.code, args[0] === "verify" ? EXIT_CODES.cache : 0, run.stderr);
    assert.deepEqual(await snapshotTree(missing), {}, `krepis ${args.join(" ")}`);
  }
});

Deno.test("info reads a cached kernel without writing; --trusted-key and KREPIS_TRUSTED_KEY take a .pub file", async () => {
  await using t = await hostedRelease();
  const { KREPIS_TRUSTED_KEY: _, ...untrusted } = t.env;
  // The key as the path of the .pub file minisign writes, by option and by variable.
  const byOption = await runCli(
    ["init", "--json", "--trusted-key", t.fixture.publicKeyPath],
    untrusted,
  );
  assert.equal(byOption.code, EXIT_CODES.ok, byOption.stderr);
  assert.equal(JSON.parse(byOption.stdout).installed[0].sha256, t.fixture.entry.sha256);
  const byVariable = await runCli(["init"], {
    ...untrusted,
    KREPIS_TRUSTED_KEY: t.fixture.publicKeyPath,
  });
  assert.equal(byVariable.code, EXIT_CODES.ok, byVariable.stderr);
  // A path that is not there: an integrity failure that says what a key looks like.
  const wrong = await runCli(["init", "--trusted-key", join(t.cacheDir, "nope.pub")], untrusted);
  assert.equal(wrong.code, EXIT_CODES.integrity, wrong.stderr);
  assert.match(wrong.stderr, /neither a minisign public key nor a readable \.pub file/);
  assert.match(wrong.stderr, /\nHint: [^\n]*starting with RW/);
  // A signing secret given as the public key: named as such, and never echoed.
  const secret = await exportSigningKey(await generateSigningKey());
  for (const env of [{ ...untrusted, KREPIS_TRUSTED_KEY: secret }, untrusted]) {
    const args = "KREPIS_TRUSTED_KEY" in env ? ["init"] : ["init", "--trusted-key", secret];
    const run = await runCli(args, env);
    assert.equal(run.code, EXIT_CODES.integrity, run.stderr);
    assert.match(run.stderr, /it is a Krepis signing secret/);
    assert.ok(!run.stderr.includes(secret.slice(8)) && !run.stdout.includes(secret.slice(8)));
  }
  // Nor is any other value that is not a key echoed (only a .pub file's name is).
  const pasted = `RW${"Q".repeat(100)}`;
  const garbled = await runCli(["init", "--trusted-key", pasted], untrusted);
  assert.equal(garbled.code, EXIT_CODES.integrity, garbled.stderr);
  assert.match(garbled.stderr, /\(102 characters, starting "RWQQ"\)/);
  assert.ok(!garbled.stderr.includes(pasted.slice(0, 10)));
  // info opens the cached kernel, and changes no file of the cache.
  const before = await snapshotTree(t.cacheDir);
  const info = await runCli(["info", "--json"], t.env);
  assert.equal(info.code, EXIT_CODES.ok, info.stderr);
  const report = JSON.parse(info.stdout);
  assert.deepEqual([report.ok, report.code, report.command], [true, 0, "info"]);
  assert.equal(report.target, resolveTarget().triple);
  assert.deepEqual(report.kernel.abi.major, LOADER_ABI.major);
  assert.deepEqual(await snapshotTree(t.cacheDir), before);
});

Deno.test("KREPIS_OFFLINE takes 1, true, yes (any case) and 0, false, no; any other value is exit 2", async () => {
  await using cache = await emptyDir();
  // Port 9 (discard) is refused by policy at once: a network attempt is exit 7 without waiting.
  const env = (value: string) => ({
    KREPIS_CACHE_DIR: cache.path,
    KREPIS_MIRROR: "http://127.0.0.1:9",
    KREPIS_OFFLINE: value,
  });
  for (const value of ["maybe", "on", "2"]) {
    const run = await runCli(["init"], env(value));
    assert.equal(run.code, EXIT_CODES.usage, `${value}: ${run.stderr}`);
    assert.equal(
      run.stderr,
      `error: Cannot read KREPIS_OFFLINE: "${value}" is neither yes nor no\nHint: set KREPIS_OFFLINE to 1, true or yes (or 0, false or no), or unset it\n`,
    );
  }
  assert.deepEqual(await snapshotTree(cache.path), {}, "a refused value writes nothing");
  for (const value of ["1", "true", "yes", "TRUE", "Yes"]) {
    const run = await runCli(["init"], env(value));
    assert.equal(run.code, EXIT_CODES.offline, `${value}: ${run.stderr}`);
    assert.match(run.stderr, /^error: Cannot install the kernel .* offline: /, value);
  }
  for (const value of ["0", "false", "no"]) {
    const run = await runCli(["init"], env(value));
    assert.equal(run.code, EXIT_CODES.network, `${value}: ${run.stderr}`);
  }
});

Deno.test("krepis init --target with a mistyped triple names the nearest one, as the tasks do, and writes nothing", async () => {
  await using cache = await emptyDir();
  const run = await runCli(["init", "--target", "x86_64-unknown-linux-gun"], {
    KREPIS_CACHE_DIR: cache.path,
  });
  assert.equal(run.code, EXIT_CODES.unsupported, run.stderr);
  assert.match(
    run.stderr,
    /^error: Cannot find a kernel for target x86_64-unknown-linux-gun: it is not shipped\nHint: did you mean x86_64-unknown-linux-gnu\? supported targets are /,
  );
  const far = await runCli(["init", "--target", "sparc"], { KREPIS_CACHE_DIR: cache.path });
  assert.equal(far.code, EXIT_CODES.unsupported, far.stderr);
  assert.match(far.stderr, /\nHint: supported targets are x86_64-unknown-linux-gnu, /);
  assert.deepEqual(await snapshotTree(cache.path), {});
});

Deno.test("every option a krepis command lists is in one of its usage lines", () => {
  for (const spec of [KREPIS, ...Object.values(COMMANDS)]) {
    const usage = spec.usage.join("\n");
    for (const option of Object.keys(spec.options)) {
      assert.ok(
        new RegExp(`--${option}(?![\\w-])`).test(usage),
        `${spec.name}: --${option} is not in its usage:\n${usage}`,
      );
    }
  }
});
