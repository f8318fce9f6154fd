/**
 * `krepis undo` as a user runs it: the real CLI in a child process, in a
 * real project folder whose journal a real kernel wrote.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CODES } from "../loader/cli.ts";
import { load } from "../loader/mod.ts";
import { CLI, cliEnv } from "./_cli.ts";
import { kernelPath } from "./_kernel.ts";

const decoder = new TextDecoder();

async function krepis(cwd: string, ...args: string[]) {
  const output = await new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), "undo", ...args],
    cwd,
    env: cliEnv({ KREPIS_KERNEL_PATH: await kernelPath() }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A project with two committed transactions: "create notes", then "edit notes". */
async function project(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "krepis-cli-undo-" });
  await Deno.mkdir(join(root, "deep", "er"), { recursive: true });
  using kernel = await load({ path: await kernelPath() });
  using journal = kernel.journal.open(root);
  for (const [message, text] of [["create notes", "v1"], ["edit notes", "v2"]]) {
    using tx = journal.begin(message);
    tx.track("notes.txt");
    await Deno.writeTextFile(join(root, "notes.txt"), text);
    tx.commit();
  }
  return root;
}

const notes = (root: string) => Deno.readTextFile(join(root, "notes.txt")).catch(() => null);

Deno.test("krepis undo --list and undo work from a subfolder of the project, in text and JSON", async () => {
  const root = await project();
  const inside = join(root, "deep", "er");
  const list = await krepis(inside, "--list");
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^Transactions in .*, newest first/);
  const lines = list.stdout.trim().split("\n").slice(1);
  assert.equal(lines.length, 2);
  assert.match(
    lines[0],
    /^\s+\d+ {2}\d{4}-\d\d-\d\dT.*Z {2}edit notes {2}\(1 file, \d+ B of snapshots\)$/,
  );
  assert.match(lines[1], /create notes/);

  const listed = await krepis(inside, "--list", "--json");
  const document = JSON.parse(listed.stdout);
  assert.equal(document.ok, true);
  assert.equal(document.root, await Deno.realPath(root));
  assert.deepEqual(document.transactions.map((t: { message: string }) => t.message), [
    "edit notes",
    "create notes",
  ]);
  assert.deepEqual(document.transactions[0].files, [{ path: "notes.txt", existed: true, size: 2 }]);
  assert.equal(await notes(root), "v2", "--list changes nothing");

  const undone = await krepis(inside, "--json");
  assert.equal(undone.code, 0, undone.stderr);
  const result = JSON.parse(undone.stdout);
  assert.deepEqual([result.undone.length, result.restored, result.removed], [1, ["notes.txt"], []]);
  assert.equal(await notes(root), "v1");

  const last = await krepis(inside);
  assert.equal(last.code, 0, last.stderr);
  assert.match(
    last.stdout,
    /^Undid 1 transaction in .*:\n.*create notes.*\n {2}removed {2}notes\.txt\n$/,
  );
  assert.equal(await notes(root), null);

  const empty = await krepis(inside);
  assert.equal(empty.code, 10);
  assert.match(empty.stderr, /Cannot undo: the journal holds no committed transaction/);
  assert.equal(
    (await krepis(inside, "--list")).stdout,
    `Nothing to undo in ${await Deno.realPath(root)}\n`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("krepis undo --steps is all or nothing, and its argument is checked", async () => {
  const root = await project();
  const tooMany = await krepis(root, "--steps", "3", "--json");
  assert.equal(tooMany.code, 10);
  const failure = JSON.parse(tooMany.stdout);
  assert.deepEqual([failure.ok, failure.code], [false, 10]);
  assert.match(
    failure.error,
    /^Cannot undo 3 transactions: the journal holds 2; nothing was changed/,
  );
  assert.equal(await notes(root), "v2");
  for (const bad of ["0", "-1", "x", "1.5", ""]) {
    const run = await krepis(root, `--steps=${bad}`);
    assert.equal(run.code, 2, `--steps ${bad}`);
    assert.match(
      run.stderr,
      /^error: Cannot run krepis undo: --steps (takes a positive whole number|is empty)/,
    );
  }
  const both = await krepis(root, "--steps", "2");
  assert.equal(both.code, 0, both.stderr);
  assert.equal(await notes(root), null, "the file did not exist before the first transaction");
  await Deno.remove(root, { recursive: true });
});

Deno.test("krepis undo never creates a journal: a folder without one is exit 10", async () => {
  const plain = await Deno.makeTempDir({ prefix: "krepis-cli-undo-plain-" });
  for (const args of [[], ["--list"], ["--project", plain]]) {
    const run = await krepis(plain, ...args);
    assert.equal(run.code, 10, args.join(" "));
    assert.match(run.stderr, /Cannot find a journal: no \.krepis folder in /);
  }
  assert.deepEqual([...Deno.readDirSync(plain)], [], "nothing was written");
  const root = await project();
  const elsewhere = await krepis(plain, "--project", root, "--list", "--json");
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  assert.equal(JSON.parse(elsewhere.stdout).transactions.length, 2);
  await Deno.remove(plain, { recursive: true });
  await Deno.remove(root, { recursive: true });
});

Deno.test("krepis undo while another process holds the journal: exit 10, BUSY, nothing changed", async () => {
  const root = await project();
  using kernel = await load({ path: await kernelPath() });
  const journal = kernel.journal.open(root);
  const run = await krepis(root);
  assert.equal(run.code, 10);
  assert.match(run.stderr, /another process has it open/);
  assert.match(run.stderr, /\nHint: /);
  assert.equal(await notes(root), "v2");
  journal.close();
  assert.equal((await krepis(root)).code, 0);
  assert.equal(await notes(root), "v1");
  await Deno.remove(root, { recursive: true });
});

Deno.test("krepis undo --list works while another process holds the journal, and creates nothing", async () => {
  const root = await project();
  using kernel = await load({ path: await kernelPath() });
  const journal = kernel.journal.open(root);
  const listed = await krepis(root, "--list", "--json");
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    JSON.parse(listed.stdout).transactions.map((t: { message: string }) => t.message),
    ["edit notes", "create notes"],
  );
  journal.close();
  await Deno.remove(root, { recursive: true });

  const empty = await Deno.makeTempDir({ prefix: "krepis-cli-undo-empty-" });
  await Deno.mkdir(join(empty, ".krepis"));
  const run = await krepis(empty, "--list");
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^Nothing to undo in /);
  assert.deepEqual([...Deno.readDirSync(join(empty, ".krepis"))], [], "no journal was created");
  await Deno.remove(empty, { recursive: true });
});

Deno.test("krepis undo refuses a file edited since; --dry-run lists it; --force keeps it and undo again brings it back", async () => {
  const root = await project();
  await Deno.writeTextFile(join(root, "notes.txt"), "edited by hand");
  const refused = await krepis(root);
  assert.equal(refused.code, 10);
  assert.match(
    refused.stderr,
    /Cannot undo transaction \d+: 1 file changed since \(notes\.txt\); nothing was changed/,
  );
  assert.match(refused.stderr, /\nHint: .*--force/);
  assert.equal(await notes(root), "edited by hand");

  const dry = await krepis(root, "--dry-run");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^Would undo 1 transaction in .* \(nothing was changed\):\n/);
  assert.match(dry.stdout, /\n {2}would restore notes\.txt\n {2}changed since: notes\.txt\n$/);
  assert.equal(await notes(root), "edited by hand");

  const forced = await krepis(root, "--force", "--json");
  assert.equal(forced.code, 0, forced.stderr);
  const report = JSON.parse(forced.stdout);
  assert.deepEqual(report.changed, ["notes.txt"]);
  assert.equal(typeof report.kept, "number");
  assert.equal(await notes(root), "v1");

  const redo = await krepis(root);
  assert.equal(redo.code, 0, redo.stderr);
  assert.equal(await notes(root), "edited by hand", "the forced undo was undone");
  await Deno.remove(root, { recursive: true });
});

Deno.test("krepis undo --project naming a file is exit 10 with a JournalError", async () => {
  const root = await project();
  const run = await krepis(root, "--project", join(root, "notes.txt"), "--json");
  assert.equal(run.code, 10, run.stderr);
  assert.match(
    JSON.parse(run.stdout).error,
    /^Cannot find a journal: the project .* is not a folder/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test({
  name:
    "krepis undo --project naming a path under a file is the journal's error: exit 10, one hint",
  // Windows reports a path under a file as not found, not as a file in the way.
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "krepis-cli-undo-file-" });
    await Deno.writeTextFile(join(dir, "plain.txt"), "not a folder");
    const run = await krepis(dir, "--project", join(dir, "plain.txt", "x"));
    assert.equal(run.code, EXIT_CODES.journal, run.stderr);
    assert.match(run.stderr, /Cannot /);
    assert.equal(
      run.stderr.split("\n").filter((line) => line.startsWith("Hint:")).length,
      1,
      run.stderr,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["plain.txt"],
      "nothing was written",
    );
    assert.equal(await Deno.readTextFile(join(dir, "plain.txt")), "not a folder");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("krepis undo --prune --keep 1 forgets the oldest transaction and frees its snapshots", async () => {
  const root = await project();
  const before = [...Deno.readDirSync(join(root, ".krepis", "snapshots"))].length;
  assert.equal(before, 1, "the second transaction snapshotted v1");
  const pruned = await krepis(root, "--prune", "--keep", "0", "--json");
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.equal(JSON.parse(pruned.stdout).forgotten.length, 2);
  assert.deepEqual([...Deno.readDirSync(join(root, ".krepis", "snapshots"))], []);
  assert.equal((await krepis(root)).code, 10, "nothing left to undo");
  assert.equal(await notes(root), "v2");
  const bad = await krepis(root, "--prune");
  assert.equal(bad.code, 2);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a journal store that lost its commits is refused (exit 10) and --repair rebuilds it", async () => {
  const root = await project();
  const store = join(root, ".krepis", "journal");
  await Deno.remove(store, { recursive: true });
  await Deno.mkdir(store);
  const refused = await krepis(root);
  assert.equal(refused.code, 10);
  assert.match(
    refused.stderr,
    /its store is empty but its commit record holds 2 committed transactions/,
  );
  assert.match(refused.stderr, /--repair/);
  assert.equal(await notes(root), "v2", "nothing was rolled back");
  const repaired = await krepis(root, "--repair");
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, /2 transactions kept/);
  const undone = await krepis(root);
  assert.equal(undone.code, 0, undone.stderr);
  assert.equal(await notes(root), "v1");
  await Deno.remove(root, { recursive: true });
});

Deno.test(
  "a .krepis whose folders link outside the project: every krepis undo refuses, exit 10, nothing outside touched",
  // Symbolic links need a privilege on Windows.
  { ignore: Deno.build.os === "windows" },
  async () => {
    for (const level of ["snapshots", "journal", ""]) {
      const root = await project();
      const outside = await Deno.makeTempDir({ prefix: "krepis-cli-undo-outside-" });
      const linked = level === "" ? join(root, ".krepis") : join(root, ".krepis", level);
      await Deno.rename(linked, join(outside, "moved"));
      await Deno.symlink(join(outside, "moved"), linked);
      const listing = async () => {
        const names: string[] = [];
        const walk = async (dir: string) => {
          for await (const entry of Deno.readDir(dir)) {
            names.push(
              `${dir}/${entry.name}:${
                entry.isFile ? (await Deno.stat(join(dir, entry.name))).size : "d"
              }`,
            );
            if (entry.isDirectory) await walk(join(dir, entry.name));
          }
        };
        await walk(outside);
        return names.sort();
      };
      const before = await listing();
      for (const args of [[], ["--list"], ["--force"], ["--repair"]]) {
        const run = await krepis(root, ...args);
        assert.equal(run.code, 10, `${level}: ${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, /is a symbolic link/);
      }
      assert.deepEqual(await listing(), before, `${level}: nothing outside changed`);
      assert.equal(await notes(root), "v2");
      await Deno.remove(root, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    }
  },
);
