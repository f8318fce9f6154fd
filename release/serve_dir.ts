/**
 * Serves a mirror directory (`<dir>/v<version>/<file>`) with Range support,
 * as a release host would: used by `deno task serve`, `deno task demo`, the
 * benchmarks and the tests. Files are streamed, never read whole. For tests
 * ({@linkcode ReleaseHost.start}) it records every request and lets a fault
 * hook change any answer; `deno task serve` records nothing, so a long run
 * holds no more memory than its open requests.
 *
 * Nothing outside the directory is ever served. A request path is refused
 * (400) when its percent-encoding is malformed or, once decoded, it has a
 * `.` or `..` segment, an empty segment (`//`), a backslash, a NUL or a
 * drive letter, or a segment starting with `.` (hidden files are not part of
 * a mirror); a file whose real path (symlinks resolved) lies outside the
 * directory is refused (403); directories, FIFOs and other non-files and
 * missing files are 404. GET and HEAD are answered, other methods get 405
 * before any file is touched.
 *
 * @module
 */

import { sep } from "node:path";

/** One request the host answered. */
export interface Served {
  path: string;
  range: string | null;
  status: number;
}

/** One request as a log line shows it: what was asked and what was sent. */
export interface Logged {
  /** The request method. */
  method: string;
  /** The path as the client sent it (still percent-encoded). */
  target: string;
  /** The answer's status. */
  status: number;
  /** Body bytes sent (0 for HEAD), or null when a fault's answer does not say. */
  bytes: number | null;
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

/** Options for {@linkcode ReleaseHost.listen}. */
export interface ListenOptions {
  /** The address to listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** The port; 0 picks a free one. @default {0} */
  port?: number;
  /** The fault hook. */
  fault?: Fault;
  /** Called once per answered request (e.g. to print a log line). */
  log?: (entry: Logged) => void;
  /** Keep every request in `served` (for tests; grows with every request). @default {false} */
  record?: boolean;
}

/** Why a request path cannot name a file of the mirror, or the decoded path. */
export type RequestPath = { path: string } | { refused: string };

/**
 * Checks a request path (the part of the request target before `?`, as the
 * client sent it) and decodes it.
 *
 * @param raw The path, percent-encoded, e.g. `/v0.1.0/manifest.json`.
 * @returns The decoded path, or why it is refused.
 */
export function checkRequestPath(raw: string): RequestPath {
  if (!raw.startsWith("/")) return { refused: "the path does not start with /" };
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { refused: "malformed percent-encoding" };
  }
  if (path.includes("\\")) return { refused: "a backslash in the path" };
  if (path.includes("\0")) return { refused: "a NUL byte in the path" };
  const segments = path.slice(1).split("/");
  for (const [i, segment] of segments.entries()) {
    if (segment === "." || segment === "..") return { refused: `a ${segment} segment` };
    if (segment.startsWith(".")) return { refused: "a hidden (dot) path segment" };
    // `//x` (an absolute path once joined) and `/a//b`; a trailing `/` is a directory.
    if (segment === "" && i < segments.length - 1) return { refused: "an empty path segment" };
    if (/^[A-Za-z]:/.test(segment)) return { refused: "a drive letter in the path" };
  }
  return { path };
}

/** The path of a request target: `http://host/a/b?q` → `/a/b`, undecoded and unnormalised. */
function rawPath(url: string): string {
  return url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, "").replace(/[?#].*$/s, "");
}

/** A short text answer and its length in bytes. */
function text(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): [Response, number] {
  const bytes = new TextEncoder().encode(`${message}\n`);
  return [
    new Response(bytes, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    }),
    bytes.length,
  ];
}

/** A regular file inside the root, opened; or why not. */
type Found =
  | { file: Deno.FsFile; size: number }
  | "outside"
  | null;

/** A running release host. */
export class ReleaseHost {
  /** Every request, in order (only when recording: {@linkcode ReleaseHost.start}). */
  readonly served: Served[] = [];
  /** Body bytes sent (by the normal path and by faults that report them). */
  bytesSent = 0;
  /** The fault hook; replace it between phases of a test. */
  fault: Fault | undefined;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #counts = new Map<string, number>();
  #log: ((entry: Logged) => void) | undefined;
  #record: boolean;

  private constructor(readonly root: string, options: ListenOptions) {
    this.fault = options.fault;
    this.#log = options.log;
    this.#record = options.record ?? false;
    this.#server = Deno.serve(
      { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
      (request) => this.#answer(request),
    );
  }

  /** Starts serving `root` on 127.0.0.1 (a free port), recording every request. */
  static start(root: string, fault?: Fault): ReleaseHost {
    return new ReleaseHost(root, { fault, record: true });
  }

  /**
   * Starts serving `root` on the given address and port.
   *
   * @throws {Deno.errors.AddrInUse} When the port is taken.
   * @throws {Deno.errors.AddrNotAvailable} When the address is not this machine's.
   */
  static listen(root: string, options: ListenOptions = {}): ReleaseHost {
    return new ReleaseHost(root, options);
  }

  /** The address and port it listens on. */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** The mirror base URL (`KREPIS_MIRROR`). */
  get url(): string {
    const { hostname, port } = this.#server.addr;
    return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  }

  /** Requests for paths ending with `suffix`. */
  requestsFor(suffix: string): Served[] {
    return this.served.filter((s) => s.path.endsWith(suffix));
  }

  /** Stops the server: no new connections, and waits for open requests to finish. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async #answer(request: Request): Promise<Response> {
    const target = rawPath(request.url);
    const checked = checkRequestPath(target);
    const range = request.headers.get("range");
    let response: Response;
    let bytes: number | null = null;
    let path = target;
    if (request.method !== "GET" && request.method !== "HEAD") {
      [response, bytes] = text(405, "method not allowed", { allow: "GET, HEAD" });
    } else if ("refused" in checked) {
      [response, bytes] = text(400, `bad request: ${checked.refused}`);
    } else {
      path = checked.path;
      const faulty = this.fault ? await this.#fault(path, request) : undefined;
      if (faulty) {
        response = faulty;
        const length = faulty.headers.get("content-length");
        bytes = length === null ? null : Number(length);
      } else {
        [response, bytes] = this.#normal(request.method, await this.#open(path), range);
      }
    }
    if (this.#record) this.served.push({ path, range, status: response.status });
    this.#log?.({
      method: request.method,
      target,
      status: response.status,
      bytes: request.method === "HEAD" ? 0 : bytes,
    });
    return response;
  }

  /** Asks the fault hook, which sees the whole file (tests serve small ones). */
  async #fault(path: string, request: Request): Promise<Response | undefined> {
    const count = this.#counts.get(path) ?? 0;
    this.#counts.set(path, count + 1);
    const found = await this.#open(path);
    if (found === "outside") return undefined; // the normal path refuses it
    const body = found ? await new Response(fileFrom(found.file, 0)).bytes() : null;
    const file = path.split("/").pop() ?? "";
    return await this.fault?.({ path, file, body, request, count });
  }

  /** The regular file at `path` inside the root, opened for reading. */
  async #open(path: string): Promise<Found> {
    try {
      const root = await Deno.realPath(this.root);
      const real = await Deno.realPath(`${this.root}${path}`);
      if (real !== root && !real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) {
        return "outside";
      }
      // Opening a FIFO would wait for a writer: only regular files are opened.
      if (!(await Deno.stat(real)).isFile) return null;
      // The resolved path, so a link swapped after the check is not followed.
      const file = await Deno.open(real, { read: true });
      const info = await file.stat();
      if (!info.isFile) {
        file.close();
        return null;
      }
      return { file, size: info.size };
    } catch {
      return null; // missing, or unreadable
    }
  }

  #normal(method: string, found: Found, range: string | null): [Response, number] {
    if (found === "outside") return text(403, "forbidden: outside the mirror directory");
    if (!found) return [new Response("not found", { status: 404 }), 9];
    const { file, size } = found;
    const head = method === "HEAD";
    const match = range?.match(/^bytes=(\d+)-$/);
    const start = match ? Number(match[1]) : 0;
    if (match && start >= size) {
      file.close();
      return [
        new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } }),
        0,
      ];
    }
    const length = size - start;
    const headers: Record<string, string> = { "content-length": String(length) };
    if (match) headers["content-range"] = `bytes ${start}-${size - 1}/${size}`;
    let body: ReadableStream<Uint8Array> | null = null;
    if (head) {
      file.close();
    } else {
      this.bytesSent += length;
      body = fileFrom(file, start);
    }
    return [new Response(body, { status: match ? 206 : 200, headers }), length];
  }
}

/** The bytes of an open file from `start` on, as a stream that closes the file when done. */
function fileFrom(file: Deno.FsFile, start: number): ReadableStream<Uint8Array> {
  let positioned = false;
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return new ReadableStream<Uint8Array>({
    type: "bytes",
    async pull(controller) {
      try {
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const chunk = new Uint8Array(64 * 1024);
        const n = await file.read(chunk);
        if (n === null) {
          close();
          controller.close();
        } else {
          controller.enqueue(chunk.subarray(0, n));
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel() {
      close();
    },
  });
}
