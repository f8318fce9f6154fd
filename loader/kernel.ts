/**
 * The typed API over a loaded kernel.
 *
 * @module
 */

import type { AbiInfo } from "./abi.ts";
import { KernelError } from "./errors.ts";
import { RESULT_NAMES, type SYMBOLS } from "./_ffi.ts";
import { allocate } from "./_pool.ts";
import { KERNEL_TOKEN } from "./_token.ts";
import { decodeResponse, encodeRequest, type RequestInit, type Response } from "./_messages.ts";
import { WireError } from "./_wire.ts";

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
}

/** The bound kernel symbols. */
type Library = Deno.DynamicLibrary<typeof SYMBOLS>;

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

  #library: Library | null;
  // The KrepisBuffer out-parameter (pointer, length), reused across calls.
  #response = new BigUint64Array(2);
  #responseBytes = new Uint8Array(this.#response.buffer);

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
    this.#library = library;
    this.path = path;
    this.abi = Object.freeze({ ...abi });
    this.version = Deno.UnsafePointerView.getCString(
      nonNull(library.symbols.krepis_version(), "krepis_version"),
    );
  }

  /** Whether {@linkcode Kernel.close} has been called. */
  get closed(): boolean {
    return this.#library === null;
  }

  /**
   * Asks the kernel how it was built.
   *
   * @returns Version, target, profile, compiler, commit and features.
   * @throws {KernelError} When the kernel refuses the request.
   * @throws {Error} When the kernel was closed.
   */
  buildInfo(): BuildInfo {
    const response = this.#request("buildInfo()", { buildInfo: {} });
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
    };
  }

  /**
   * Sends `payload` through the kernel and back (a protobuf round trip).
   *
   * @param payload Bytes to send.
   * @returns The bytes the kernel sent back (a view that may share an
   *   `ArrayBuffer` with other results: use `byteOffset`/`byteLength`).
   * @throws {KernelError} When the kernel refuses the request.
   * @throws {Error} When the kernel was closed.
   */
  echo(payload: Uint8Array): Uint8Array {
    const response = this.#request("echo()", { echo: { payload } });
    if (response.kind !== "echo" || !response.echo) {
      throw new Error(`Cannot echo: the kernel answered ${response.kind ?? "nothing"}`);
    }
    return response.echo.payload;
  }

  /**
   * Sends raw bytes as a `krepis.v1.Request` and returns the raw
   * `krepis.v1.Response`: the low-level control plane.
   *
   * @param request An encoded request (any bytes: the kernel validates them).
   * @returns The encoded response, copied out of kernel memory. Small results
   *   may share an `ArrayBuffer` with others: use `byteOffset`/`byteLength`.
   * @throws {KernelError} With the kernel's result code, e.g.
   *   `MALFORMED_REQUEST`, `UNKNOWN_REQUEST`, `FAILED` or `PANIC`.
   * @throws {Error} When the kernel was closed.
   */
  callRaw(request: Uint8Array): Uint8Array {
    const symbols = this.#open("callRaw()");
    const code = symbols.krepis_call(request, BigInt(request.length), this.#responseBytes);
    if (code !== 0) throw this.#error(symbols, code);
    let taken = -1;
    try {
      const length = Number(this.#response[1]);
      const bytes = allocate(length);
      // One call copies the kernel's bytes into ours and frees them: cheaper
      // than reading through a pointer view and freeing separately.
      taken = symbols.krepis_buffer_take(this.#responseBytes, bytes, BigInt(length));
      if (taken !== 0) throw this.#error(symbols, taken);
      return bytes;
    } finally {
      // Whatever failed above, the kernel's buffer is not leaked.
      if (taken !== 0) symbols.krepis_buffer_free(this.#responseBytes);
    }
  }

  #error(symbols: Library["symbols"], code: number): KernelError {
    const message = Deno.UnsafePointerView.getCString(
      nonNull(symbols.krepis_last_error(), "krepis_last_error"),
    );
    const name = RESULT_NAMES[code] ?? `code ${code}`;
    // The kernel's messages already read "Cannot …"; a Fail request's is
    // the caller's own text.
    const [first, ...rest] = message.split("\n");
    const lead = first.startsWith("Cannot ") ? first : `Cannot complete the kernel call: ${first}`;
    return new KernelError([`${lead} (${name})`, ...rest].join("\n"), code, name);
  }

  /**
   * Closes the library. Later calls throw; closing twice is a no-op.
   */
  close(): void {
    this.#library?.close();
    this.#library = null;
  }

  /** Same as {@linkcode Kernel.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #request(action: string, request: RequestInit): Response {
    this.#open(action);
    const answer = this.callRaw(encodeRequest(request));
    try {
      return decodeResponse(answer);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      throw new Error(
        `Cannot read the kernel's answer to ${action}: it is not a valid krepis.v1.Response (${error.message})\nHint: the kernel and the loader disagree on proto/krepis.proto; use a kernel of the loader's version`,
      );
    }
  }

  #open(action: string): Library["symbols"] {
    if (this.#library === null) {
      throw new Error(
        `Cannot call ${action}: the kernel was closed\nHint: call load() again for a new Kernel`,
      );
    }
    return this.#library.symbols;
  }
}

function nonNull(pointer: Deno.PointerValue, symbol: string): Deno.PointerObject {
  if (pointer === null) throw new Error(`Cannot read the kernel's answer: ${symbol} returned NULL`);
  return pointer;
}
