import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { formatTs } from "../lib/format.ts";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import { renderKeysModule } from "./keys_module.ts";
import { importSigningKey } from "./signing_key.ts";
import { keyId, signMinisign } from "./minisign_sign.ts";

/** Runs `deno task release keygen <args>` in this repository. */
async function keygen(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "release", "keygen", ...args],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The key ids a `_gen/keys.ts` trusts, read by importing it (a fresh copy each time). */
async function keyIds(dir: string): Promise<string[]> {
  const copy = join(dir, `keys-${crypto.randomUUID()}.ts`);
  await Deno.copyFile(join(dir, "_gen", "keys.ts"), copy);
  try {
    const module = await import(pathToFileURL(copy).href);
    return module.PROJECT_KEYS.map((k: string) => parseMinisignPublicKey(k).keyId);
  } finally {
    await Deno.remove(copy);
  }
}

Deno.test("the committed loader/_gen/keys.ts is the keygen template (no project key made here yet)", async () => {
  assert.equal(
    await Deno.readTextFile(join(REPO_ROOT, "loader", "_gen", "keys.ts")),
    await formatTs(renderKeysModule([])),
  );
});

Deno.test("deno task release keygen writes the public half and prints a secret that signs for it", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "_gen"));
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
    const module = await import(pathToFileURL(join(dir, "_gen", "keys.ts")).href);
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

Deno.test("deno task release keygen refuses to replace a project key without --force, and says what --force replaced", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "_gen"));
  try {
    // The committed template lists no key: the first keygen is not a replacement.
    await Deno.copyFile(join(REPO_ROOT, "loader", "_gen", "keys.ts"), join(dir, "_gen", "keys.ts"));
    const first = await keygen("--loader-dir", dir);
    assert.equal(first.code, 0, first.stderr);
    const [firstId] = await keyIds(dir);
    assert.match(first.stdout, new RegExp(`^wrote the public key ${firstId} to `));
    const written = await Deno.readTextFile(join(dir, "_gen", "keys.ts"));

    const again = await keygen("--loader-dir", dir);
    assert.equal(again.code, 1, again.stdout);
    assert.equal(again.stdout, "", "no secret is printed");
    assert.match(
      again.stderr,
      new RegExp(
        `^error: Cannot make a new signing key: .*keys\\.ts already holds the project key ${firstId}\nHint: .*\`deno task release keygen --force\``,
      ),
    );
    assert.equal(await Deno.readTextFile(join(dir, "_gen", "keys.ts")), written, "the key is kept");

    const forced = await keygen("--loader-dir", dir, "--force");
    assert.equal(forced.code, 0, forced.stderr);
    const [newId] = await keyIds(dir);
    assert.notEqual(newId, firstId);
    assert.match(
      forced.stdout,
      new RegExp(
        `^replaced the project key ${firstId} with ${newId} in .*; releases signed by the old key will no longer verify with the new loader`,
      ),
    );
    const secret = forced.stdout.trim().split("\n").at(-1)!;
    assert.equal(keyId(await importSigningKey(secret)), newId, "the printed secret is the new key");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keygen reads _gen/keys.ts as text: its code is never run, and a file without the list is refused", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "_gen"));
  try {
    const marker = join(dir, "ran");
    // A key list that would, if imported, also write a file.
    await Deno.writeTextFile(
      join(dir, "_gen", "keys.ts"),
      `Deno.writeTextFileSync(${
        JSON.stringify(marker)
      }, "x");\nexport const PROJECT_KEYS: readonly string[] = [];\n`,
    );
    const empty = await keygen("--loader-dir", dir);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(await Deno.stat(marker).then(() => true, () => false), false, "not run");
    await Deno.writeTextFile(join(dir, "_gen", "keys.ts"), "export const PROJECT_KEYS = 5;\n");
    const broken = await keygen("--loader-dir", dir);
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      /^error: Cannot read the project keys in .*: it has no PROJECT_KEYS list\nHint: /,
    );
    assert.equal(
      await Deno.readTextFile(join(dir, "_gen", "keys.ts")),
      "export const PROJECT_KEYS = 5;\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
