import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { invocationPath } from "./task.ts";

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

Deno.test("a task's uncaught error is written as `error: Cannot …` and exits 1, not as Deno's Uncaught report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-uncaught-" });
  try {
    const script = join(dir, "task.ts");
    const module = new URL("./task.ts", import.meta.url).href;
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
