/**
 * Trust decisions on real minisign signatures (made with WebCrypto's
 * Ed25519 by the release step's signer) and real cache files.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { IntegrityError, UnsupportedPlatformError } from "../errors.ts";
import { LOADER_ABI } from "../abi.ts";
import { formatManifest, type Manifest, manifestTrustedComment } from "../manifest.ts";
import { parseMinisignPublicKey } from "../minisign.ts";
import { targetByTriple } from "../platform.ts";
import { TARGETS } from "../_gen/targets.ts";
import { cachedTrust, releaseEntry, verifyManifestSignature } from "./trust.ts";
import { generateSigningKey, publicKeyBase64, signMinisign } from "../../release/minisign_sign.ts";

const VERSION = "1.2.3";
const target = TARGETS[0];
const hex = (c: string) => c.repeat(64);

function manifestFor(version = VERSION, abi = { ...LOADER_ABI }): Manifest {
  return {
    schema: 1,
    version,
    abi,
    targets: TARGETS.map((t, i) => ({
      triple: t.triple,
      os: t.os,
      arch: t.arch,
      libc: t.libc,
      file: t.file,
      size: 1000 + i,
      sha256: hex(String(i % 10)),
      compressed: {
        zstd: { file: `${t.file}.zst`, size: 500, sha256: hex("a") },
        gzip: { file: `${t.file}.gz`, size: 600, sha256: hex("b") },
      },
    })),
  };
}

async function signed(manifest: Manifest, comment = manifestTrustedComment(manifest.version)) {
  const key = await generateSigningKey();
  const bytes = new TextEncoder().encode(formatManifest(manifest));
  return { key, bytes, signature: await signMinisign(key, bytes, comment) };
}

Deno.test("verifyManifestSignature accepts only a trusted key's signature of this release's manifest.json", async () => {
  const { key, bytes, signature } = await signed(manifestFor());
  const keys = [parseMinisignPublicKey(publicKeyBase64(key))];
  assert.equal(
    await verifyManifestSignature(bytes, signature, keys, VERSION, "manifest.json"),
    parseMinisignPublicKey(publicKeyBase64(key)).keyId,
  );

  // A flipped byte of the manifest, at each end and in the middle.
  for (const at of [0, bytes.length >> 1, bytes.length - 1]) {
    const flipped = bytes.slice();
    flipped[at] ^= 1;
    await assert.rejects(
      () => verifyManifestSignature(flipped, signature, keys, VERSION, "manifest.json"),
      IntegrityError,
    );
  }
  // Another key.
  const other = await generateSigningKey();
  await assert.rejects(
    () =>
      verifyManifestSignature(
        bytes,
        signature,
        [
          parseMinisignPublicKey(publicKeyBase64(other)),
        ],
        VERSION,
        "manifest.json",
      ),
    IntegrityError,
  );
  // A valid signature whose trusted comment names another release or file.
  for (
    const comment of [
      manifestTrustedComment("9.9.9"),
      "file:SHA256SUMS\tversion:1.2.3",
      "",
      "timestamp:1 file:manifest.json",
    ]
  ) {
    const other = await signed(manifestFor(), comment);
    await assert.rejects(
      () =>
        verifyManifestSignature(
          other.bytes,
          other.signature,
          [parseMinisignPublicKey(publicKeyBase64(other.key))],
          VERSION,
          "manifest.json",
        ),
      (e: Error) =>
        e instanceof IntegrityError && /does not name manifest\.json of version/.test(e.message),
    );
  }
});

Deno.test("releaseEntry refuses an entry that differs from the loader's table or pin", () => {
  const manifest = manifestFor();
  const entry = releaseEntry(manifest, target, undefined);
  assert.equal(entry.triple, target.triple);

  const without = {
    ...manifest,
    targets: manifest.targets.filter((t) => t.triple !== target.triple),
  };
  assert.throws(() => releaseEntry(without, target, undefined), (e: Error) => {
    assert.ok(e instanceof UnsupportedPlatformError);
    assert.match(
      e.message,
      new RegExp(`does not include it \\(it has ${without.targets[0].triple}`),
    );
    return true;
  });
  const changed = (change: Partial<Manifest["targets"][number]>) => ({
    ...manifest,
    targets: manifest.targets.map((t) => t.triple === target.triple ? { ...t, ...change } : t),
  });
  for (
    const [change, field] of [
      [{ file: "libother.so" }, "file"],
      [{ arch: target.arch === "x86_64" ? "aarch64" : "x86_64" }, "platform"],
      [{ os: target.os === "linux" ? "darwin" : "linux" }, "platform"],
      [
        { compressed: { zstd: { file: "evil.zst", size: 1, sha256: hex("c") } } },
        "compressed.zstd.file",
      ],
      [
        { compressed: { gzip: { file: `${target.file}.zst`, size: 1, sha256: hex("c") } } },
        "compressed.gzip.file",
      ],
    ] as const
  ) {
    assert.throws(
      () => releaseEntry(changed(change), target, undefined),
      (e: Error) => e instanceof IntegrityError && e.message.includes(`its ${field} is `),
    );
  }
  const pin = { size: entry.size, sha256: entry.sha256 };
  releaseEntry(manifest, target, pin);
  for (const other of [{ ...pin, sha256: hex("e") }, { ...pin, size: pin.size + 1 }]) {
    assert.throws(
      () => releaseEntry(manifest, target, other),
      (e: Error) => e instanceof IntegrityError && /not the one pinned/.test(e.message),
    );
  }
});

Deno.test("cachedTrust: the cached manifest vouches only while its signature verifies with a trusted key", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-trust-" });
  try {
    const { key, bytes, signature } = await signed(manifestFor());
    const keys = [parseMinisignPublicKey(publicKeyBase64(key))];
    const dir = join(root, VERSION);
    await Deno.mkdir(dir);

    // Nothing cached: nothing vouches, and nothing was refused.
    let why: { rejected?: string } = {};
    assert.equal(await cachedTrust(root, VERSION, target, keys, undefined, why), null);
    assert.equal(why.rejected, undefined);

    await Deno.writeFile(join(dir, "manifest.json"), bytes);
    await Deno.writeTextFile(join(dir, "manifest.json.minisig"), signature);
    const trusted = await cachedTrust(root, VERSION, target, keys, undefined);
    assert.deepEqual(trusted, {
      size: 1000,
      sha256: hex("0"),
      trust: `signature by key ${keys[0].keyId}`,
      abi: { ...LOADER_ABI },
    });

    // A key no longer trusted: refused, and why says so.
    const other = parseMinisignPublicKey(publicKeyBase64(await generateSigningKey()));
    why = {};
    assert.equal(await cachedTrust(root, VERSION, target, [other], undefined, why), null);
    assert.match(why.rejected ?? "", /^Cannot verify/);

    // A pin vouches alone; the signed ABI still comes along while it verifies.
    const pin = { size: 7, sha256: hex("7") };
    assert.deepEqual(await cachedTrust(root, VERSION, target, [other], pin), {
      ...pin,
      trust: "pinned",
      abi: null,
    });
    assert.deepEqual(await cachedTrust(root, VERSION, target, keys, pin), {
      ...pin,
      trust: "pinned",
      abi: { ...LOADER_ABI },
    });

    // A target the release does not ship, or whose file differs: nothing.
    const missing = { ...targetByTriple(TARGETS[1].triple), triple: "riscv64gc-unknown-linux-gnu" };
    assert.equal(await cachedTrust(root, VERSION, missing, keys, undefined), null);
    assert.equal(
      await cachedTrust(root, VERSION, { ...target, file: "libx.so" }, keys, undefined),
      null,
    );

    // A signed manifest of another version, cached under this one: nothing.
    const stray = await signed(manifestFor("9.9.9"));
    await Deno.writeFile(join(dir, "manifest.json"), stray.bytes);
    await Deno.writeTextFile(join(dir, "manifest.json.minisig"), stray.signature);
    why = {};
    assert.equal(
      await cachedTrust(
        root,
        VERSION,
        target,
        [parseMinisignPublicKey(publicKeyBase64(stray.key))],
        undefined,
        why,
      ),
      null,
    );
    assert.match(why.rejected ?? "", /does not name manifest\.json of version 1\.2\.3/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "cachedTrust: a FIFO or an oversized file at the manifest's name is ignored, never read",
  ignore: Deno.build.os === "windows", // no mkfifo on Windows
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "krepis-trust-" });
    try {
      const { key, signature } = await signed(manifestFor());
      const keys = [parseMinisignPublicKey(publicKeyBase64(key))];
      const dir = join(root, VERSION);
      await Deno.mkdir(dir);
      await Deno.writeTextFile(join(dir, "manifest.json.minisig"), signature);
      const made = await new Deno.Command("mkfifo", { args: [join(dir, "manifest.json")] })
        .output();
      assert.ok(made.success);
      assert.equal(await cachedTrust(root, VERSION, target, keys, undefined), null);
      await Deno.remove(join(dir, "manifest.json"));
      await Deno.writeFile(join(dir, "manifest.json"), new Uint8Array(1024 * 1024 + 1));
      assert.equal(await cachedTrust(root, VERSION, target, keys, undefined), null);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
