import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { formatTs } from "../lib/format.ts";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import { renderKeysModule } from "./keys_module.ts";
import { importSigningKey } from "./signing_key.ts";
import { signMinisign } from "./minisign_sign.ts";

Deno.test("the committed loader/_keys.ts is the keygen template (no project key made here yet)", async () => {
  assert.equal(
    await Deno.readTextFile(join(REPO_ROOT, "loader", "_keys.ts")),
    await formatTs(renderKeysModule([])),
  );
});

Deno.test("deno task release keygen writes the public half and prints a secret that signs for it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "release", "keygen", "--loader-dir", dir],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, text + new TextDecoder().decode(out.stderr));
    const secret = text.trim().split("\n").at(-1)!;
    const module = await import(pathToFileURL(join(dir, "_keys.ts")).href);
    assert.equal(module.PROJECT_KEYS.length, 1);
    const key = await importSigningKey(secret);
    const message = new TextEncoder().encode("manifest");
    const signature = await signMinisign(key, message, "file:manifest.json");
    await verifyMinisign(
      message,
      signature,
      [parseMinisignPublicKey(module.PROJECT_KEYS[0])],
      "manifest",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
