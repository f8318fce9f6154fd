/**
 * Transfers over real HTTP on loopback (the release step's own host, with
 * faults injected per request) into real files.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { IntegrityError, NetworkError } from "../errors.ts";
import { formatManifest, type Manifest, manifestTrustedComment } from "../manifest.ts";
import { parseMinisignPublicKey } from "../minisign.ts";
import { TARGETS } from "../_gen/targets.ts";
import { fetchLibrary, fetchManifest, fetchSmall, releaseBase } from "./transfer.ts";
import { generateSigningKey, publicKeyBase64, signMinisign } from "../../release/minisign_sign.ts";
import { ReleaseHost } from "../../release/serve_dir.ts";

const VERSION = "1.2.3";
const target = TARGETS[0];
const tuning = () => ({
  attempts: 3,
  baseDelayMs: 1,
  connectMs: 5000,
  idleMs: 5000,
  deadline: Date.now() + 30_000,
});

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A release directory on disk: the library, its gzip copy, a signed manifest. */
async function release(root: string) {
  const library = new Uint8Array(200_000);
  for (let at = 0; at < library.length; at += 65536) {
    crypto.getRandomValues(library.subarray(at, at + 65536));
  }
  const gz = gzipSync(library);
  const entry = {
    triple: target.triple,
    os: target.os,
    arch: target.arch,
    libc: target.libc,
    file: target.file,
    size: library.length,
    sha256: await sha256(library),
    compressed: {
      // Listed but absent from the host: the loader must fall back to gzip.
      zstd: { file: `${target.file}.zst`, size: 10, sha256: "a".repeat(64) },
      gzip: { file: `${target.file}.gz`, size: gz.length, sha256: await sha256(gz) },
    },
  };
  const manifest: Manifest = {
    schema: 1,
    version: VERSION,
    abi: { major: 1, minor: 0, fingerprint: "0".repeat(64) },
    targets: [entry],
  };
  const key = await generateSigningKey();
  const bytes = new TextEncoder().encode(formatManifest(manifest));
  const dir = join(root, `v${VERSION}`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, "manifest.json"), bytes);
  await Deno.writeTextFile(
    join(dir, "manifest.json.minisig"),
    await signMinisign(key, bytes, manifestTrustedComment(VERSION)),
  );
  await Deno.writeFile(join(dir, target.file), library);
  await Deno.writeFile(join(dir, `${target.file}.gz`), gz);
  return { library, entry, keys: [parseMinisignPublicKey(publicKeyBase64(key))] };
}

async function withHost(
  body: (host: ReleaseHost, base: URL, root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "krepis-transfer-" });
  const host = ReleaseHost.start(root);
  try {
    await body(host, releaseBase(host.url, VERSION), root);
  } finally {
    await host.close();
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("releaseBase: https except on loopback", () => {
  assert.equal(
    releaseBase("https://mirror.example/krepis//", VERSION).href,
    "https://mirror.example/krepis/v1.2.3/",
  );
  assert.equal(releaseBase("http://127.0.0.1:8/r/", VERSION).href, "http://127.0.0.1:8/r/v1.2.3/");
  assert.equal(releaseBase("http://[::1]:8", VERSION).href, "http://[::1]:8/v1.2.3/");
  for (const refused of ["http://mirror.example/", "ftp://127.0.0.1/", "file:///tmp/"]) {
    assert.throws(() => releaseBase(refused, VERSION), NetworkError);
  }
});

Deno.test("fetchSmall: retries 5xx, not 404, and never reads past its cap", async () => {
  await withHost(async (host, base, root) => {
    await Deno.mkdir(join(root, `v${VERSION}`));
    await Deno.writeTextFile(join(root, `v${VERSION}`, "small.txt"), "0123456789");
    host.fault = ({ file, count }) =>
      file === "small.txt" && count < 2 ? new Response("busy", { status: 503 }) : undefined;
    assert.equal(
      new TextDecoder().decode(await fetchSmall(new URL("small.txt", base), 10, tuning())),
      "0123456789",
    );
    assert.equal(host.requestsFor("small.txt").length, 3);

    await assert.rejects(
      () => fetchSmall(new URL("small.txt", base), 9, tuning()),
      (e: Error) => e instanceof IntegrityError && /larger than 9 bytes/.test(e.message),
    );
    const before = host.requestsFor("absent.txt").length;
    await assert.rejects(
      () => fetchSmall(new URL("absent.txt", base), 10, tuning()),
      (e: Error) => e instanceof NetworkError && /404/.test(e.message),
    );
    assert.equal(host.requestsFor("absent.txt").length - before, 1);
  });
});

Deno.test("fetchManifest: a signature must verify unless a pin vouches; the version must match", async () => {
  await withHost(async (host, base, root) => {
    const { entry, keys } = await release(root);
    const fetched = await fetchManifest(base, VERSION, keys, undefined, tuning());
    assert.equal(fetched.trust, `signature by key ${keys[0].keyId}`);
    assert.equal(fetched.manifest.targets[0].sha256, entry.sha256);

    // No signature served: an error without a pin, pinned trust with one.
    host.fault = ({ file }) =>
      file === "manifest.json.minisig" ? new Response("gone", { status: 404 }) : undefined;
    await assert.rejects(
      () => fetchManifest(base, VERSION, keys, undefined, tuning()),
      NetworkError,
    );
    const pinned = await fetchManifest(base, VERSION, keys, entry, tuning());
    assert.equal(pinned.trust, "pinned");
    assert.equal(pinned.signature, null);

    // A key that did not sign: refused without a pin.
    host.fault = undefined;
    const stranger = parseMinisignPublicKey(publicKeyBase64(await generateSigningKey()));
    await assert.rejects(
      () => fetchManifest(base, VERSION, [stranger], undefined, tuning()),
      IntegrityError,
    );

    // The same release served under another version's path.
    await Deno.rename(join(root, `v${VERSION}`), join(root, "v2.0.0"));
    await assert.rejects(
      () => fetchManifest(new URL("../v2.0.0/", base), "2.0.0", keys, entry, tuning()),
      (e: Error) =>
        e instanceof IntegrityError && /describes version 1\.2\.3, not 2\.0\.0/.test(e.message),
    );
  });
});

Deno.test("fetchLibrary: a missing zstd copy falls back to gzip; damaged bytes are never committed", async () => {
  await withHost(async (host, base, root) => {
    const { library, entry } = await release(root);
    const cache = join(root, "cache");
    await Deno.mkdir(cache);
    const finalPath = join(cache, target.file);
    const source = await fetchLibrary(base, entry, finalPath, tuning(), () => {});
    assert.equal(source, new URL(`${target.file}.gz`, base).href);
    assert.deepEqual(await Deno.readFile(finalPath), library);
    assert.deepEqual(host.served.map((s) => [s.path.split("/").pop(), s.status]).slice(-2), [
      [`${target.file}.zst`, 404],
      [`${target.file}.gz`, 200],
    ]);
    assert.deepEqual([...Deno.readDirSync(cache)].map((e) => e.name), [target.file]);

    // Every copy damaged in one byte: an IntegrityError, and nothing at the final path.
    const again = join(cache, "again", target.file);
    await Deno.mkdir(join(cache, "again"));
    host.fault = ({ body, file }) => {
      if (!body || file.startsWith("manifest")) return undefined;
      const damaged = body.slice();
      damaged[damaged.length >> 1] ^= 0x40;
      return new Response(damaged);
    };
    await assert.rejects(
      () => fetchLibrary(base, entry, again, tuning(), () => {}),
      (e: Error) => e instanceof IntegrityError && /SHA-256/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(join(cache, "again"))], []);
  });
});
