/** One verified, decompressing download from a real loopback server into a real file. */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { IntegrityError } from "../errors.ts";
import type { Progress } from "../types.ts";
import { type Candidate, downloadVerified } from "./download.ts";

const library = new Uint8Array(200_000).map((_, i) => (i * 31) % 251);
const gzipped = new Uint8Array(gzipSync(library));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Serves the library and its gzip copy on loopback; runs `body` with a temp folder. */
async function withRelease(
  body: (base: URL, dir: string, served: { count: number }) => Promise<void>,
): Promise<void> {
  const served = { count: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    served.count++;
    const path = new URL(request.url).pathname;
    if (path === "/lib.so") return new Response(library);
    if (path === "/lib.so.gz") return new Response(gzipped);
    if (path === "/damaged.so") return new Response(library.map((b, i) => i === 7 ? b ^ 1 : b));
    return new Response("no such file", { status: 404 });
  });
  const dir = await Deno.makeTempDir({ prefix: "krepis-download-" });
  try {
    await body(new URL(`http://127.0.0.1:${server.addr.port}/`), dir, served);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

async function download(dir: string, candidate: Candidate, progress: Progress[] = []) {
  const outPath = join(dir, "out");
  const out = await Deno.open(outPath, { write: true, create: true, truncate: true });
  try {
    await downloadVerified({
      candidate,
      raw: { size: library.length, sha256: sha256(library) },
      partialPath: join(dir, "out.partial"),
      out,
      tuning: {
        attempts: 2,
        baseDelayMs: 1,
        connectMs: 5000,
        idleMs: 5000,
        deadline: Date.now() + 30_000,
      },
      onProgress: (p) => progress.push({ ...p }),
    });
  } finally {
    out.close();
  }
  return await Deno.readFile(outPath);
}

Deno.test("downloadVerified writes the library from its gzip copy and from itself, reporting progress", async () => {
  await withRelease(async (base, dir) => {
    const progress: Progress[] = [];
    const fromGzip = await download(dir, {
      url: new URL("lib.so.gz", base),
      compression: "gzip",
      size: gzipped.length,
      sha256: sha256(gzipped),
    }, progress);
    assert.deepEqual(fromGzip, library);
    assert.equal(progress.at(-1)?.received, gzipped.length);
    const plain = await download(dir, {
      url: new URL("lib.so", base),
      compression: null,
      size: library.length,
      sha256: sha256(library),
    });
    assert.deepEqual(plain, library);
  });
});

Deno.test("downloadVerified refuses damaged bytes with a hint, and asks for a missing file once", async () => {
  await withRelease(async (base, dir, served) => {
    await assert.rejects(
      download(dir, {
        url: new URL("damaged.so", base),
        compression: null,
        size: library.length,
        sha256: sha256(library),
      }),
      (e) => e instanceof IntegrityError && /^Cannot verify /.test(e.message) && e.hint !== null,
    );
    const before = served.count;
    await assert.rejects(
      download(dir, {
        url: new URL("missing.so", base),
        compression: null,
        size: 1,
        sha256: "0".repeat(64),
      }),
      /404/,
    );
    assert.equal(served.count - before, 1, "a 404 is asked once");
  });
});
