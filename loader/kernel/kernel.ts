/**
 * The typed API over a loaded kernel.
 *
 * @module
 */

import type { AbiInfo } from "../abi.ts";
import { Channel, type Library } from "./channel.ts";
import { decodeRequest, type Request } from "../_gen/messages.ts";
import { kindOf } from "../_internal/options.ts";
import { absolute } from "../_internal/path.ts";
import { requireNet, requirePermission } from "../_internal/permission.ts";
import { WireError } from "../_codec/wire.ts";
import { KERNEL_TOKEN } from "./token.ts";
import { Journals } from "./journal.ts";
import { Servers } from "./server.ts";
import type { KernelView } from "./view.ts";

/** How and from what the loaded kernel was built. */
export interface BuildInfo {
  /** The lock-step Krepis version, e.g. `"0.1.0"`. */
  version: string;
  /** The Rust target triple, e.g. `"x86_64-unknown-linux-gnu"`. */
  target: string;
  /** The cargo profile: `"debug"` or `"release"`. */
  profile: string;
  /** `rustc --version` of the compiler that built it. */
  rustc: string;
  /** The git commit the kernel was built from, or `"unknown"`. */
  gitCommit: string;
  /** Enabled cargo features. */
  features: string[];
  /**
   * What this build can do: `"view"` (zero-copy views, `readFile()`),
   * `"journal"` (`journal.open()`), `"server"` (`server.start()`). An API
   * whose capability is missing throws `UNSUPPORTED` ("not available on
   * <target>").
   */
  capabilities: string[];
}

/**
 * A kernel whose ABI was verified. Obtain one from `load()`.
 *
 * Calls are synchronous. After {@linkcode Kernel.close} every method throws
 * an `Error` instead of touching the unloaded library.
 *
 * @example Calling the kernel and releasing it
 * ```ts ignore
 * import { load } from "@krepis/loader";
 *
 * using kernel = await load();
 * console.log(kernel.version, kernel.buildInfo().target);
 * ```
 */
export class Kernel implements Disposable {
  /** The library file that was opened. */
  readonly path: string;
  /** The lock-step version the kernel reports. */
  readonly version: string;
  /** The ABI the kernel reported and the loader verified. */
  readonly abi: Readonly<AbiInfo>;
  /**
   * The project journal: `kernel.journal.open(root)` gives a `Journal`
   * whose transactions snapshot files before they change, and whose
   * `undo()` restores them.
   */
  readonly journal: Journals;
  /**
   * The server engine: `kernel.server.start({ listen, upstreams })` runs a
   * reverse proxy on the kernel's own threads.
   */
  readonly server: Servers;

  #channel: Channel;

  /**
   * Wraps an opened library. Only `load()` can construct a Kernel: it
   * verifies the ABI first.
   *
   * @param token The loader's internal token.
   * @param library The library, opened with the loader's symbol table.
   * @param path The file it was opened from.
   * @param abi The verified ABI.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(token: symbol, library: Library, path: string, abi: AbiInfo) {
    if (token !== KERNEL_TOKEN) {
      throw new TypeError(
        "Cannot construct a Kernel directly: it would skip the ABI check\nHint: use load()",
      );
    }
    this.#channel = new Channel(library);
    this.path = path;
    this.abi = Object.freeze({ ...abi });
    this.version = Deno.UnsafePointerView.getCString(
      nonNull(library.symbols.krepis_version(), "krepis_version"),
    );
    this.journal = new Journals(KERNEL_TOKEN, this.#channel);
    this.server = new Servers(KERNEL_TOKEN, this.#channel);
  }

  /** Whether {@linkcode Kernel.close} has been called. */
  get closed(): boolean {
    return this.#channel.closed;
  }

  /**
   * Asks the kernel how it was built.
   *
   * @returns Version, target, profile, compiler, commit and features.
   * @throws {KernelError} When the kernel refuses the request.
   * @throws {Error} When the kernel was closed.
   */
  buildInfo(): BuildInfo {
    const response = this.#channel.request("buildInfo()", { buildInfo: {} });
    const info = response.buildInfo;
    if (response.kind !== "buildInfo" || !info) {
      throw new Error(`Cannot read build info: the kernel answered ${response.kind ?? "nothing"}`);
    }
    return {
      version: info.version,
      target: info.target,
      profile: info.profile,
      rustc: info.rustc,
      gitCommit: info.gitCommit,
      features: [...info.features],
      capabilities: [...info.capabilities],
    };
  }

  /**
   * Reads a whole regular file into kernel memory and lends it as a
   * zero-copy {@linkcode KernelView}. Close the view (or `using`) to free
   * the memory.
   *
   * The kernel reads the file, so Deno's permission is checked here first:
   * `--allow-read` for `path`. A FIFO or device is refused without
   * waiting; a file larger than free memory is an error, not a crash.
   *
   * @param path The file, absolute or relative to the working directory.
   * @returns A view of its bytes.
   * @throws {PermissionError} Without read permission for `path`.
   * @throws {TypeError} When `path` is not a string.
   * @throws {KernelError} When the file cannot be read (`FAILED`, with why).
   * @throws {Error} When the kernel was closed.
   */
  readFile(path: string): KernelView {
    if (typeof path !== "string") {
      throw new TypeError(`Cannot read a file: path must be a string, not ${kindOf(path)}`);
    }
    const file = absolute(path);
    this.#channel.symbols("readFile()");
    requirePermission("read", file, `read ${file}`);
    this.#channel.require("view", "readFile()");
    const view = this.#channel.request("readFile()", { readFile: { path: file } }).view;
    if (!view) throw new Error("Cannot read the kernel's answer to readFile(): it holds no view");
    return this.#channel.view(view.id, view.length);
  }

  /**
   * Sends `payload` through the kernel and back (a protobuf round trip).
   *
   * @param payload Bytes to send.
   * @returns The bytes the kernel sent back (a view that may share an
   *   `ArrayBuffer` with other results: use `byteOffset`/`byteLength`).
   * @throws {TypeError} When `payload` is not a `Uint8Array` (a string is
   *   not encoded for you: pass `new TextEncoder().encode(text)`).
   * @throws {KernelError} When the kernel refuses the request.
   * @throws {Error} When the kernel was closed.
   */
  echo(payload: Uint8Array): Uint8Array {
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot echo: payload must be a Uint8Array, not ${
          kindOf(payload)
        }\nHint: encode text first, with new TextEncoder().encode(text)`,
      );
    }
    const response = this.#channel.request("echo()", { echo: { payload } });
    if (response.kind !== "echo" || !response.echo) {
      throw new Error(`Cannot echo: the kernel answered ${response.kind ?? "nothing"}`);
    }
    return response.echo.payload;
  }

  /**
   * Sends raw bytes as a `krepis.v1.Request` and returns the raw
   * `krepis.v1.Response`: the low-level control plane.
   *
   * The kernel's file and socket access is outside Deno's checks, so the
   * request is decoded here first and needs the same permissions as the
   * typed API that sends it: `--allow-read` for a file read,
   * `--allow-read` and `--allow-write` for a journal's root, `--allow-net`
   * for a server's addresses. Bytes that do not decode go to the kernel,
   * which refuses them.
   *
   * @param request An encoded request (any bytes: the kernel validates them).
   * @returns The encoded response, copied out of kernel memory. Small results
   *   may share an `ArrayBuffer` with others: use `byteOffset`/`byteLength`.
   * @throws {TypeError} When `request` is not a `Uint8Array`.
   * @throws {PermissionError} Without the permission the request needs.
   * @throws {KernelError} With the kernel's result code, e.g.
   *   `MALFORMED_REQUEST`, `UNKNOWN_REQUEST`, `FAILED` or `PANIC`.
   * @throws {Error} When the kernel was closed.
   */
  callRaw(request: Uint8Array): Uint8Array {
    if (!(request instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call the kernel: request must be a Uint8Array, not ${kindOf(request)}`,
      );
    }
    this.#channel.symbols("callRaw()");
    let decoded: Request | undefined;
    try {
      decoded = decodeRequest(request);
    } catch (error) {
      // Malformed: the kernel refuses it with MALFORMED_REQUEST.
      if (!(error instanceof WireError)) throw error;
    }
    if (decoded !== undefined) permitRaw(decoded);
    return this.#channel.callRaw(request);
  }

  /**
   * Closes the library: first every server started through this kernel
   * (closed at once: requests in flight are cut, its threads end), every
   * journal (rolling back open transactions) and every view it lent (their
   * bytes detached, then freed). Later calls throw; closing twice is a no-op.
   */
  close(): void {
    this.#channel.close();
  }

  /** Same as {@linkcode Kernel.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The Deno permission a raw request needs, as its typed API checks it. An
 * address that is not `ip:port` needs nothing here: the kernel refuses it.
 */
function permitRaw(request: Request): void {
  if (request.readFile) {
    const file = absolute(request.readFile.path);
    requirePermission("read", file, `read ${file}`);
  }
  if (request.journalOpen) {
    const folder = absolute(request.journalOpen.root);
    requirePermission("read", folder, `open the journal of ${folder}`);
    requirePermission("write", folder, `open the journal of ${folder}`);
  }
  if (request.serverStart) {
    const { listen, upstreams } = request.serverStart;
    requireNet(listen || "127.0.0.1:0", `listen on ${listen}`);
    for (const upstream of upstreams) requireNet(upstream, `forward to ${upstream}`);
  }
}

function nonNull(pointer: Deno.PointerValue, symbol: string): Deno.PointerObject {
  if (pointer === null) throw new Error(`Cannot read the kernel's answer: ${symbol} returned NULL`);
  return pointer;
}
