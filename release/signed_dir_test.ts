import assert from "node:assert/strict";
import { join } from "node:path";
import { LOADER_ABI, VERSION } from "../loader/mod.ts";
import { type Manifest } from "../loader/release.ts";
import { generateSigningKey } from "./minisign_sign.ts";
import { writeSignedDir } from "./signed_dir.ts";

const manifest: Manifest = { schema: 1, version: VERSION, abi: { ...LOADER_ABI }, targets: [] };
const encoder = new TextEncoder();

async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) out[e.name] = await Deno.readTextFile(join(dir, e.name));
  return out;
}

Deno.test("writeSignedDir() re-writes a version with the same bytes, and refuses other bytes untouched", async () => {
  const out = await Deno.makeTempDir();
  try {
    const key = await generateSigningKey();
    const files = [{ name: "lib.so", bytes: encoder.encode("the build") }];
    const dir = await writeSignedDir(out, manifest, files, key);
    const first = await tree(dir);
    assert.deepEqual(Object.keys(first).sort(), [
      "SHA256SUMS",
      "lib.so",
      "manifest.json",
      "manifest.json.minisig",
    ]);
    // A re-run with the same build: nothing changes (the signature is deterministic).
    await writeSignedDir(out, manifest, files, key);
    assert.deepEqual(await tree(dir), first);
    // Another build of the same version: refused before anything is written.
    await assert.rejects(
      () =>
        writeSignedDir(out, manifest, [{ name: "lib.so", bytes: encoder.encode("other") }], key),
      /^Error: Cannot publish lib\.so to .*: it is already there with other bytes, and a published version never changes\nHint: release a new version/,
    );
    assert.deepEqual(await tree(dir), first);
    // The same library under a manifest that says something else: refused as well.
    const otherManifest: Manifest = { ...manifest, abi: { ...manifest.abi, minor: 99 } };
    await assert.rejects(
      () => writeSignedDir(out, otherManifest, files, key),
      /Cannot publish manifest\.json to .*: it is already there with other bytes/,
    );
    assert.deepEqual(await tree(dir), first);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
