import assert from "node:assert/strict";
import { join } from "node:path";
import { DEMO_KEY_FILE, demoKey } from "./demo_key.ts";
import { keyId, publicKeyFile } from "../release/minisign_sign.ts";

Deno.test("demoKey() makes a key in a new --out folder and keeps it for the next run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-demo-key-" });
  try {
    const first = await demoKey(dir);
    assert.equal(first.kept, false);
    // The demo writes key.pub after signing.
    await Deno.writeTextFile(join(dir, "key.pub"), publicKeyFile(first.key));
    const second = await demoKey(dir);
    assert.equal(second.kept, true);
    assert.equal(keyId(second.key), keyId(first.key));
    assert.equal(publicKeyFile(second.key), publicKeyFile(first.key));
    if (Deno.build.os !== "windows") {
      // Windows has no POSIX mode bits.
      assert.equal((await Deno.stat(join(dir, DEMO_KEY_FILE))).mode! & 0o777, 0o600);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demoKey() refuses a folder whose key.pub it cannot sign for, and never replaces it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-demo-key-" });
  try {
    const foreign = "untrusted comment: someone's key\nRWQAAAAAAAAAAA==\n";
    await Deno.writeTextFile(join(dir, "key.pub"), foreign);
    await assert.rejects(
      () => demoKey(dir),
      /^Error: Cannot keep the demo key of .*: it has a key\.pub but no \.demo-signing-key/,
    );
    assert.equal(await Deno.readTextFile(join(dir, "key.pub")), foreign);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["key.pub"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demoKey() without a folder makes a throwaway key and writes nothing", async () => {
  const a = await demoKey();
  const b = await demoKey();
  assert.equal(a.kept, false);
  assert.notEqual(keyId(a.key), keyId(b.key));
});
