/**
 * A cache root made on a disk that is full: a real tmpfs in a private mount
 * namespace, filled before the loader tags the new root. The tag cannot be
 * written; the failure is clear and no temp file is left behind.
 */

import assert from "node:assert/strict";
import { NO_TMPFS, unshare } from "./_tmpfs.ts";
import { skipIf } from "./_tools.ts";

const LAYOUT = new URL("../loader/_install/cache_layout.ts", import.meta.url).href;

Deno.test(
  skipIf("a full disk while CACHEDIR.TAG is written: an error, and no temp file left", NO_TMPFS),
  async () => {
    const mount = await Deno.makeTempDir({ prefix: "krepis-cache-tmpfs-" });
    const child = `${mount}-child.ts`;
    await Deno.writeTextFile(
      child,
      `
      import { ensureCacheRoot } from ${JSON.stringify(LAYOUT)};
      const root = ${JSON.stringify(mount)} + "/cache";
      let error = null;
      try { await ensureCacheRoot(root); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ error, left: [...Deno.readDirSync(root)].map((e) => e.name) }));
      `,
    );
    // The root exists and is empty; then a filler takes every free block.
    const script = [
      `mount -t tmpfs -o size=256k,mode=0700 tmpfs '${mount}'`,
      `mkdir '${mount}/cache'`,
      `(dd if=/dev/zero of='${mount}/filler' bs=4096 2>/dev/null || true)`,
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
    assert.match(seen.error ?? "", /No space left on device|not enough space/i, stdout);
    assert.deepEqual(seen.left, [], "no CACHEDIR.TAG and no temp file");
  },
);
