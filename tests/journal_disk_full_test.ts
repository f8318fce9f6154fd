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
