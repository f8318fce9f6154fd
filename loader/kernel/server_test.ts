import assert from "node:assert/strict";
import { KernelError, load, ServerError } from "../mod.ts";
import { decodeResponse, encodeRequest, type RequestInit } from "../_gen/messages.ts";
import { kernelFeatures, kernelPath, kernelTarget } from "../../tests/_kernel.ts";
import { freePort } from "../../tests/_net.ts";
import { runScript } from "../../tests/_script.ts";
import { skipIf, when } from "../../tests/_tools.ts";

// This target's release kernel (and so the kernel the tests build) may be
// built without the engine: then the refusal is what is tested.
const ENGINE = (await kernelFeatures())?.includes("server") ?? true;
const NO_ENGINE = when(!ENGINE, `the ${kernelTarget()} kernel has no server engine`);

/** A `Deno.serve` upstream answering `name` (after `delayMs`, if given). */
function upstream(
  name: string,
  delayMs = 0,
): Deno.HttpServer<Deno.NetAddr> & { at: string; received: () => number } {
  let received = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    received++;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return new Response(`${name} ${new URL(request.url).pathname}`);
  });
  return Object.assign(server, { at: `127.0.0.1:${server.addr.port}`, received: () => received });
}

/** Waits until `condition` holds (the test's own timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** GET through the proxy; the body is always read (no leaked resources). */
async function get(server: { address: Deno.NetAddr }, path = "/"): Promise<[number, string]> {
  const response = await fetch(`http://127.0.0.1:${server.address.port}${path}`);
  return [response.status, await response.text()];
}

/** Whether something accepts connections on `port`. */
async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch (error) {
    assert.ok(error instanceof Deno.errors.ConnectionRefused, String(error));
    return false;
  }
}

function refuses(reason: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ServerError, String(error));
    assert.equal(error.code, "SERVER");
    assert.equal(error.reason, reason);
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test(
  skipIf("a real kernel proxies requests round-robin to Deno.serve upstreams", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    assert.ok(kernel.buildInfo().capabilities.includes("server"));
    await using a = upstream("a");
    await using b = upstream("b");
    const server = kernel.server.start({ listen: "127.0.0.1:0", upstreams: [a.at, b.at] });
    assert.equal(server.address.transport, "tcp");
    assert.equal(server.address.hostname, "127.0.0.1");
    assert.ok(server.address.port > 0, "port 0 was replaced by the bound port");
    const bodies = [];
    for (let i = 0; i < 6; i++) {
      const [status, body] = await get(server, `/path/${i}`);
      assert.equal(status, 200);
      bodies.push(body);
    }
    // Each upstream in turn, the path passed through.
    const first = bodies[0].split(" ")[0];
    const second = first === "a" ? "b" : "a";
    assert.deepEqual(
      bodies,
      [0, 1, 2, 3, 4, 5].map((i) => `${i % 2 === 0 ? first : second} /path/${i}`),
    );
    const stats = await server.stop();
    assert.equal(stats.requests, 6);
    assert.equal(stats.upstreamErrors, 0);
    assert.equal(stats.activeConnections, 0);
    assert.ok(server.closed);
    assert.equal(await listening(server.address.port), false, "the port was released");
    assert.deepEqual(server.stats(), stats, "a stopped server keeps its last count");
  },
);

Deno.test(
  skipIf(
    "an upstream that is down is skipped and counted; all down is a 502 that says why",
    NO_ENGINE,
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using live = upstream("live");
    const down = `127.0.0.1:${freePort()}`;
    {
      await using server = kernel.server.start({ upstreams: [down, live.at] });
      for (let i = 0; i < 4; i++) assert.deepEqual(await get(server), [200, "live /"]);
      // The count of a request is made just after its answer is sent.
      await until(() => server.stats().requests === 4);
      // Round-robin starts every second request at the dead one: skipped.
      assert.equal(server.stats().upstreamErrors, 2);
    }
    const alsoDown = `127.0.0.1:${freePort()}`;
    await using server = kernel.server.start({ upstreams: [down, alsoDown] });
    const [status, body] = await get(server, "/x");
    assert.equal(status, 502);
    assert.equal(
      body,
      "502 Bad Gateway: no upstream answered this request (2 tried; last error: connection refused)\n",
    );
    // Any client may read it: no upstream address is given away.
    assert.ok(!body.includes("127.0.0.1"), body);
    await until(() => server.stats().requests === 1);
    assert.equal(server.stats().upstreamErrors, 2);
  },
);

Deno.test(
  skipIf("an upstream that drops the connection or answers garbage gives a 502", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    const cases: [string, string][] = [
      ["", "502"],
      ["not http at all\r\n\r\n", "502"],
      // A 200 header was already passed on: the client sees the body cut.
      ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "200, then cut"],
    ];
    for (const [reply, expected] of cases) {
      const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const serving = (async () => {
        for await (const connection of raw) {
          // Read the request, answer `reply`, hang up.
          await connection.read(new Uint8Array(4096));
          if (reply) await connection.write(new TextEncoder().encode(reply)).catch(() => {});
          connection.close();
        }
      })();
      await using server = kernel.server.start({
        upstreams: [`127.0.0.1:${(raw.addr as Deno.NetAddr).port}`],
      });
      const response = await fetch(`http://127.0.0.1:${server.address.port}/`);
      const body = await response.text().then((text) => text, () => null);
      const outcome = response.status === 200 && body === null
        ? "200, then cut"
        : `${response.status}`;
      assert.equal(outcome, expected, `${JSON.stringify(reply)}: ${body}`);
      if (expected === "502") assert.match(body!, /^502 Bad Gateway: no upstream answered/);
      await until(() => server.stats().requests === 1);
      assert.equal(server.stats().upstreamErrors, 1, JSON.stringify(reply));
      raw.close();
      await serving;
    }
  },
);

Deno.test(
  skipIf("a port in use is a Cannot error with a hint, and nothing is left listening", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    assert.throws(
      () => kernel.server.start({ listen: `127.0.0.1:${port}`, upstreams: ["127.0.0.1:9"] }),
      refuses(
        "FAILED",
        new RegExp(
          `^Cannot start the server: cannot listen on 127\\.0\\.0\\.1:${port} \\(.*\\) \\(FAILED\\)\\nHint: another process`,
        ),
      ),
    );
    taken.close();
    // The kernel kept nothing: the port is free, and a server can take it now.
    const again = Deno.listen({ hostname: "127.0.0.1", port });
    again.close();
    await using server = kernel.server.start({
      listen: `127.0.0.1:${port}`,
      upstreams: ["127.0.0.1:9"],
    });
    assert.equal(server.address.port, port);
    // A server cannot be its own upstream (each request would loop).
    const free = freePort();
    for (
      const [listen, upstream] of [["127.0.0.1", "127.0.0.1"], ["0.0.0.0", "127.0.0.1"], [
        "127.0.0.1",
        "0.0.0.0",
      ]]
    ) {
      assert.throws(
        () =>
          kernel.server.start({ listen: `${listen}:${free}`, upstreams: [`${upstream}:${free}`] }),
        refuses("FAILED", /^Cannot start the server: upstream .* is the server itself[^]*\nHint: /),
      );
      assert.equal(await listening(free), false, "nothing was left listening");
    }
  },
);

Deno.test(
  skipIf("malformed addresses and options are refused before anything listens", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    const listens = [
      "",
      "127.0.0.1",
      "localhost:8080",
      "127.0.0.1:99999",
      "1.2.3.4:x",
      "::1:80",
      " 127.0.0.1:80",
      "127.0.0.1:80/",
      "[::1]",
      "http://127.0.0.1:80",
      "127.0.0.1:-1",
      "\0",
    ];
    for (const listen of listens) {
      assert.throws(
        () => kernel.server.start({ listen, upstreams: ["127.0.0.1:9"] }),
        refuses("FAILED", /^Cannot start the server: listen address .* is not an ip:port address/),
        JSON.stringify(listen),
      );
    }
    const upstreamLists: [string[], RegExp][] = [
      [[], /no upstreams given/],
      [["localhost:80"], /upstream "localhost:80" is not an ip:port address/],
      [["127.0.0.1:0"], /upstream 127\.0\.0\.1:0 has port 0/],
      [["127.0.0.1:9", "127.0.0.1:9"], /upstream 127\.0\.0\.1:9 is listed twice/],
      [
        ["[::1]:x"],
        /upstream "\[::1\]:x" is not an ip:port address/,
      ],
    ];
    for (const [upstreams, pattern] of upstreamLists) {
      assert.throws(
        () => kernel.server.start({ upstreams }),
        refuses("FAILED", new RegExp(`^Cannot start the server: ${pattern.source}[^]*\\nHint: `)),
      );
    }
    for (const threads of [-1, 0.5, 257, Number.NaN]) {
      assert.throws(() => kernel.server.start({ upstreams: ["127.0.0.1:9"], threads }), RangeError);
    }
    for (const upstreams of [undefined, "127.0.0.1:9", [9]]) {
      assert.throws(
        // deno-lint-ignore no-explicit-any
        () => kernel.server.start({ upstreams } as any),
        TypeError,
      );
    }
    // The kernel refuses on its own too (a caller may skip the loader).
    // krepis.v1.Request { server_start: { listen: "x" } }
    assert.throws(
      () => kernel.callRaw(new Uint8Array([0x72, 0x03, 0x0a, 0x01, 0x78])),
      (error: unknown) => {
        assert.ok(error instanceof KernelError);
        assert.equal(error.codeName, "FAILED");
        return true;
      },
    );
    // And still works.
    await using server = kernel.server.start({ upstreams: ["127.0.0.1:9"], threads: 1 });
    assert.ok(server.address.port > 0);
  },
);

Deno.test(
  skipIf("stop() lets a slow request finish, refuses new ones, then releases the port", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using slow = upstream("slow", 400);
    const server = kernel.server.start({ upstreams: [slow.at] });
    const port = server.address.port;
    const inFlight = get(server, "/slow");
    // In flight: the proxy forwarded it and the upstream is working on it.
    await until(() => slow.received() === 1);
    const stopping = server.stop({ graceMs: 10_000 });
    assert.equal(server.stop(), stopping, "a second stop() is the same stop");
    assert.equal(await listening(port), false, "new connections are refused at once");
    assert.deepEqual(await inFlight, [200, "slow /slow"]);
    const stats = await stopping;
    assert.equal(stats.requests, 1);
    assert.equal(stats.activeConnections, 0);
    assert.ok(server.closed);
    assert.throws(() => server.stop({ graceMs: -1 }), RangeError);
    assert.deepEqual(await server.stop(), stats);
  },
);

Deno.test(
  skipIf("stop() cuts a request that outlives the grace period", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using stuck = upstream("stuck", 1_500);
    const server = kernel.server.start({ upstreams: [stuck.at] });
    const inFlight = fetch(`http://127.0.0.1:${server.address.port}/`).then(
      (response) => response.text(),
      (error) => error,
    );
    await until(() => stuck.received() === 1);
    const stats = await server.stop({ graceMs: 50 });
    assert.equal(stats.activeConnections, 0);
    assert.ok((await inFlight) instanceof TypeError, "the client saw its connection cut");
  },
);

/** The threads of this process, where the OS shows them cheaply. */
function threadCount(): number | null {
  if (Deno.build.os !== "linux") return null;
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(status.match(/^Threads:\s+(\d+)$/m)![1]);
}

Deno.test(
  skipIf("start and stop in a loop leaks no threads, ports, handles or memory", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using a = upstream("a");
    const port = freePort();
    const cycle = async () => {
      // The same port each time: each stop must have released it.
      const server = kernel.server.start({
        listen: `127.0.0.1:${port}`,
        upstreams: [a.at],
        threads: 2,
      });
      assert.deepEqual(await get(server), [200, "a /"]);
      await server.stop({ graceMs: 1000 });
    };
    // Warm up: Pingora's one timer thread, Deno's fetch pool.
    for (let i = 0; i < 5; i++) await cycle();
    const threads = threadCount();
    const rss = Deno.memoryUsage().rss;
    const cycles = 40;
    for (let i = 0; i < cycles; i++) await cycle();
    const grownThreads = threadCount();
    if (threads !== null && grownThreads !== null) {
      // Each server has 2 workers (and tokio's blocking threads): a leak of
      // any of them would add at least `cycles` threads.
      assert.ok(grownThreads <= threads + 4, `threads ${threads} -> ${grownThreads}`);
    }
    const grown = Deno.memoryUsage().rss - rss;
    // A leaked runtime, proxy or connection per cycle would be megabytes
    // each; allocator noise is far below this bound.
    assert.ok(grown < 24 * 1024 * 1024, `rss grew ${grown} bytes over ${cycles} cycles`);
    assert.equal(await listening(port), false);
    // A closed server's handle is gone from the kernel: one more cycle
    // through raw requests, to see its handle.
    const raw = (request: RequestInit) => decodeResponse(kernel.callRaw(encodeRequest(request)));
    const { server } = raw({
      serverStart: { listen: `127.0.0.1:${port}`, upstreams: [a.at], threads: 1 },
    })
      .serverStarted!;
    assert.equal(raw({ serverStats: { server } }).serverStats?.stopped, false);
    assert.equal(raw({ serverClose: { server } }).serverStats?.stopped, true);
    assert.throws(() => raw({ serverStats: { server } }), (error: unknown) => {
      assert.ok(error instanceof KernelError);
      assert.equal(error.codeName, "UNKNOWN_HANDLE");
      return true;
    });
    assert.equal(await listening(port), false);
  },
);

Deno.test(
  skipIf("closing the kernel while a server runs stops it first, without a crash", NO_ENGINE),
  async () => {
    // In a child process: a crash there is a failed assertion here.
    const script = `
      import { load } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
      let received = 0;
      const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
        received++;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return new Response("late");
      });
      const kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      const server = kernel.server.start({ upstreams: ["127.0.0.1:" + slow.addr.port] });
      const inFlight = fetch("http://127.0.0.1:" + server.address.port + "/").then((r) => r.text(), (e) => e.name);
      while (received === 0) await new Promise((r) => setTimeout(r, 5));
      kernel.close();
      console.log(JSON.stringify({
        closed: server.closed,
        stats: server.stats(),
        inFlight: await inFlight,
        stop: await server.stop(),
      }));
      let refused = false;
      try { (await Deno.connect({ hostname: "127.0.0.1", port: server.address.port })).close(); }
      catch { refused = true; }
      // Time for a thread left running kernel code to crash the process.
      await new Promise((r) => setTimeout(r, 300));
      await slow.shutdown();
      console.log(JSON.stringify({ refused }));
    `;
    const output = await runScript(["--allow-all"], script);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const [first, second] = new TextDecoder().decode(output.stdout).trim().split("\n");
    const report = JSON.parse(first);
    assert.equal(report.closed, true);
    assert.equal(report.inFlight, "TypeError", "the request in flight was cut");
    assert.equal(report.stop.activeConnections, 0);
    assert.deepEqual(JSON.parse(second), { refused: true });
  },
);

Deno.test(
  skipIf("`using` closes a server at once, `await using` stops it gracefully", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using a = upstream("a");
    let port: number;
    {
      using server = kernel.server.start({ upstreams: [a.at] });
      port = server.address.port;
      assert.deepEqual(await get(server), [200, "a /"]);
    }
    assert.equal(await listening(port), false);
    {
      await using server = kernel.server.start({ upstreams: [a.at] });
      port = server.address.port;
      assert.deepEqual(await get(server), [200, "a /"]);
    }
    assert.equal(await listening(port), false);
    const server = kernel.server.start({ upstreams: [a.at] });
    assert.deepEqual(await get(server), [200, "a /"]);
    await until(() => server.stats().requests === 1);
    server.close();
    server.close(); // idempotent
    assert.ok(server.closed);
    assert.equal(server.stats().requests, 1, "the last count is kept");
    assert.deepEqual(await server.stop(), server.stats());
  },
);

Deno.test(
  skipIf("starting a server needs net permission for its addresses", NO_ENGINE),
  async () => {
    const script = `
      import { load } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
      const kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      for (const options of [
        { listen: "127.0.0.1:0", upstreams: ["127.0.0.1:9"] },
        { listen: "127.0.0.1:0", upstreams: ["127.0.0.2:9"] },
      ]) {
        try {
          kernel.server.start(options).close();
          console.log("started");
        } catch (error) {
          console.log(error.name, error.flag);
        }
      }
    `;
    const output = await runScript(
      ["--allow-read", "--allow-ffi", "--allow-env", "--allow-net=127.0.0.1", "--no-prompt"],
      script,
    );
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.deepEqual(new TextDecoder().decode(output.stdout).trim().split("\n"), [
      "started",
      "PermissionError --allow-net=127.0.0.2:9",
    ]);
  },
);

Deno.test(
  skipIf(
    "a kernel without the engine says the server is not available on this target",
    when(
      ENGINE,
      "this target's kernel has the engine; tests/abi_variant_test.ts builds one without",
    ),
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    assert.throws(
      () => kernel.server.start({ upstreams: ["127.0.0.1:9"] }),
      refuses(
        "UNSUPPORTED",
        new RegExp(
          `^Cannot start a server: not available on ${kernelTarget()} [^]*\\nHint: the ${kernelTarget()} release kernel is built without it`,
        ),
      ),
    );
  },
);

/** What a raw client connection received until the server closed it, or null after `withinMs`. */
async function untilClosed(
  connection: Deno.Conn,
  withinMs: number,
): Promise<{ text: string; closed: boolean }> {
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(16 * 1024);
  const timer = setTimeout(() => connection.close(), withinMs);
  let closed = false;
  try {
    while (true) {
      const n = await connection.read(buffer);
      if (n === null) {
        closed = true;
        break;
      }
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
  } catch (error) {
    // Reset by the server counts as closed; our own timer's close does not.
    closed = error instanceof Deno.errors.ConnectionReset;
  } finally {
    clearTimeout(timer);
  }
  if (closed) connection.close();
  return { text, closed };
}

/** Waits `ms` milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const encoder = new TextEncoder();

Deno.test(
  skipIf("a request head sent one line at a time is cut at headerTimeoutMs", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using up = upstream("up");
    await using server = kernel.server.start({ upstreams: [up.at], headerTimeoutMs: 400 });
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.address.port });
    const closed = untilClosed(connection, 5_000);
    // Each line comes well within any per-read timeout; the whole head never ends.
    let sent = 0;
    try {
      await connection.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
      for (; sent < 40; sent++) {
        await sleep(100);
        await connection.write(encoder.encode(`X-Line-${sent}: dribble\r\n`));
      }
    } catch {
      // Written to a connection the server already closed: what is tested.
    }
    const { text, closed: wasClosed } = await closed;
    assert.ok(wasClosed, `the connection is still open after ${sent} lines`);
    assert.ok(sent < 15, `cut after ${sent} lines, more than 400 ms`);
    assert.equal(text, "", "no answer to a head that never ended");
    assert.equal(up.received(), 0);
    await until(() => server.stats().timeouts === 1);
    await until(() => server.stats().activeConnections === 0);
  },
);

Deno.test(
  skipIf("an idle keep-alive connection is closed at idleTimeoutMs", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using up = upstream("up");
    await using server = kernel.server.start({ upstreams: [up.at], idleTimeoutMs: 300 });
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.address.port });
    await connection.write(encoder.encode("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
    const started = Date.now();
    const { text, closed } = await untilClosed(connection, 5_000);
    assert.ok(closed, "a kept-alive connection stayed open for 5 s");
    assert.match(text, /^HTTP\/1\.1 200 [^]*\r\n\r\nup \/one$/);
    assert.ok(Date.now() - started >= 250, "closed before its idle timeout");
    await until(() => server.stats().idleClosed === 1);
    await until(() => server.stats().activeConnections === 0);
    const stats = server.stats();
    assert.equal(stats.requests, 1);
    assert.equal(stats.timeouts, 0, "an idle close is not a timeout of a request");
  },
);

Deno.test(
  skipIf(
    "an upstream that never answers gives a 504 that says why, and one that stalls mid-body is cut",
    NO_ENGINE,
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    // Accepts, reads, and answers nothing (or a head and part of a body), holding the socket.
    for (const reply of ["", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]) {
      const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const serving = (async () => {
        for await (const connection of silent) {
          held.push(connection);
          await connection.read(new Uint8Array(4096));
          if (reply) await connection.write(encoder.encode(reply));
        }
      })();
      await using server = kernel.server.start({
        upstreams: [`127.0.0.1:${(silent.addr as Deno.NetAddr).port}`],
        upstreamReadTimeoutMs: 300,
      });
      const response = await fetch(`http://127.0.0.1:${server.address.port}/`, {
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.text().then((text) => text, () => null);
      if (reply === "") {
        assert.equal(response.status, 504);
        assert.equal(
          body,
          "504 Gateway Timeout: no upstream answered in time (1 tried; last error: the upstream did not answer in time)\n",
        );
      } else {
        assert.equal(response.status, 200);
        assert.equal(body, null, "the body that stalled is cut, not left hanging");
      }
      await until(() => server.stats().requests === 1);
      const stats = server.stats();
      assert.equal(stats.timeouts, 1);
      assert.equal(stats.upstreamErrors, 1);
      silent.close();
      for (const connection of held) connection.close();
      await serving;
    }
  },
);

Deno.test(
  skipIf("a request body that stops coming is answered 408 at bodyTimeoutMs", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    let bodies = 0;
    await using up = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const body = await request.arrayBuffer().catch(() => null);
        if (body?.byteLength === 1000000) bodies++;
        return new Response("read");
      },
    );
    await using server = kernel.server.start({
      upstreams: [`127.0.0.1:${up.addr.port}`],
      bodyTimeoutMs: 300,
    });
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.address.port });
    await connection.write(
      encoder.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789"),
    );
    const { text, closed } = await untilClosed(connection, 5_000);
    assert.ok(closed, "a body that never ends kept its connection for 5 s");
    assert.match(text, /^HTTP\/1\.1 408 /);
    await until(() => server.stats().timeouts === 1);
    await until(() => server.stats().activeConnections === 0);
    assert.equal(bodies, 0, "the upstream never got a whole body");
  },
);

Deno.test(
  skipIf(
    "connections past maxConnections are answered 503 and counted, then served again",
    NO_ENGINE,
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    await using up = upstream("up");
    await using server = kernel.server.start({ upstreams: [up.at], maxConnections: 2 });
    assert.equal(server.maxConnections, 2);
    const holding = [
      await Deno.connect({ hostname: "127.0.0.1", port: server.address.port }),
      await Deno.connect({ hostname: "127.0.0.1", port: server.address.port }),
    ];
    await until(() => server.stats().activeConnections === 2);
    const third = await Deno.connect({ hostname: "127.0.0.1", port: server.address.port });
    const { text, closed } = await untilClosed(third, 5_000);
    assert.ok(closed, "a connection past the cap was kept");
    assert.match(text, /^HTTP\/1\.1 503 [^]*too many connections are open\n$/);
    const [head, body] = text.split("\r\n\r\n");
    assert.match(head, new RegExp(`\r\nContent-Length: ${body.length}$`));
    assert.equal(server.stats().refusedConnections, 1);
    for (const connection of holding) connection.close();
    await until(() => server.stats().activeConnections === 0);
    assert.deepEqual(await get(server), [200, "up /"]);
    // The default cap stays well below this process's descriptor limit.
    await using defaulted = kernel.server.start({ upstreams: [up.at] });
    assert.ok(defaulted.maxConnections >= 1 && defaulted.maxConnections <= 4096);
  },
);

Deno.test(
  skipIf("an upstream that is the server in another spelling is refused at start()", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    const free = freePort();
    for (
      const [listen, upstream] of [
        [`127.0.0.1:${free}`, `[::ffff:127.0.0.1]:${free}`],
        [`0.0.0.0:${free}`, `[::ffff:127.0.0.1]:${free}`],
        [`[::ffff:127.0.0.1]:${free}`, `127.0.0.1:${free}`],
      ]
    ) {
      assert.throws(
        () => kernel.server.start({ listen, upstreams: [upstream] }),
        refuses("FAILED", /^Cannot start the server: upstream .* is the server itself[^]*\nHint: /),
        `${listen} <- ${upstream}`,
      );
      assert.equal(await listening(free), false, "nothing was left listening");
    }
  },
);

Deno.test(
  skipIf(
    "start() and stop() refuse options they do not know and values of the wrong type",
    NO_ENGINE,
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    const typeError = (pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, pattern);
      return true;
    };
    // deno-lint-ignore no-explicit-any
    const start = (options: any) => kernel.server.start(options);
    assert.throws(
      () => start({ listn: "127.0.0.1:0", upstreams: ["127.0.0.1:9"] }),
      typeError(/^Cannot start the server: unknown option "listn"\nHint: did you mean listen\?/),
    );
    assert.throws(
      () => start({ upstreams: ["127.0.0.1:9"], headerTimeout: 5 }),
      typeError(/unknown option "headerTimeout"\nHint: did you mean headerTimeoutMs\?/),
    );
    assert.throws(
      () => start({ upstreams: ["127.0.0.1:9"], colour: "blue" }),
      typeError(/unknown option "colour"\nHint: the options are listen, upstreams, threads/),
    );
    for (
      const options of [
        { upstreams: ["127.0.0.1:9"], threads: "4" },
        { upstreams: ["127.0.0.1:9"], maxConnections: "10" },
        { upstreams: ["127.0.0.1:9"], idleTimeoutMs: null },
        { upstreams: ["127.0.0.1:9"], listen: 8080 },
      ]
    ) {
      assert.throws(() => start(options), TypeError, JSON.stringify(options));
    }
    for (
      const options of [
        { upstreams: ["127.0.0.1:9"], headerTimeoutMs: 0 },
        { upstreams: ["127.0.0.1:9"], bodyTimeoutMs: 1.5 },
        { upstreams: ["127.0.0.1:9"], maxConnections: 0 },
        { upstreams: ["127.0.0.1:9"], upstreamReadTimeoutMs: 2 ** 32 },
      ]
    ) {
      assert.throws(() => start(options), RangeError, JSON.stringify(options));
    }
    assert.throws(() => start(null), typeError(/the options must be an object, not null/));
    await using server = kernel.server.start({ upstreams: ["127.0.0.1:9"] });
    // deno-lint-ignore no-explicit-any
    assert.throws(() => server.stop({ grace: 10 } as any), typeError(/did you mean graceMs\?/));
    // deno-lint-ignore no-explicit-any
    assert.throws(() => server.stop({ graceMs: "10" } as any), TypeError);
  },
);

Deno.test(
  skipIf("a request that comes back to the server that forwarded it is answered 508", NO_ENGINE),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    // Two servers, each the other's upstream: no address check can see the loop.
    const port = freePort();
    await using b = kernel.server.start({ upstreams: [`127.0.0.1:${port}`] });
    await using a = kernel.server.start({
      listen: `127.0.0.1:${port}`,
      upstreams: [`127.0.0.1:${b.address.port}`],
    });
    const response = await fetch(`http://127.0.0.1:${a.address.port}/`, {
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 508);
    assert.match(await response.text(), /^508 Loop Detected: /);
    await until(() => a.stats().requests === 2 && b.stats().requests === 1);
  },
);
