/**
 * What we publish is accepted by the real tools: `sha256sum -c` on
 * SHA256SUMS and `minisign -V` on the manifest signature. And the loader's
 * verifier agrees with minisign on good and bad signatures. The same
 * properties are checked in TypeScript (node:crypto, the loader's verifier)
 * on machines without those tools.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { IntegrityError } from "../loader/mod.ts";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import { releaseFixture } from "./_release_fixture.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { copyDir } from "./_fs.ts";
import { checkSha256Sums } from "./_sha256sums.ts";
import { NO_MINISIGN, NO_SHA256SUM } from "./_release_tools.ts";
import { skipIf } from "./_tools.ts";

async function run(command: string, args: string[], cwd: string) {
  const output = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return { code: output.code, text: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

/** A copy of the fixture's version directory with manifest.json changed by one byte. */
async function damagedCopy(versionDir: string): Promise<string> {
  const copy = await Deno.makeTempDir();
  await copyDir(versionDir, copy);
  const manifest = join(copy, "manifest.json");
  await Deno.writeTextFile(
    manifest,
    (await Deno.readTextFile(manifest)).replace("schema", "schemA"),
  );
  return copy;
}

Deno.test("SHA256SUMS lists every published file with its hash, and a damaged file fails it", async () => {
  const fixture = await releaseFixture();
  const ok = await checkSha256Sums(fixture.versionDir);
  assert.deepEqual(
    ok.ok.toSorted(),
    [
      fixture.entry.file,
      `${fixture.entry.file}.gz`,
      `${fixture.entry.file}.zst`,
      "manifest.json",
    ].toSorted(),
  );
  assert.deepEqual([ok.failed, ok.malformed], [[], []]);
  const copy = await damagedCopy(fixture.versionDir);
  try {
    assert.deepEqual((await checkSha256Sums(copy)).failed, ["manifest.json"]);
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test(
  skipIf("sha256sum -c accepts SHA256SUMS, and catches a damaged file", NO_SHA256SUM),
  async () => {
    const fixture = await releaseFixture();
    const ok = await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], fixture.versionDir);
    assert.equal(ok.code, 0, ok.text);
    assert.equal(ok.text.trim().split("\n").length, 4); // library, .zst, .gz, manifest.json
    const copy = await damagedCopy(fixture.versionDir);
    try {
      const bad = await run("sha256sum", ["-c", "SHA256SUMS"], copy);
      assert.notEqual(bad.code, 0);
      assert.match(bad.text, /manifest\.json: FAILED/);
    } finally {
      await Deno.remove(copy, { recursive: true });
    }
  },
);

Deno.test("the loader verifies the manifest signature of a release", async () => {
  const fixture = await releaseFixture();
  const verified = await verifyMinisign(
    await Deno.readFile(join(fixture.versionDir, "manifest.json")),
    await Deno.readTextFile(join(fixture.versionDir, "manifest.json.minisig")),
    [parseMinisignPublicKey(await Deno.readTextFile(fixture.publicKeyPath))],
    "manifest.json",
  );
  assert.match(verified.trustedComment, /file:manifest\.json/);
});

Deno.test(
  skipIf("minisign -V accepts the manifest signature", NO_MINISIGN),
  async () => {
    const fixture = await releaseFixture();
    const ok = await run(
      "minisign",
      ["-V", "-m", "manifest.json", "-p", fixture.publicKeyPath],
      fixture.versionDir,
    );
    assert.equal(ok.code, 0, ok.text);
    assert.match(ok.text, /Signature and comment signature verified/);
  },
);

/**
 * The fixture's manifest and signature in a temp dir, then `check` of each
 * damage: (1) a manifest byte flipped, (2) the trusted comment altered.
 */
async function withTampered(
  check: (damage: { dir: string; manifest: Uint8Array; signature: string }) => Promise<void>,
) {
  const fixture = await releaseFixture();
  const dir = await Deno.makeTempDir();
  try {
    const manifestPath = join(dir, "manifest.json");
    const signaturePath = join(dir, "manifest.json.minisig");
    const original = await Deno.readFile(join(fixture.versionDir, "manifest.json"));
    const signature = await Deno.readTextFile(join(fixture.versionDir, "manifest.json.minisig"));
    // 1. the manifest changed
    const bytes = new Uint8Array(original);
    bytes[10] ^= 1;
    await Deno.writeFile(manifestPath, bytes);
    await Deno.writeTextFile(signaturePath, signature);
    await check({ dir, manifest: bytes, signature });
    // 2. the trusted comment changed
    await Deno.writeFile(manifestPath, original);
    const altered = signature.replace(
      /^trusted comment: .*$/m,
      "trusted comment: timestamp:0\tfile:evil.json",
    );
    await Deno.writeTextFile(signaturePath, altered);
    await check({ dir, manifest: original, signature: altered });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the loader refuses a tampered manifest and a tampered trusted comment", async () => {
  const keys = [parseMinisignPublicKey((await releaseFixture()).publicKey)];
  const errors: string[] = [];
  await withTampered(async ({ manifest, signature }) => {
    await assert.rejects(verifyMinisign(manifest, signature, keys, "m"), (e: Error) => {
      assert.ok(e instanceof IntegrityError, `${e.name}: ${e.message}`);
      errors.push(e.message);
      return true;
    });
  });
  assert.equal(errors.length, 2);
  assert.match(errors[1], /the trusted comment signed by key [0-9A-F]{16} was altered/);
});

Deno.test(
  skipIf("minisign refuses a tampered manifest and a tampered trusted comment", NO_MINISIGN),
  async () => {
    const fixture = await releaseFixture();
    let checked = 0;
    await withTampered(async ({ dir }) => {
      const verify = await run(
        "minisign",
        ["-V", "-m", "manifest.json", "-p", fixture.publicKeyPath],
        dir,
      );
      assert.notEqual(verify.code, 0, verify.text);
      checked++;
    });
    assert.equal(checked, 2);
  },
);

Deno.test(
  skipIf(
    "a signature minisign made itself (prehashed) is refused with a hint, a legacy one verifies",
    NO_MINISIGN,
  ),
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const keygen = await new Deno.Command("minisign", {
        args: ["-G", "-W", "-p", join(dir, "k.pub"), "-s", join(dir, "k.key")],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(keygen.success, new TextDecoder().decode(keygen.stderr));
      await Deno.writeTextFile(join(dir, "m.json"), '{"hello":1}\n');
      const keys = [parseMinisignPublicKey(await Deno.readTextFile(join(dir, "k.pub")))];
      const message = await Deno.readFile(join(dir, "m.json"));
      for (const [flags, accepted] of [[[], false], [["-l"], true]] as const) {
        const sign = await run(
          "minisign",
          ["-S", ...flags, "-s", join(dir, "k.key"), "-m", "m.json"],
          dir,
        );
        assert.equal(sign.code, 0, sign.text);
        const signature = await Deno.readTextFile(join(dir, "m.json.minisig"));
        if (accepted) {
          await verifyMinisign(message, signature, keys, "m.json");
        } else {
          await assert.rejects(
            verifyMinisign(message, signature, keys, "m.json"),
            /not the non-prehashed "Ed"\nHint: .*minisign -S -l/,
          );
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// The release directory the demo keeps is written by the same writeRelease()
// as the fixture above, which the real tools check; here it is checked in
// TypeScript, so the test runs everywhere.
Deno.test("deno task demo --out runs the whole flow, keeps a verifiable release, and a second run keeps its key", async () => {
  const out = await Deno.makeTempDir({ prefix: "krepis-demo-test-" });
  try {
    const demo = await new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--out", out],
      cwd: REPO_ROOT,
      env: { KREPIS_KERNEL_PATH: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(demo.stdout);
    assert.ok(demo.success, text + new TextDecoder().decode(demo.stderr));
    assert.match(text, /\n {2}ABI verified \d+\.\d+ \(loader needs \d+\.\d+\)\n/);
    assert.match(text, /\n {2}sha256 {7}[0-9a-f]{64} \(verified against the signed manifest\)\n/);
    const version = [...Deno.readDirSync(out)].find((e) => e.isDirectory)!.name;
    const release = join(out, version);
    const sums = await checkSha256Sums(release);
    assert.equal(sums.ok.length, 4, JSON.stringify(sums));
    assert.deepEqual([sums.failed, sums.malformed], [[], []]);
    await verifyMinisign(
      await Deno.readFile(join(release, "manifest.json")),
      await Deno.readTextFile(join(release, "manifest.json.minisig")),
      [parseMinisignPublicKey(await Deno.readTextFile(join(out, "key.pub")))],
      "manifest.json",
    );
    // Again on the same folder: the same key signs, so what trusted key.pub still does.
    const pub = await Deno.readTextFile(join(out, "key.pub"));
    const again = await new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--out", out],
      cwd: REPO_ROOT,
      env: { KREPIS_KERNEL_PATH: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const againText = new TextDecoder().decode(again.stdout);
    assert.ok(again.success, againText + new TextDecoder().decode(again.stderr));
    assert.match(againText, /\n {2}signing with the key kept in /);
    assert.match(againText, /\n {2}signed by {4}key [0-9A-F]{16} \(kept\)\n/);
    assert.equal(await Deno.readTextFile(join(out, "key.pub")), pub, "key.pub is unchanged");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
