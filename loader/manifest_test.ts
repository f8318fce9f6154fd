import assert from "node:assert/strict";
import { IntegrityError } from "./errors.ts";
import {
  formatManifest,
  type Manifest,
  MANIFEST_SCHEMA_VERSION,
  manifestTrustedComment,
  parseManifest,
} from "./manifest.ts";

const hex = (c: string) => c.repeat(64);

function manifest(): Manifest {
  return {
    schema: MANIFEST_SCHEMA_VERSION,
    version: "1.2.3",
    abi: { major: 1, minor: 0, fingerprint: hex("a") },
    targets: [{
      triple: "x86_64-unknown-linux-gnu",
      os: "linux",
      arch: "x86_64",
      libc: "gnu",
      file: "libkrepis_kernel-x86_64-unknown-linux-gnu.so",
      size: 1000,
      sha256: hex("b"),
      compressed: {
        zstd: {
          file: "libkrepis_kernel-x86_64-unknown-linux-gnu.so.zst",
          size: 400,
          sha256: hex("c"),
        },
      },
    }],
  };
}

Deno.test("formatManifest and parseManifest round-trip a manifest, and the text is stable", () => {
  const text = formatManifest(manifest());
  assert.deepEqual(parseManifest(text), manifest());
  assert.equal(formatManifest(parseManifest(text)), text);
});

Deno.test("parseManifest refuses what is not a manifest of this schema, naming the field", () => {
  const cases: [unknown, RegExp][] = [
    ["{", /is not JSON/],
    [{ ...manifest(), schema: 2 }, /schema 2 is not the supported schema 1/],
    [{ ...manifest(), version: "one" }, /version/],
    [{ ...manifest(), abi: { ...manifest().abi, fingerprint: "xyz" } }, /abi\.fingerprint/],
    [{ ...manifest(), targets: [manifest().targets[0], manifest().targets[0]] }, /a second time/],
    [{ ...manifest(), targets: "none" }, /targets/],
  ];
  for (const [value, pattern] of cases) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(() => parseManifest(text), (e) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.match(e.message, /^Cannot read the release manifest/);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

Deno.test("manifestTrustedComment names the file and the version, nothing that changes between runs", () => {
  assert.equal(manifestTrustedComment("1.2.3"), "file:manifest.json\tversion:1.2.3");
  assert.equal(manifestTrustedComment("1.2.3"), manifestTrustedComment("1.2.3"));
});
