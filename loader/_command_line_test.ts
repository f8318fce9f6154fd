import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  type CommandSpec,
  errorText,
  invocationPath,
  nearest,
  parseCommandLine,
  suggestion,
} from "./_command_line.ts";

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

Deno.test("invocationPath: INIT_CWD counts only at or below the working folder", () => {
  const before = Deno.env.get("INIT_CWD");
  const cwd = Deno.cwd();
  try {
    Deno.env.set("INIT_CWD", join(cwd, "sub"));
    assert.equal(invocationPath("dist"), join(cwd, "sub", "dist"));
    Deno.env.set("INIT_CWD", cwd);
    assert.equal(invocationPath("dist"), join(cwd, "dist"));
    // Inherited from a deno task elsewhere: stale, the working folder wins.
    Deno.env.set("INIT_CWD", resolve(cwd, "..", "elsewhere"));
    assert.equal(invocationPath("dist"), join(cwd, "dist"));
    Deno.env.delete("INIT_CWD");
    assert.equal(invocationPath("dist"), join(cwd, "dist"));
    assert.equal(invocationPath(resolve("/abs/x")), resolve("/abs/x"));
  } finally {
    if (before === undefined) Deno.env.delete("INIT_CWD");
    else Deno.env.set("INIT_CWD", before);
  }
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

Deno.test("a task's uncaught error is written as `error: Cannot …` and exits 1, not as Deno's Uncaught report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-uncaught-" });
  try {
    const script = join(dir, "task.ts");
    const module = new URL("./_command_line.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { commandLine } from ${JSON.stringify(module)};
commandLine({ name: "deno task t", summary: "s", usage: [""], options: {} }, []);
await Promise.resolve();
if (Deno.args[0] === "worded") throw new Error("Cannot do it: it broke\\nHint: fix it");
null!.boom;
`,
    );
    const run = async (arg: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--no-lock", script, arg],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const worded = await run("worded");
    assert.equal(worded.code, 1);
    assert.equal(worded.stderr, "error: Cannot do it: it broke\nHint: fix it\n");
    const defect = await run("defect");
    assert.equal(defect.code, 1);
    assert.match(
      defect.stderr,
      /^error: Cannot run deno task t: Cannot read properties of null[^\n]*\n\s+at /,
    );
    assert.doesNotMatch(defect.stderr, /Uncaught/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
