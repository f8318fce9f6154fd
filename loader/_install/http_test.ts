/** The HTTP rules on a real loopback server: redirects by hand, caps, and the URL policy. */

import assert from "node:assert/strict";
import { NetworkError } from "../errors.ts";
import {
  checkUrl,
  fetchFollowing,
  isLoopback,
  parseMirror,
  PolicyError,
  readCapped,
} from "./http.ts";

/** Serves `handler` on a loopback port for the length of `body`. */
async function withServer(
  handler: (request: Request) => Response,
  body: (base: URL) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  try {
    await body(new URL(`http://127.0.0.1:${server.addr.port}/`));
  } finally {
    await server.shutdown();
  }
}

Deno.test("checkUrl allows https anywhere and http only on loopback", () => {
  for (
    const ok of [
      "https://example.com/x",
      "http://127.0.0.1:8/",
      "http://[::1]/",
      "http://localhost/",
    ]
  ) {
    checkUrl(new URL(ok));
    if (ok.startsWith("http:")) assert.ok(isLoopback(new URL(ok)), ok);
  }
  for (
    const refused of ["http://example.com/", "ftp://127.0.0.1/", "http://127.0.0.1.example.com/"]
  ) {
    assert.throws(() => checkUrl(new URL(refused)), (e) => {
      assert.ok(e instanceof PolicyError && e instanceof NetworkError, refused);
      assert.equal(e.hint, "set KREPIS_MIRROR to an https:// URL");
      return true;
    });
  }
});

Deno.test("parseMirror reads a URL, and says how to write one that lacks its scheme", () => {
  assert.equal((parseMirror("https://mirror.example/r") as URL).href, "https://mirror.example/r");
  assert.match(
    parseMirror("mirror.example/r") as string,
    /\nHint: write the scheme, e.g. https:\/\/mirror\.example\/r$/,
  );
  assert.match(parseMirror("127.0.0.1:8080") as string, /e\.g\. http:\/\/127\.0\.0\.1:8080$/);
  assert.match(
    parseMirror("ftp://x/") as string,
    /^Cannot use the mirror "ftp:\/\/x\/": it is not an http/,
  );
});

Deno.test("fetchFollowing follows redirects by hand and refuses an endless chain", async () => {
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/a") return Response.redirect(new URL("/b", request.url), 302);
    if (path === "/loop") return Response.redirect(new URL("/loop", request.url), 302);
    return new Response("hi");
  }, async (base) => {
    const { response, url } = await fetchFollowing(
      new URL("a", base),
      {},
      5000,
      new AbortController(),
    );
    assert.equal(url.pathname, "/b");
    assert.equal(await response.text(), "hi");
    await assert.rejects(
      fetchFollowing(new URL("loop", base), {}, 5000, new AbortController()),
      (e) => e instanceof PolicyError && /more than 5 redirects/.test(e.message),
    );
  });
});

Deno.test("readCapped reads a body up to its cap and refuses one above it, announced or not", async () => {
  const body = new Uint8Array(100).fill(7);
  await withServer((request) => {
    if (new URL(request.url).pathname === "/stream") {
      // No Content-Length: the cap is found while reading.
      return new Response(ReadableStream.from([body.subarray(0, 50), body.subarray(50)]));
    }
    return new Response(body);
  }, async (base) => {
    const read = async (path: string, cap: number) => {
      const controller = new AbortController();
      const { response } = await fetchFollowing(new URL(path, base), {}, 5000, controller);
      return await readCapped(response, cap, 5000, controller, () => new Error("too large"));
    };
    assert.deepEqual(await read("whole", 100), body);
    await assert.rejects(read("whole", 99), /too large/);
    assert.deepEqual(await read("stream", 100), body);
    await assert.rejects(read("stream", 60), /too large/);
  });
});
