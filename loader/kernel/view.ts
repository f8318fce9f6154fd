/**
 * `KernelView`: read-only, zero-copy access to bytes the kernel owns.
 *
 * @module
 */

import { KERNEL_TOKEN } from "./token.ts";

/** How a view gives its memory back; supplied by the kernel that lent it. */
export interface ViewRelease {
  /** Frees the kernel's bytes of view `id` (once). */
  release(id: bigint): void;
  /** Forgets the view (it was closed by its owner). */
  forget(id: bigint): void;
}

/**
 * Bytes that live in kernel memory, seen from TypeScript without a copy
 * (`Deno.UnsafePointerView.getArrayBuffer`). Obtain one from
 * `kernel.readFile()` or `journal.snapshot()`.
 *
 * The view owns the memory: {@linkcode KernelView.close} (or `using`)
 * frees it. After that, `bytes` throws, and a `Uint8Array` taken from it
 * earlier is detached (length 0; its methods throw), so freed memory is
 * never read. A view that is garbage-collected without `close()` is freed
 * then; closing the `Kernel` frees every view it lent.
 *
 * Do not write to `bytes`: the memory is the kernel's. Its buffer cannot be
 * moved: `bytes.buffer.transfer()` throws, and a buffer moved anyway
 * (`structuredClone` or `postMessage` with a transfer list) is never freed
 * by `close()`, since its bytes may still be read elsewhere. A moved buffer
 * whose view is then garbage-collected is outside what the loader can see:
 * copy the bytes (`bytes.slice()`) to send them to another worker.
 *
 * @example Reading a file through the kernel
 * ```ts ignore
 * import { load } from "@krepis/loader";
 *
 * using kernel = await load();
 * using view = kernel.readFile("data.bin");
 * let lines = 0;
 * for (const byte of view.bytes) if (byte === 10) lines++;
 * console.log(view.byteLength, lines);
 * ```
 */
export class KernelView implements Disposable {
  /** The number of bytes (still known after close). */
  readonly byteLength: number;

  #id: bigint;
  #buffer: ArrayBuffer | null;
  #bytes: Uint8Array | null;
  #owner: ViewRelease | null;

  /**
   * Wraps kernel memory; only the loader constructs views.
   *
   * @param token The loader's internal token.
   * @param id The kernel's view id.
   * @param buffer The kernel's bytes, as an external `ArrayBuffer`.
   * @param owner Frees the bytes.
   * @throws {TypeError} When called from outside the loader.
   */
  constructor(token: symbol, id: bigint, buffer: ArrayBuffer, owner: ViewRelease) {
    if (token !== KERNEL_TOKEN) {
      throw new TypeError("Cannot construct a KernelView directly\nHint: use kernel.readFile()");
    }
    this.#id = id;
    this.#buffer = buffer;
    this.#bytes = new Uint8Array(buffer);
    this.byteLength = buffer.byteLength;
    this.#owner = owner;
  }

  /**
   * The bytes, in kernel memory (no copy).
   *
   * @throws {Error} After {@linkcode KernelView.close}.
   */
  get bytes(): Uint8Array {
    if (this.#bytes === null) {
      throw new Error(
        "Cannot read the view: it was closed and its memory given back to the kernel\nHint: copy what you need (bytes.slice()) before close()",
      );
    }
    return this.#bytes;
  }

  /** Whether {@linkcode KernelView.close} has been called. */
  get closed(): boolean {
    return this.#bytes === null;
  }

  /**
   * Frees the memory. Every `Uint8Array` over it is detached first, so
   * nothing can read it afterwards. Closing twice is a no-op.
   */
  close(): void {
    const buffer = this.#buffer;
    const owner = this.#owner;
    if (buffer === null || owner === null) return;
    this.#buffer = null;
    this.#bytes = null;
    this.#owner = null;
    owner.forget(this.#id);
    // Moved elsewhere by a transfer list: its bytes may still be read
    // there, so they are left allocated (a leak, never a use after free).
    if (buffer.detached) return;
    detach(buffer);
    owner.release(this.#id);
  }

  /** Same as {@linkcode KernelView.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

const TRANSFER = ArrayBuffer.prototype.transfer;

/**
 * Detaches `buffer`: every typed array over it gets length 0 and its reads
 * stop reaching the memory. `transfer(0)` moves no bytes.
 */
export function detach(buffer: ArrayBuffer): void {
  if (!buffer.detached) TRANSFER.call(buffer, 0);
}

function refuseTransfer(): never {
  throw new TypeError(
    "Cannot transfer a KernelView's buffer: its bytes are the kernel's and are freed by close()\nHint: copy them first with view.bytes.slice()",
  );
}

/**
 * Makes `buffer.transfer()` and `buffer.transferToFixedLength()` throw: a
 * transferred buffer would keep pointing at bytes `close()` frees.
 */
export function pin(buffer: ArrayBuffer): void {
  for (const name of ["transfer", "transferToFixedLength"]) {
    Object.defineProperty(buffer, name, { value: refuseTransfer, enumerable: false });
  }
}
