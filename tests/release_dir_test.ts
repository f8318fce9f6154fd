/**
 * What we publish is accepted by the real tools: `sha256sum -c` on
 * SHA256SUMS and `minisign -V` on the manifest signature. And the loader's
 * verifier agrees with minisign on good and bad signatures.
 */

import assert from "node:assert/strict";
import { IntegrityError, parseMinisignPublicKey, verifyMinisign } from "../loader/mod.ts";
import { releaseFixture } from "./_release_fixture.ts";
import { REPO_ROOT } from "../tools/cargo_build.ts";

async function run(command: string, args: string[], cwd: string) {
  const output = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return { code: output.code, text: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

Deno.test("sha256sum -c accepts SHA256SUMS, and catches a damaged file", async () => {
  const fixture = await releaseFixture();
  const ok = await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], fixture.versionDir);
  assert.equal(ok.code, 0, ok.text);
  assert.equal(ok.text.trim().split("\n").length, 4); // library, .zst, .gz, manifest.json
  const copy = await Deno.makeTempDir();
  try {
    await new Deno.Command("cp", { args: ["-R", `${fixture.versionDir}/.`, copy] }).output();
    const manifest = `${copy}/manifest.json`;
    await Deno.writeTextFile(
      manifest,
      (await Deno.readTextFile(manifest)).replace("schema", "schemA"),
    );
    const bad = await run("sha256sum", ["-c", "SHA256SUMS"], copy);
    assert.notEqual(bad.code, 0);
    assert.match(bad.text, /manifest\.json: FAILED/);
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test("minisign -V accepts the manifest signature, and so does the loader", async () => {
  const fixture = await releaseFixture();
  const ok = await run(
    "minisign",
    ["-V", "-m", "manifest.json", "-p", fixture.publicKeyPath],
    fixture.versionDir,
  );
  assert.equal(ok.code, 0, ok.text);
  assert.match(ok.text, /Signature and comment signature verified/);
  const verified = await verifyMinisign(
    await Deno.readFile(`${fixture.versionDir}/manifest.json`),
    await Deno.readTextFile(`${fixture.versionDir}/manifest.json.minisig`),
    [parseMinisignPublicKey(await Deno.readTextFile(fixture.publicKeyPath))],
    "manifest.json",
  );
  assert.match(verified.trustedComment, /file:manifest\.json/);
});

Deno.test("minisign and the loader both refuse a tampered manifest and a tampered trusted comment", async () => {
  const fixture = await releaseFixture();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(`${fixture.versionDir}/manifest.json`, `${dir}/manifest.json`);
    const signature = await Deno.readTextFile(`${fixture.versionDir}/manifest.json.minisig`);
    const keys = [parseMinisignPublicKey(fixture.publicKey)];
    // 1. the manifest changed
    const bytes = await Deno.readFile(`${dir}/manifest.json`);
    bytes[10] ^= 1;
    await Deno.writeFile(`${dir}/manifest.json`, bytes);
    await Deno.writeTextFile(`${dir}/manifest.json.minisig`, signature);
    assert.notEqual(
      (await run("minisign", ["-V", "-m", "manifest.json", "-p", fixture.publicKeyPath], dir)).code,
      0,
    );
    await assert.rejects(verifyMinisign(bytes, signature, keys, "m"), IntegrityError);
    // 2. the trusted comment changed
    await Deno.copyFile(`${fixture.versionDir}/manifest.json`, `${dir}/manifest.json`);
    const altered = signature.replace(
      /^trusted comment: .*$/m,
      "trusted comment: timestamp:0\tfile:evil.json",
    );
    await Deno.writeTextFile(`${dir}/manifest.json.minisig`, altered);
    assert.notEqual(
      (await run("minisign", ["-V", "-m", "manifest.json", "-p", fixture.publicKeyPath], dir)).code,
      0,
    );
    await assert.rejects(
      verifyMinisign(await Deno.readFile(`${dir}/manifest.json`), altered, keys, "m"),
      /the trusted comment signed by key [0-9A-F]{16} was altered/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a signature minisign made itself (prehashed) is refused with a hint, a legacy one verifies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keygen = await new Deno.Command("minisign", {
      args: ["-G", "-W", "-p", `${dir}/k.pub`, "-s", `${dir}/k.key`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(keygen.success, new TextDecoder().decode(keygen.stderr));
    await Deno.writeTextFile(`${dir}/m.json`, '{"hello":1}\n');
    const keys = [parseMinisignPublicKey(await Deno.readTextFile(`${dir}/k.pub`))];
    const message = await Deno.readFile(`${dir}/m.json`);
    for (const [flags, accepted] of [[[], false], [["-l"], true]] as const) {
      const sign = await run(
        "minisign",
        ["-S", ...flags, "-s", `${dir}/k.key`, "-m", "m.json"],
        dir,
      );
      assert.equal(sign.code, 0, sign.text);
      const signature = await Deno.readTextFile(`${dir}/m.json.minisig`);
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
});

Deno.test("deno task demo --out runs the whole flow and keeps a verifiable release", async () => {
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
    assert.equal(
      (await run("minisign", ["-Vm", "manifest.json", "-p", `${out}/key.pub`], `${out}/${version}`))
        .code,
      0,
    );
    assert.equal((await run("sha256sum", ["-c", "SHA256SUMS"], `${out}/${version}`)).code, 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
