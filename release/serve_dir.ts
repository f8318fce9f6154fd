/**
 * Serves a mirror directory (`<dir>/v<version>/<file>`) on loopback with
 * Range support, as a release host would: used by `deno task demo`, the
 * benchmarks and the tests. It records every request and lets a test inject
 * a fault into any answer.
 *
 * @module
 */

/** One request the host answered. */
export interface Served {
  path: string;
  range: string | null;
  status: number;
}

/** What a fault hook sees. */
export interface FaultContext {
  /** URL path, e.g. `/v0.1.0/manifest.json`. */
  path: string;
  /** File name (last path segment). */
  file: string;
  /** The file's bytes, or null when it does not exist. */
  body: Uint8Array<ArrayBuffer> | null;
  /** The request. */
  request: Request;
  /** How many times this path was requested before (0 for the first). */
  count: number;
}

/** Returns a Response to answer with, or undefined for the normal answer. */
export type Fault = (context: FaultContext) => Response | Promise<Response> | undefined;

/** A running release host. */
export class ReleaseHost {
  /** Every request, in order. */
  readonly served: Served[] = [];
  /** Body bytes sent (by the normal path and by faults that report them). */
  bytesSent = 0;
  /** The fault hook; replace it between phases of a test. */
  fault: Fault | undefined;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #counts = new Map<string, number>();

  private constructor(readonly root: string, fault: Fault | undefined) {
    this.fault = fault;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#answer(request),
    );
  }

  /** Starts serving `root` on 127.0.0.1 (a free port). */
  static start(root: string, fault?: Fault): ReleaseHost {
    return new ReleaseHost(root, fault);
  }

  /** The mirror base URL (`KREPIS_MIRROR`). */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Requests for paths ending with `suffix`. */
  requestsFor(suffix: string): Served[] {
    return this.served.filter((s) => s.path.endsWith(suffix));
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async #answer(request: Request): Promise<Response> {
    const path = decodeURIComponent(new URL(request.url).pathname);
    const file = path.split("/").pop() ?? "";
    const count = this.#counts.get(path) ?? 0;
    this.#counts.set(path, count + 1);
    let body: Uint8Array<ArrayBuffer> | null = null;
    if (!path.includes("..")) {
      body = await Deno.readFile(`${this.root}${path}`).catch(() => null);
    }
    const range = request.headers.get("range");
    let response = await this.fault?.({ path, file, body, request, count });
    response ??= this.#normal(body, range);
    this.served.push({ path, range, status: response.status });
    return response;
  }

  #normal(body: Uint8Array<ArrayBuffer> | null, range: string | null): Response {
    if (!body) return new Response("not found", { status: 404 });
    const match = range?.match(/^bytes=(\d+)-$/);
    if (match) {
      const start = Number(match[1]);
      if (start >= body.length) {
        return new Response(null, {
          status: 416,
          headers: { "content-range": `bytes */${body.length}` },
        });
      }
      const slice = body.subarray(start);
      this.bytesSent += slice.length;
      return new Response(slice, {
        status: 206,
        headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` },
      });
    }
    this.bytesSent += body.length;
    return new Response(body, { status: 200 });
  }
}
