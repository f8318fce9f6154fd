/**
 * A journal on a disk that fills up: a real tmpfs of a few MiB in a private
 * mount namespace, a real kernel in a child process. Tracking a file whose
 * snapshot does not fit must fail clearly and lose nothing.
 */

import assert from "node:assert/strict";
import { kernelPath } from "./_kernel.ts";
import { NO_TMPFS, unshare } from "./_tmpfs.ts";
import { skipIf } from "./_tools.ts";

const MOD = new URL("../loader/mod.ts", import.meta.url).href;

Deno.test(
  skipIf("a snapshot that does not fit: a clear error, the file and the journal intact", NO_TMPFS),
  async () => {
    const mount = await Deno.makeTempDir({ prefix: "krepis-journal-tmpfs-" });
    const child = `${mount}-child.ts`;
    await Deno.writeTextFile(
      child,
      `
      import { load, JournalError } from ${JSON.stringify(MOD)};
      const root = ${JSON.stringify(mount)};
      const big = root + "/big.bin";
      const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
      Deno.writeFileSync(big, bytes);
      using kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      using journal = kernel.journal.open(root);
      const tx = journal.begin("too big");
      let error = null;
      try { tx.track("big.bin"); } catch (e) {
        error = { journal: e instanceof JournalError, reason: e.reason, message: e.message };
      }
      const small = tx.track("small.txt");
      Deno.writeTextFileSync(root + "/small.txt", "new");
      const committed = tx.commit();
      const same = Deno.readFileSync(big).every((b, i) => b === bytes[i]);
      const partials = [];
      for (const dir of Deno.readDirSync(root + "/.krepis/snapshots")) {
        for (const f of Deno.readDirSync(root + "/.krepis/snapshots/" + dir.name)) partials.push(f.name);
      }
      const undone = journal.undo();
      console.log(JSON.stringify({ error, small, files: committed.files.map((f) => f.path), same, partials,
        removed: undone.removed }));
      `,
    );
    const script = [
      `mount -t tmpfs -o size=4m,mode=0700 tmpfs '${mount}'`,
      `'${Deno.execPath()}' run -A --quiet '${child}'`,
    ].join(" && ");
    const output = await new Deno.Command("unshare", {
      args: [...unshare!, "--propagation", "private", "sh", "-c", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    await Deno.remove(child);
    await Deno.remove(mount, { recursive: true });
    assert.ok(output.success, stderr);
    const seen = JSON.parse(stdout);
    assert.equal(seen.error?.journal, true, stdout);
    assert.equal(seen.error.reason, "FAILED");
    assert.match(
      seen.error.message,
      /^Cannot track big\.bin: its snapshot could not be written \(the disk is full\)/,
    );
    assert.equal(seen.same, true, "the file is untouched");
    assert.deepEqual(seen.partials, [], "no partial snapshot is left");
    assert.deepEqual(seen.small, { path: "small.txt", existed: false, size: 0 });
    assert.deepEqual(seen.files, ["small.txt"], "the failed track recorded nothing");
    assert.deepEqual(seen.removed, ["small.txt"], "the journal still works");
  },
);

Deno.test(
  skipIf("an open journal works again by itself once a full disk has room", NO_TMPFS),
  async () => {
    const mount = await Deno.makeTempDir({ prefix: "krepis-journal-tmpfs-" });
    const child = `${mount}-child.ts`;
    await Deno.writeTextFile(
      child,
      `
      import { load } from ${JSON.stringify(MOD)};
      const root = ${JSON.stringify(mount)};
      Deno.writeTextFileSync(root + "/a.txt", "a0");
      using kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      using journal = kernel.journal.open(root);
      const stuck = [];
      // A file that does not exist yet needs no snapshot: only the
      // journal's store and its commit record need room.
      const edit = (text, name = "a.txt") => {
        const tx = journal.begin("edit " + text);
        try {
          tx.track(name);
          if (name === "a.txt") Deno.writeTextFileSync(root + "/a.txt", text);
          return tx.commit().id;
        } catch (e) {
          if (tx.state === "open") {
            try { tx.rollback(); } catch { stuck.push(tx); }
          }
          throw e;
        }
      };
      edit("a1");
      // Fill the disk to the last byte.
      const filler = Deno.openSync(root + "/filler.bin", { write: true, create: true });
      const chunk = new Uint8Array(4096);
      try { for (;;) filler.writeSync(chunk); } catch {}
      try { for (;;) filler.writeSync(chunk.subarray(0, 1)); } catch {}
      filler.close();
      let full = null;
      for (let i = 0; i < 20 && full === null; i++) {
        try { edit("full " + i, "new" + i + ".txt"); } catch (e) { full = e.message; }
      }
      Deno.removeSync(root + "/filler.bin");
      // A rollback the full disk stopped now runs, on the same journal.
      for (const tx of stuck) tx.rollback();
      const after = edit("a2");
      const history = journal.history().map((t) => t.message);
      const undone = journal.undo();
      console.log(JSON.stringify({ full, stuck: stuck.length, after, history, text: Deno.readTextFileSync(root + "/a.txt"),
        undone: undone.restored }));
      `,
    );
    const script = [
      `mount -t tmpfs -o size=2m,mode=0700 tmpfs '${mount}'`,
      `'${Deno.execPath()}' run -A --quiet '${child}'`,
    ].join(" && ");
    const output = await new Deno.Command("unshare", {
      args: [...unshare!, "--propagation", "private", "sh", "-c", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    await Deno.remove(child);
    await Deno.remove(mount, { recursive: true });
    assert.ok(output.success, stderr);
    const seen = JSON.parse(stdout);
    assert.match(seen.full ?? "", /the disk is full/, stdout);
    assert.equal(typeof seen.after, "number", "a commit works once there is room");
    assert.equal(seen.history[0], "edit a2");
    assert.deepEqual(seen.undone, ["a.txt"]);
    assert.notEqual(seen.text, "a2", "the undo restored the file");
  },
);
