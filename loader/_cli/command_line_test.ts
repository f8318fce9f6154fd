import assert from "node:assert/strict";
import {
  type CommandSpec,
  errorText,
  nearest,
  parseCommandLine,
  suggestion,
} from "./command_line.ts";

Deno.test("nearest: a typo, a swap and a prefix find their word; a far word finds none", () => {
  const words = ["init", "info", "verify", "cache", "undo", "version", "help"];
  assert.equal(nearest("int", words), "init");
  assert.equal(nearest("cahce", words), "cache");
  assert.equal(nearest("VERIFY", words), "verify");
  assert.equal(nearest("vers", words), "version");
  assert.equal(nearest("frobnicate", words), undefined);
  assert.equal(nearest("x", words), undefined);
  assert.equal(suggestion("frob", ["ls", "prune"]), "expected one of ls, prune");
  assert.equal(suggestion("lss", ["ls", "prune"]), "did you mean ls?");
});

Deno.test("parseCommandLine: values, --help first, and each usage error class is exit 2", () => {
  const spec = {
    name: "demo-cmd",
    summary: "a command",
    usage: ["[--mode <m>]"],
    options: {
      mode: { type: "string", help: "the mode", choices: ["fast", "slow"] as const },
      all: { type: "boolean", help: "everything" },
    },
  } satisfies CommandSpec;
  const ok = parseCommandLine(spec, ["--mode", "fast", "--all"]);
  assert.ok(ok.kind === "run");
  assert.deepEqual({ ...ok.values }, { mode: "fast", all: true });
  assert.deepEqual(ok.positionals, []);
  const help = parseCommandLine(spec, ["--bogus", "-h"]);
  assert.equal(help.kind, "exit");
  // An unknown option before --help is still an error: it is reported first.
  assert.equal(help.kind === "exit" && help.code, 2);
  const onlyHelp = parseCommandLine(spec, ["--mode", "fast", "--help"]);
  assert.ok(onlyHelp.kind === "exit" && onlyHelp.code === 0 && onlyHelp.stdout.includes("--mode"));
  for (
    const [args, message] of [
      [["--mdoe", "fast"], "unknown option --mdoe\nHint: did you mean --mode?"],
      [["--mode"], "--mode needs a value"],
      [["--mode", "slw"], 'takes fast or slow, not "slw"\nHint: did you mean --mode slow?'],
      [["--all=1"], "--all takes no value"],
      [["--mode", "fast", "--mode", "slow"], "--mode is given twice"],
      [["extra"], 'unexpected argument "extra"'],
      [["--mode="], "--mode is empty"],
    ] as const
  ) {
    const parsed = parseCommandLine(spec, [...args]);
    assert.equal(parsed.kind, "exit", args.join(" "));
    if (parsed.kind !== "exit") continue;
    assert.equal(parsed.code, 2, args.join(" "));
    assert.ok(parsed.stderr.startsWith("error: Cannot run demo-cmd: "), parsed.stderr);
    assert.equal(parsed.stderr, `error: ${parsed.error}\n`);
    assert.ok(parsed.stderr.includes(message), `${args.join(" ")}: ${parsed.stderr}`);
  }
});

Deno.test("errorText() writes every failure as `error: Cannot …` with the hint on the next line", () => {
  assert.equal(
    errorText("Cannot build x: no cargo\nHint: install Rust\n"),
    "error: Cannot build x: no cargo\nHint: install Rust\n",
  );
  assert.equal(errorText("error: Cannot build x: no cargo"), "error: Cannot build x: no cargo\n");
  assert.equal(
    errorText("x is not a function", "deno task build"),
    "error: Cannot run deno task build: x is not a function\n",
  );
  assert.equal(errorText(""), "error: Cannot run the command: it failed\n");
});
