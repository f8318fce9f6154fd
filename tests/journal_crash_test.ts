/**
 * Crash safety of the journal: a real child process is killed (SIGKILL,
 * TerminateProcess on Windows) at each stage between `track` and `commit`
 * and inside an undo, then the next `open` in this process must leave the
 * project recoverable and say what it did, never a half-applied undo.
 *
 * Stages inside the kernel are reached with the debug kernel's pause points
 * (`KREPIS_TEST_PAUSE_AT`, see crates/krepis-kernel/src/fault.rs): the
 * child announces the point on stderr and sleeps there until killed.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { load } from "../loader/mod.ts";
import { kernelPath } from "./_kernel.ts";
import { spawnScript } from "./_script.ts";

const MOD = JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href);
const decoder = new TextDecoder();

async function project(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "krepis-crash-" });
  await Deno.writeTextFile(join(root, "a.txt"), "a0");
  await Deno.writeTextFile(join(root, "b.txt"), "b0");
  return root;
}

/**
 * Runs `body` (TypeScript with `journal` open on `root`) in a child, waits
 * until it prints `marker` (on stdout or stderr), kills it, and returns
 * what it printed.
 */
async function killAt(
  root: string,
  body: string,
  marker: string,
  pauseAt?: string,
): Promise<string> {
  const script = `
    import { load } from ${MOD};
    const kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
    const journal = kernel.journal.open(${JSON.stringify(root)});
    const write = (name, text) => Deno.writeTextFileSync(${
    JSON.stringify(root)
  } + "/" + name, text);
    ${body}
  `;
  const child = await spawnScript(["-A"], script, pauseAt ? { KREPIS_TEST_PAUSE_AT: pauseAt } : {});
  let seen = "";
  const reached = Promise.any([child.stdout, child.stderr].map(async (stream) => {
    for await (const chunk of stream) {
      seen += decoder.decode(chunk);
      if (seen.includes(marker)) return;
    }
    throw new Error("stream ended");
  }));
  const limit = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    await reached.catch(() => {});
    assert.ok(seen.includes(marker), `the child never reached ${marker}: ${seen}`);
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.success, false, "the child was killed, it did not finish");
  } finally {
    clearTimeout(limit);
  }
  return seen;
}

const text = (root: string, name: string) => Deno.readTextFile(join(root, name)).catch(() => null);

async function leftovers(root: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    if (entry.name.endsWith(".krepis-restore")) found.push(entry.name);
  }
  return found;
}

async function snapshotFolders(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(root, ".krepis", "snapshots"))) {
    names.push(entry.name);
  }
  return names;
}

Deno.test("killed between track and commit: the next open rolls the transaction back", async () => {
  const root = await project();
  await killAt(
    root,
    `const tx = journal.begin("tool run");
     tx.track("a.txt"); tx.track("new.txt");
     write("a.txt", "a1"); write("new.txt", "created");
     console.log("edited");
     await new Promise(() => {});`,
    "edited",
  );
  assert.equal(await text(root, "a.txt"), "a1", "the killed tool had changed the file");
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  assert.equal(journal.recovered.length, 1);
  assert.equal(journal.recovered[0].action, "rolled back");
  assert.deepEqual([...journal.recovered[0].paths].sort(), ["a.txt", "new.txt"]);
  assert.equal(await text(root, "a.txt"), "a0");
  assert.equal(await text(root, "new.txt"), null);
  assert.deepEqual(journal.history(), []);
  assert.deepEqual(await snapshotFolders(root), []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("killed inside track, after the snapshot was copied: rolled back, nothing left", async () => {
  const root = await project();
  const seen = await killAt(
    root,
    `const tx = journal.begin("tool run"); tx.track("a.txt"); tx.track("b.txt");`,
    "krepis-paused-at track:copied",
    "track:copied",
  );
  assert.match(seen, /krepis-paused-at track:copied/);
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  assert.deepEqual(journal.recovered.map((r) => r.action), ["rolled back"]);
  assert.equal(await text(root, "a.txt"), "a0");
  assert.equal(await text(root, "b.txt"), "b0");
  assert.deepEqual(await snapshotFolders(root), []);
  await Deno.remove(root, { recursive: true });
});

const COMMITTED_EDIT = `
  const tx = journal.begin("edit");
  tx.track("a.txt"); tx.track("b.txt"); tx.track("c.txt");
  write("a.txt", "a1"); write("b.txt", "b1"); write("c.txt", "c1");
  tx.commit();
  journal.undo();
`;

for (const point of ["restore:planned", "restore:staged"]) {
  Deno.test(`killed during an undo at ${point}: abandoned, nothing changed, undo works again`, async () => {
    const root = await project();
    await killAt(root, COMMITTED_EDIT, `krepis-paused-at ${point}`, point);
    if (point === "restore:staged") {
      assert.equal((await leftovers(root)).length, 2, "two staged copies were left by the kill");
    }
    using kernel = await load({ path: await kernelPath() });
    using journal = kernel.journal.open(root);
    assert.deepEqual(journal.recovered.map((r) => r.action), ["undo abandoned, nothing changed"]);
    assert.deepEqual(
      [await text(root, "a.txt"), await text(root, "b.txt"), await text(root, "c.txt")],
      ["a1", "b1", "c1"],
    );
    assert.deepEqual(await leftovers(root), [], "staged copies are removed");
    assert.equal(journal.history().length, 1);
    journal.undo();
    assert.deepEqual(
      [await text(root, "a.txt"), await text(root, "b.txt"), await text(root, "c.txt")],
      ["a0", "b0", null],
    );
    await Deno.remove(root, { recursive: true });
  });
}

Deno.test("killed during an undo after one file was replaced: the next open completes it", async () => {
  const root = await project();
  await killAt(root, COMMITTED_EDIT, "krepis-paused-at restore:applied-one", "restore:applied-one");
  const files = [await text(root, "a.txt"), await text(root, "b.txt"), await text(root, "c.txt")];
  assert.deepEqual(files, ["a0", "b1", "c1"], "the kill left the undo half-applied on disk");
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  assert.deepEqual(journal.recovered.map((r) => r.action), ["undo completed"]);
  assert.deepEqual(
    [await text(root, "a.txt"), await text(root, "b.txt"), await text(root, "c.txt")],
    ["a0", "b0", null],
  );
  assert.deepEqual(await leftovers(root), []);
  assert.deepEqual(journal.history(), []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("killed during a rollback after one file was replaced: the next open completes it", async () => {
  const root = await project();
  await killAt(
    root,
    `const tx = journal.begin("edit");
     tx.track("a.txt"); tx.track("b.txt");
     write("a.txt", "a1"); write("b.txt", "b1");
     tx.rollback();`,
    "krepis-paused-at restore:applied-one",
    "restore:applied-one",
  );
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  assert.deepEqual(journal.recovered.map((r) => r.action), ["rollback completed"]);
  assert.deepEqual([await text(root, "a.txt"), await text(root, "b.txt")], ["a0", "b0"]);
  assert.deepEqual(journal.history(), []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("killed between the store's commit and the commit record: the next open records it, nothing rolled back", async () => {
  const root = await project();
  await killAt(
    root,
    `const tx = journal.begin("edit");
     tx.track("a.txt"); write("a.txt", "a1");
     tx.commit();`,
    "krepis-paused-at commit:stored",
    "commit:stored",
  );
  {
    using kernel = await load({ path: await kernelPath() });
    using journal = kernel.journal.open(root);
    assert.deepEqual(journal.recovered, []);
    assert.equal(await text(root, "a.txt"), "a1", "a committed edit is never rolled back");
    assert.deepEqual(journal.history().map((t) => t.message), ["edit"]);
    // The record now holds it: the lock-free list sees it too.
    assert.deepEqual(kernel.journal.history(root).map((t) => t.message), ["edit"]);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("a recovery that cannot finish does not wedge open(): it says what is pending", async () => {
  const root = await project();
  await killAt(
    root,
    `const tx = journal.begin("tool run");
     tx.track("a.txt"); write("a.txt", "a1");
     console.log("edited");
     await new Promise(() => {});`,
    "edited",
  );
  // A folder now stands where the file was: the rollback cannot run.
  await Deno.remove(join(root, "a.txt"));
  await Deno.mkdir(join(root, "a.txt"));
  using kernel = await load({ path: await kernelPath() });
  {
    const journal = kernel.journal.open(root);
    assert.equal(journal.recovered.length, 1);
    assert.match(
      journal.recovered[0].action,
      /^pending: Cannot restore a\.txt: a folder stands there now/,
    );
    assert.deepEqual(journal.history(), [], "the journal works meanwhile");
    // Closing tries the rollback again, says why it cannot, and frees the journal.
    assert.throws(() => journal.close(), /a folder stands there now/);
  }
  await Deno.remove(join(root, "a.txt"));
  using journal = kernel.journal.open(root);
  assert.deepEqual(journal.recovered.map((r) => r.action), ["rolled back"]);
  assert.equal(await text(root, "a.txt"), "a0");
  await Deno.remove(root, { recursive: true });
});
