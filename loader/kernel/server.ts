/**
 * The kernel's server engine: a reverse proxy (Pingora) that runs on the
 * kernel's own threads, started and stopped from TypeScript.
 *
 * @module
 */

import { type Channel, rethrowAs } from "./channel.ts";
import { KernelError, ServerError } from "../errors.ts";
import type { RequestInit, Response } from "../_gen/messages.ts";
import { checkKeys, integerOption, kindOf } from "../_internal/options.ts";
import { requireNet } from "../_internal/permission.ts";
import { KERNEL_TOKEN } from "./token.ts";

/** Options for {@linkcode Servers.start}. */
export interface ServerOptions {
  /**
   * Where to listen, `"ip:port"` (`"[ip]:port"` for IPv6). Port 0 picks a
   * free port; read it from {@linkcode Server.address}. Host names are not
   * resolved.
   *
   * @default {"127.0.0.1:0"}
   */
  listen?: string;
  /**
   * The servers requests are forwarded to, `"ip:port"` each, at least one.
   * Each request goes to the next in turn; one that cannot be reached is
   * skipped (and counted in `upstreamErrors`); when none can, the client
   * gets a 502 that says how many were tried and why the last failed.
   */
  upstreams: readonly string[];
  /**
   * Worker threads of the engine (1 to 256).
   *
   * @default {one per CPU}
   */
  threads?: number;
  /**
   * How long a client may take to send a whole request head, in
   * milliseconds: from the connection (or, on a kept-alive connection, from
   * the request's first byte) to the blank line that ends the head. Past it
   * the connection is closed and counted in `timeouts`.
   *
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * How long a kept-alive client connection may wait for its next request,
   * in milliseconds. Past it the connection is closed and counted in
   * `idleClosed`.
   *
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * How long a request body may pause between two reads, in milliseconds.
   * Past it the client gets a 408 (counted in `timeouts`) and the
   * connection is closed.
   *
   * @default {60000}
   */
  bodyTimeoutMs?: number;
  /**
   * How long connecting to an upstream may take, in milliseconds. Past it
   * the upstream counts as down (the next is tried); when it was the last,
   * the client gets a 504.
   *
   * @default {5000}
   */
  upstreamConnectTimeoutMs?: number;
  /**
   * How long an upstream may pause while answering (its head included),
   * in milliseconds. Past it the client gets a 504 if nothing was sent yet
   * (or its connection is cut), counted in `timeouts`.
   *
   * @default {60000}
   */
  upstreamReadTimeoutMs?: number;
  /**
   * How long an unused upstream connection is kept for reuse, in
   * milliseconds.
   *
   * @default {60000}
   */
  upstreamIdleTimeoutMs?: number;
  /**
   * How many client connections may be open at once. One more is answered
   * `503` and closed at once (counted in `refusedConnections`), so clients
   * can never take the host process's last file descriptors.
   *
   * @default {a quarter of the process's file descriptor limit, at most 4096}
   */
  maxConnections?: number;
}

/** Every key of {@linkcode ServerOptions}. */
const SERVER_OPTIONS = [
  "listen",
  "upstreams",
  "threads",
  "headerTimeoutMs",
  "idleTimeoutMs",
  "bodyTimeoutMs",
  "upstreamConnectTimeoutMs",
  "upstreamReadTimeoutMs",
  "upstreamIdleTimeoutMs",
  "maxConnections",
] as const;

/** The timeouts of {@linkcode ServerOptions} (named as in the protobuf request). */
const TIMEOUTS = [
  "headerTimeoutMs",
  "idleTimeoutMs",
  "bodyTimeoutMs",
  "upstreamConnectTimeoutMs",
  "upstreamReadTimeoutMs",
  "upstreamIdleTimeoutMs",
] as const;

/** The most client connections a server may be allowed. */
const MAX_CONNECTIONS = 1 << 20;

/** What a server has counted. */
export interface ServerStats {
  /** Requests answered, 502s included. */
  requests: number;
  /** Upstreams that could not be reached or failed mid-request. */
  upstreamErrors: number;
  /** Client connections open now. */
  activeConnections: number;
  /**
   * Deadlines that ended a connection or a request: a request head or
   * body too slow, an upstream that did not connect or answer in time.
   */
  timeouts: number;
  /** Client connections refused (503) because `maxConnections` were open. */
  refusedConnections: number;
  /** Kept-alive client connections closed after `idleTimeoutMs`. */
  idleClosed: number;
}

/** Options for {@linkcode Server.stop}. */
export interface StopOptions {
  /**
   * How long requests in flight may take to finish before their
   * connections are cut, in milliseconds.
   *
   * @default {5000}
   */
  graceMs?: number;
}

/** The default grace of {@linkcode Server.stop}, in milliseconds. */
const DEFAULT_GRACE_MS = 5000;
/** The longest grace the kernel takes (a `uint32` of milliseconds). */
const MAX_GRACE_MS = 0xffff_ffff;
/** How long after the grace a stop waits before it closes the server at once. */
const DRAIN_MARGIN_MS = 5000;
/** The longest pause between two checks of a stopping server, in milliseconds. */
const MAX_POLL_MS = 20;

/** Kernel failures of the server become {@linkcode ServerError}s. */
function call<T>(action: () => T): T {
  return rethrowAs(ServerError, action);
}

function stats(answer: Response["serverStats"]): ServerStats {
  return {
    requests: Number(answer?.requests ?? 0n),
    upstreamErrors: Number(answer?.upstreamErrors ?? 0n),
    activeConnections: Number(answer?.activeConnections ?? 0n),
    timeouts: Number(answer?.timeouts ?? 0n),
    refusedConnections: Number(answer?.refusedConnections ?? 0n),
    idleClosed: Number(answer?.idleClosed ?? 0n),
  };
}

/** Net permission for `address`, or the kernel's refusal of a malformed one. */
function permit(address: string, role: string, action: string): void {
  if (requireNet(address, action)) return;
  throw new ServerError(
    `Cannot start the server: ${role} ${
      JSON.stringify(address)
    } is not an ip:port address (FAILED)`,
    "FAILED",
    { hint: `give an IP address and a port, such as 127.0.0.1:8080 or [::1]:8080` },
  );
}

/** `"127.0.0.1:8080"` or `"[::1]:8080"` as a `Deno.NetAddr`. */
function netAddr(address: string): Deno.NetAddr {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  return {
    transport: "tcp",
    hostname: host.startsWith("[") ? host.slice(1, -1) : host,
    port: Number(address.slice(colon + 1)),
  };
}

/** `kernel.server`: starts servers. */
export class Servers {
  #channel: Channel;

  /**
   * Internal: the kernel makes its own.
   *
   * @param token The loader's internal token.
   * @param channel The kernel's channel.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(token: symbol, channel: Channel) {
    if (token !== KERNEL_TOKEN) throw new TypeError("Cannot construct Servers directly");
    this.#channel = channel;
  }

  /**
   * Starts a reverse proxy on the kernel's own threads: it listens on
   * `listen` and forwards each request to the next of `upstreams`. The
   * port is bound before this returns (so an error is thrown here, and
   * nothing is left listening); the JavaScript thread never waits for a
   * request.
   *
   * Needs `--allow-net` for the listen address and for each upstream (the
   * kernel's sockets are checked against it here).
   *
   * @param options Where to listen and where to forward.
   * @returns The running server; stop it (or `await using`) when done.
   * @throws {ServerError} `FAILED` when an address is malformed or the port
   *   cannot be bound (in use, not this machine's, privileged);
   *   `UNSUPPORTED` when the kernel for this target has no server engine.
   * @throws {PermissionError} Without net permission for an address.
   * @throws {TypeError} When `options` has a key it does not know (naming
   *   the nearest known one), `upstreams` is not a list of strings, or an
   *   option has the wrong type.
   * @throws {RangeError} When `threads` is not an integer from 1 to 256, a
   *   timeout not a whole number of milliseconds from 1 to 2^32 - 1, or
   *   `maxConnections` not an integer from 1 to 2^20.
   *
   * @example Proxying to a Deno.serve upstream
   * ```ts ignore
   * import { load } from "@krepis/loader";
   *
   * using kernel = await load();
   * await using upstream = Deno.serve({ port: 0, onListen() {} }, () => new Response("hi"));
   * await using proxy = kernel.server.start({ upstreams: [`127.0.0.1:${upstream.addr.port}`] });
   * const response = await fetch(`http://127.0.0.1:${proxy.address.port}/`);
   * console.log(await response.text(), proxy.stats().requests); // "hi" 1
   * ```
   */
  start(options: ServerOptions): Server {
    const action = "start the server";
    const given = checkKeys(action, options, SERVER_OPTIONS);
    const { listen = "127.0.0.1:0", upstreams } = options;
    if (typeof listen !== "string") {
      throw new TypeError(
        `Cannot start the server: listen must be a string such as "127.0.0.1:0", not ${
          kindOf(listen)
        }`,
      );
    }
    if (!Array.isArray(upstreams) || upstreams.some((u) => typeof u !== "string")) {
      throw new TypeError(
        `Cannot start the server: upstreams must be a list of "ip:port" strings, such as ["127.0.0.1:8001"]`,
      );
    }
    const threads = integerOption(
      action,
      "threads",
      given.threads,
      1,
      256,
      "leave it unset for one thread per CPU",
    ) ?? 0;
    const limits: Partial<Record<(typeof TIMEOUTS)[number], number>> = {};
    for (const option of TIMEOUTS) {
      limits[option] = integerOption(action, option, given[option], 1, 0xffff_ffff) ?? 0;
    }
    const maxConnections = integerOption(
      action,
      "maxConnections",
      given.maxConnections,
      1,
      MAX_CONNECTIONS,
      "leave it unset for a quarter of the process's file descriptor limit",
    ) ?? 0;
    this.#channel.symbols("server.start()");
    return call(() => {
      this.#channel.require("server", "start a server");
      permit(listen, "listen address", `listen on ${listen}`);
      for (const upstream of upstreams) permit(upstream, "upstream", `forward to ${upstream}`);
      const started = this.#channel.request("server.start()", {
        serverStart: { listen, upstreams: [...upstreams], threads, ...limits, maxConnections },
      }).serverStarted!;
      return new Server(
        KERNEL_TOKEN,
        this.#channel,
        started.server,
        started.address,
        started.maxConnections,
      );
    });
  }
}

/**
 * A running reverse proxy. Obtain one from `kernel.server.start()`.
 *
 * `await using` stops it gracefully ({@linkcode Server.stop}); `using`
 * closes it at once ({@linkcode Server.close}), because a synchronous
 * dispose must not wait for requests that may need this very thread to
 * be answered (an upstream served by `Deno.serve` in the same process).
 */
export class Server implements Disposable, AsyncDisposable {
  /**
   * The bound address (with the port picked when listening on port 0). An
   * IPv4-mapped listen address (`::ffff:127.0.0.1`) is bound, and reported,
   * as the IPv4 address it maps (`127.0.0.1`): the same connections reach
   * it, and Windows refuses the mapped spelling.
   */
  readonly address: Deno.NetAddr;
  /** The connection cap in force: `maxConnections`, or its default. */
  readonly maxConnections: number;

  #channel: Channel;
  #handle: bigint | null;
  #stopping: Promise<ServerStats> | null = null;
  #last: ServerStats = {
    requests: 0,
    upstreamErrors: 0,
    activeConnections: 0,
    timeouts: 0,
    refusedConnections: 0,
    idleClosed: 0,
  };
  #unlink: () => void;

  /**
   * Internal: use `kernel.server.start()`.
   *
   * @param token The loader's internal token.
   * @param channel The kernel's channel.
   * @param handle The kernel's server handle.
   * @param address The bound address, `"ip:port"`.
   * @param maxConnections The connection cap in force.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(
    token: symbol,
    channel: Channel,
    handle: bigint,
    address: string,
    maxConnections: number,
  ) {
    if (token !== KERNEL_TOKEN) {
      throw new TypeError("Cannot construct a Server directly\nHint: use kernel.server.start()");
    }
    this.#channel = channel;
    this.#handle = handle;
    this.address = Object.freeze(netAddr(address));
    this.maxConnections = maxConnections;
    // Closing the kernel closes its servers first: their threads run kernel code.
    this.#unlink = channel.onClose(() => this.close());
  }

  /** Whether the server was closed: its port is released and its threads ended. */
  get closed(): boolean {
    return this.#handle === null;
  }

  #send(action: string, build: (server: bigint) => RequestInit): Response {
    const handle = this.#handle;
    if (handle === null) {
      throw new ServerError(
        `Cannot ${action}: the server was stopped`,
        "CLOSED",
        { hint: `start another with kernel.server.start()` },
      );
    }
    return call(() => this.#channel.request(action, build(handle)));
  }

  /**
   * What the server has counted so far (after it stopped: its last count).
   *
   * @returns Requests answered, upstream errors, open connections.
   */
  stats(): ServerStats {
    if (this.#handle === null) return { ...this.#last };
    this.#last = stats(
      this.#send("stats()", (server) => ({ serverStats: { server } })).serverStats,
    );
    return { ...this.#last };
  }

  /**
   * Stops the server: it stops listening at once (new connections are
   * refused), lets requests in flight finish for up to `graceMs`, cuts
   * what is left, then ends its threads. Calling it again returns the same
   * promise.
   *
   * @param options How long requests in flight may take.
   * @returns Its last count, once the port is released and the threads ended.
   * @throws {TypeError} When `options` has a key other than `graceMs`, or
   *   `graceMs` is not a number.
   * @throws {RangeError} When `graceMs` is negative or NaN.
   */
  stop(options: StopOptions = {}): Promise<ServerStats> {
    const graceMs = checkKeys("stop the server", options, ["graceMs"]).graceMs ?? DEFAULT_GRACE_MS;
    if (typeof graceMs !== "number") {
      throw new TypeError(
        `Cannot stop the server: graceMs must be a number of milliseconds, not ${kindOf(graceMs)}`,
      );
    }
    if (Number.isNaN(graceMs) || graceMs < 0) {
      throw new RangeError(
        `Cannot stop the server: graceMs must be a number of milliseconds, 0 or more, not ${graceMs}`,
      );
    }
    if (this.#stopping) return this.#stopping;
    if (this.#handle === null) return Promise.resolve({ ...this.#last });
    const grace = Math.min(Math.ceil(graceMs), MAX_GRACE_MS);
    this.#last = stats(
      this.#send("stop()", (server) => ({ serverStop: { server, graceMs: grace } })).serverStats,
    );
    this.#stopping = this.#drained(grace);
    return this.#stopping;
  }

  /**
   * Waits, without blocking the JavaScript thread, for the drain to end;
   * closes the server in any case (after the grace and a margin, at once).
   */
  async #drained(graceMs: number): Promise<ServerStats> {
    const giveUp = Date.now() + graceMs + DRAIN_MARGIN_MS;
    let pause = 1;
    try {
      while (this.#handle !== null && Date.now() < giveUp) {
        const answer = this.#send("stop()", (server) => ({ serverStats: { server } }))
          .serverStats;
        this.#last = stats(answer);
        if (answer?.stopped) break;
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, MAX_POLL_MS);
      }
    } finally {
      this.close();
    }
    return { ...this.#last };
  }

  /**
   * Closes the server at once: stops listening, cuts requests in flight,
   * ends its threads and releases the port. Idempotent.
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    this.#unlink();
    if (this.#channel.closed) return;
    try {
      this.#last = stats(
        this.#channel.request("close()", { serverClose: { server: handle } }).serverStats,
      );
    } catch (error) {
      // UNKNOWN_HANDLE: already gone in the kernel, nothing is left to release.
      if (!(error instanceof KernelError)) throw error;
    }
  }

  /** Closes the server at once ({@linkcode Server.close}). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Stops the server gracefully ({@linkcode Server.stop} with its default grace). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
