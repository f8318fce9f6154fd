import assert from "node:assert/strict";
import { join } from "node:path";
import { JournalError, load } from "../mod.ts";
import { kernelPath } from "../../tests/_kernel.ts";
import { skipIf, when, WINDOWS } from "../../tests/_tools.ts";
import { runScript } from "../../tests/_script.ts";

const text = new TextEncoder();
const read = (path: string) => Deno.readTextFile(path).catch(() => null);

/**
 * A temp project, removed when it is disposed. Declared with `await using`
 * before the kernel and the journal, it is disposed after them: Windows
 * refuses to remove a folder while the journal holds files in it open
 * (OS error 145, "directory not empty").
 */
async function project(): Promise<{ root: string } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "krepis-journal-" });
  await Deno.mkdir(join(root, "src"));
  await Deno.writeTextFile(join(root, "src", "a.ts"), "one\n");
  await Deno.writeTextFile(join(root, "README.md"), "readme\n");
  return { root, [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }) };
}

function rejects(reason: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof JournalError, String(error));
    assert.equal(error.code, "JOURNAL");
    assert.equal(error.reason, reason);
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("track, commit, history and undo restore real files, through load()", async () => {
  await using temp = await project();
  const root = temp.root;
  using kernel = await load({ path: await kernelPath() });
  assert.ok(kernel.buildInfo().capabilities.includes("journal"));
  using journal = kernel.journal.open(root);
  assert.equal(journal.root, await Deno.realPath(root));
  assert.deepEqual(journal.recovered, []);
  assert.equal(
    await read(join(root, ".krepis", ".gitignore")),
    "# Krepis's undo journal: local to this checkout.\n*\n",
  );
  {
    using tx = journal.begin("first");
    assert.deepEqual(tx.track("src/a.ts"), { path: "src/a.ts", existed: true, size: 4 });
    assert.deepEqual(tx.track(join(root, "new", "b.ts")), {
      path: "new/b.ts",
      existed: false,
      size: 0,
    });
    assert.deepEqual(
      tx.track("src/../src/a.ts"),
      { path: "src/a.ts", existed: true, size: 4 },
      "tracked once",
    );
    await Deno.writeTextFile(join(root, "src", "a.ts"), "two\n");
    await Deno.mkdir(join(root, "new"));
    await Deno.writeTextFile(join(root, "new", "b.ts"), "created\n");
    const committed = tx.commit();
    assert.equal(committed.message, "first");
    assert.equal(tx.state, "committed");
  }
  {
    using tx = journal.begin("second");
    tx.track("src/a.ts");
    tx.track("README.md");
    await Deno.writeTextFile(join(root, "src", "a.ts"), "three\n");
    await Deno.remove(join(root, "README.md"));
    tx.commit();
  }
  const history = journal.history();
  assert.deepEqual(history.map((t) => t.message), ["second", "first"]);
  assert.ok(history[0].time.getTime() >= history[1].time.getTime());
  assert.deepEqual(history[1].files.map((f) => f.path), ["src/a.ts", "new/b.ts"]);

  const once = journal.undo();
  assert.deepEqual(once.transactions.map((t) => t.message), ["second"]);
  assert.deepEqual(once.restored.sort(), ["README.md", "src/a.ts"]);
  assert.equal(await read(join(root, "src", "a.ts")), "two\n");
  assert.equal(await read(join(root, "README.md")), "readme\n");

  const again = journal.undo({ steps: 1 });
  assert.deepEqual(again.removed, ["new/b.ts"]);
  assert.equal(await read(join(root, "src", "a.ts")), "one\n");
  assert.equal(await read(join(root, "new", "b.ts")), null);
  assert.deepEqual(journal.history(), []);
  assert.throws(
    () => journal.undo(),
    rejects("FAILED", /^Cannot undo: the journal holds no committed transaction/),
  );
});

Deno.test("undo restores exact bytes and permissions, and several steps at once", async () => {
  await using temp = await project();
  const root = temp.root;
  const script = join(root, "run.sh");
  const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7919) % 251);
  await Deno.writeFile(script, bytes);
  if (!WINDOWS) await Deno.chmod(script, 0o751);
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  for (const round of [1, 2, 3]) {
    using tx = journal.begin(`round ${round}`);
    tx.track(script);
    await Deno.writeFile(script, text.encode(`round ${round}`));
    if (!WINDOWS) await Deno.chmod(script, 0o600);
    tx.commit();
  }
  assert.throws(
    () => journal.undo({ steps: 4 }),
    rejects("FAILED", /^Cannot undo 4 transactions: the journal holds 3; nothing was changed/),
  );
  assert.equal(await read(script), "round 3");
  assert.throws(() => journal.undo({ steps: 0 }), RangeError);
  // A typo is named, never ignored (it would undo one step); nothing changes.
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => journal.undo({ step: 3 } as any),
    (error: unknown) =>
      error instanceof TypeError &&
      /^Cannot undo: unknown option "step"\nHint: did you mean steps\?/.test(error.message),
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => journal.undo({ steps: "3" } as any), TypeError);
  assert.equal(await read(script), "round 3");
  const undone = journal.undo({ steps: 3 });
  assert.deepEqual(undone.transactions.map((t) => t.message), ["round 3", "round 2", "round 1"]);
  assert.deepEqual(await Deno.readFile(script), bytes);
  if (!WINDOWS) assert.equal((await Deno.stat(script)).mode! & 0o7777, 0o751);
});

Deno.test("rollback and an uncommitted `using` transaction put files back", async () => {
  await using temp = await project();
  const root = temp.root;
  const file = join(root, "src", "a.ts");
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  const tx = journal.begin("explicit");
  tx.track("src/a.ts");
  tx.track("created.txt");
  await Deno.writeTextFile(file, "changed\n");
  await Deno.writeTextFile(join(root, "created.txt"), "x");
  const result = tx.rollback();
  assert.deepEqual([result.restored, result.removed], [["src/a.ts"], ["created.txt"]]);
  assert.equal(await read(file), "one\n");
  assert.equal(await read(join(root, "created.txt")), null);
  assert.throws(() => tx.commit(), rejects("FAILED", /is rolled back/));
  try {
    using failing = journal.begin("throws");
    failing.track("src/a.ts");
    await Deno.writeTextFile(file, "half-written\n");
    throw new Error("the tool failed");
  } catch (error) {
    assert.equal((error as Error).message, "the tool failed");
  }
  assert.equal(await read(file), "one\n");
  assert.deepEqual(journal.history(), []);
});

Deno.test("track() refuses paths outside the root, through .. or a symbolic link, and the journal itself", async () => {
  await using temp = await project();
  const root = temp.root;
  const outside = await Deno.makeTempDir({ prefix: "krepis-outside-" });
  await Deno.writeTextFile(join(outside, "secret"), "s");
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  using tx = journal.begin();
  const refused = [
    "../x",
    "src/../../x",
    join(outside, "secret"),
    ".krepis/journal/db",
    ".",
    "",
    "src",
  ];
  if (!WINDOWS) {
    await Deno.symlink(outside, join(root, "escape"));
    await Deno.symlink(join(outside, "secret"), join(root, "link-to-secret"));
    // `..` after a link goes up from where the link points: out of the root.
    await Deno.mkdir(join(outside, "deep"));
    await Deno.symlink(join(outside, "deep"), join(root, "lnk"));
    refused.push("escape/secret", "escape/new-file", "link-to-secret", "lnk/../secret");
  }
  for (const path of refused) {
    assert.throws(() => tx.track(path), rejects("FAILED", /^Cannot track /), path);
  }
  assert.equal(await read(join(outside, "secret")), "s");
  await Deno.remove(outside, { recursive: true });
});

Deno.test("a journal open in one process is BUSY for another, and free once closed", async () => {
  await using temp = await project();
  const root = temp.root;
  const library = await kernelPath();
  using kernel = await load({ path: library });
  const journal = kernel.journal.open(root);
  assert.throws(
    () => kernel.journal.open(root),
    rejects("BUSY", /this process has it open already/),
  );
  const child = async () => {
    const script = `
      import { load, JournalError } from ${
      JSON.stringify(new URL("../mod.ts", import.meta.url).href)
    };
      using kernel = await load({ path: ${JSON.stringify(library)} });
      try { kernel.journal.open(${JSON.stringify(root)}).close(); console.log("opened"); }
      catch (e) { console.log(e instanceof JournalError ? e.reason : String(e)); }
    `;
    const output = await runScript(["-A"], script);
    return new TextDecoder().decode(output.stdout).trim() ||
      new TextDecoder().decode(output.stderr);
  };
  assert.equal(await child(), "BUSY");
  journal.close();
  assert.equal(await child(), "opened");
});

Deno.test("snapshot() lends the tracked bytes as a view; closed objects refuse", async () => {
  await using temp = await project();
  const root = temp.root;
  using kernel = await load({ path: await kernelPath() });
  const journal = kernel.journal.open(root);
  const tx = journal.begin();
  tx.track("src/a.ts");
  await Deno.writeTextFile(join(root, "src", "a.ts"), "edited\n");
  {
    using view = journal.snapshot(tx.id, "src/a.ts");
    assert.equal(new TextDecoder().decode(view.bytes), "one\n");
  }
  assert.throws(() => journal.snapshot(tx.id, "README.md"), rejects("FAILED", /did not track it/));
  tx.commit();
  journal.close();
  assert.throws(() => journal.begin(), rejects("CLOSED", /the journal was closed/));
  assert.throws(() => journal.history(), rejects("CLOSED", /the journal was closed/));
});

Deno.test("closing the kernel closes its journals and rolls back what is open", async () => {
  await using temp = await project();
  const root = temp.root;
  const kernel = await load({ path: await kernelPath() });
  const journal = kernel.journal.open(root);
  const tx = journal.begin();
  tx.track("src/a.ts");
  await Deno.writeTextFile(join(root, "src", "a.ts"), "unfinished\n");
  kernel.close();
  assert.equal(journal.closed, true);
  assert.equal(await read(join(root, "src", "a.ts")), "one\n");
  using again = await load({ path: await kernelPath() });
  using reopened = again.journal.open(root);
  assert.deepEqual(reopened.recovered, []);
});

Deno.test({
  ...skipIf(
    "undo refuses a folder where a file was, and a .krepis that is a link, changing nothing",
    when(WINDOWS, "symbolic links need a privilege on Windows"),
  ),
  fn: async () => {
    await using temp = await project();
    const root = temp.root;
    using kernel = await load({ path: await kernelPath() });
    const journal = kernel.journal.open(root);
    const tx = journal.begin();
    tx.track("README.md");
    await Deno.remove(join(root, "README.md"));
    await Deno.mkdir(join(root, "README.md"));
    tx.commit();
    assert.throws(
      () => journal.undo(),
      rejects("FAILED", /a folder stands there now; nothing was changed/),
    );
    assert.ok((await Deno.stat(join(root, "README.md"))).isDirectory);
    journal.close();
    const other = await Deno.makeTempDir({ prefix: "krepis-journal-" });
    await Deno.symlink(await Deno.makeTempDir(), join(other, ".krepis"));
    assert.throws(
      () => kernel.journal.open(other),
      rejects(
        "FAILED",
        /\.krepis is a symbolic link; nothing was read, written or removed through it/,
      ),
    );
    await Deno.remove(other, { recursive: true });
  },
});

Deno.test("undo() brings back a file's owner and group (as root)", {
  // Only root may give a file to another user; Windows has no uid.
  ignore: Deno.build.os === "windows" || Deno.uid() !== 0,
}, async () => {
  await using temp = await project();
  const root = temp.root;
  const file = join(root, "owned.txt");
  await Deno.writeTextFile(file, "theirs");
  await Deno.chown(file, 4321, 4322);
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  {
    using tx = journal.begin("rewrite");
    tx.track("owned.txt");
    await Deno.remove(file);
    await Deno.writeTextFile(file, "root's now");
    tx.commit();
  }
  assert.equal((await Deno.stat(file)).uid, 0);
  const undone = journal.undo();
  assert.deepEqual(undone.ownersKept, []);
  const info = await Deno.stat(file);
  assert.deepEqual([info.uid, info.gid], [4321, 4322]);
  assert.equal(await read(file), "theirs");
});

Deno.test("forget() keeps the newest transactions; history() reports snapshot bytes", async () => {
  await using temp = await project();
  const root = temp.root;
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  const ids: number[] = [];
  for (const text of ["1", "22", "333"]) {
    using tx = journal.begin(`write ${text}`);
    tx.track("README.md");
    await Deno.writeTextFile(join(root, "README.md"), text);
    ids.push(tx.commit().id);
  }
  assert.deepEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2], "ids are sequential");
  assert.deepEqual(journal.history().map((t) => t.snapshotBytes), [2, 1, 7]);
  assert.deepEqual(journal.forget({ keep: 1 }), ids.slice(0, 2));
  assert.deepEqual(journal.history().map((t) => t.id), [ids[2]]);
  assert.deepEqual(kernel.journal.history(root).map((t) => t.id), [ids[2]]);
  assert.throws(() => journal.forget({ keep: -1 }), RangeError);
  assert.throws(
    // @ts-expect-error: an option undo() does not know
    () => journal.undo({ step: 2 }),
    (error: unknown) =>
      error instanceof TypeError &&
      /unknown option "step"\nHint: did you mean steps\?/.test(error.message),
  );
  const dry = journal.undo({ dryRun: true });
  assert.deepEqual([dry.dryRun, dry.restored, dry.changed], [true, ["README.md"], []]);
  assert.equal(await read(join(root, "README.md")), "333");
});

Deno.test("trackAll() tracks many files at once, stops at the first refused path, and undo restores them", async () => {
  await using temp = await project();
  const root = temp.root;
  const names = Array.from({ length: 50 }, (_, i) => `many/f${i}.txt`);
  await Deno.mkdir(join(root, "many"));
  for (const name of names) await Deno.writeTextFile(join(root, name), `v0 ${name}`);
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  {
    using tx = journal.begin("many");
    const tracked = tx.trackAll([...names, "many/new.txt", names[0]]);
    assert.equal(tracked.length, 52);
    assert.deepEqual(tracked[50], { path: "many/new.txt", existed: false, size: 0 });
    assert.throws(
      () => tx.trackAll(["many/extra.txt", "../outside"]),
      rejects("FAILED", /^Cannot track \.\.\/outside/),
    );
    for (const name of names) await Deno.writeTextFile(join(root, name), "v1");
    await Deno.writeTextFile(join(root, "many", "extra.txt"), "tracked before the refusal");
    tx.commit();
  }
  assert.equal(journal.history()[0].files.length, 52, "50 files, new.txt and extra.txt");
  journal.undo();
  for (const name of names) assert.equal(await read(join(root, name)), `v0 ${name}`);
  assert.equal(await read(join(root, "many", "extra.txt")), null);
});
