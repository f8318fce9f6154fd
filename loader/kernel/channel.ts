/**
 * The channel to one loaded kernel: control-plane calls, the views it
 * lends, and what must be closed before the library is.
 *
 * @module
 */

import { KernelError, type KrepisErrorOptions } from "../errors.ts";
import { RESULT_NAMES, type SYMBOLS } from "../_gen/ffi.ts";
import { allocate } from "../_codec/pool.ts";
import { KERNEL_TOKEN } from "./token.ts";
import { TARGETS } from "../_gen/targets.ts";
import {
  decodeResponse,
  encodeRequest,
  type RequestInit,
  type Response,
} from "../_gen/messages.ts";
import { WireError } from "../_codec/wire.ts";
import { detach, KernelView, pin, type ViewRelease } from "./view.ts";

/** The bound kernel symbols. */
export type Library = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Result code of `KREPIS_RESULT_UNSUPPORTED`. */
const UNSUPPORTED = 9;

/**
 * Runs `action`; a `KernelError` it throws becomes the API's own error
 * class (`JournalError`, `ServerError`) with the kernel's message, its
 * result name as the reason, and the kernel error as the cause.
 */
export function rethrowAs<T>(
  ApiError: new (message: string, reason: string, options?: KrepisErrorOptions) => Error,
  action: () => T,
): T {
  try {
    return action();
  } catch (error) {
    if (error instanceof KernelError) {
      throw new ApiError(error.summary, error.codeName, {
        cause: error,
        ...(error.hint === null ? {} : { hint: error.hint }),
      });
    }
    throw error;
  }
}

/** The channel to an open kernel library; the `Kernel` and its APIs share it. */
export class Channel implements ViewRelease {
  #library: Library | null;
  // The KrepisBuffer out-parameter (pointer, length), reused across calls.
  #response = new BigUint64Array(2);
  #responseBytes = new Uint8Array(this.#response.buffer);
  // The KrepisView out-parameter (pointer, length).
  #lent = new BigUint64Array(2);
  #lentBytes = new Uint8Array(this.#lent.buffer);
  // Views not yet closed, and their buffers (weakly: a view may be
  // collected while its bytes are still in use), to close them first.
  #views = new Map<bigint, { view: WeakRef<KernelView>; buffer: WeakRef<ArrayBuffer> }>();
  // A view collected without close() gives its memory back here.
  #collector = new FinalizationRegistry<bigint>((id) => {
    if (this.#views.delete(id)) this.release(id);
  });
  // Journals and other kernel-side state to close before the library.
  #closers = new Set<() => void>();
  #capabilities: readonly string[] | undefined;
  #target = "";

  /** @param library The library, opened with the loader's symbol table. */
  constructor(library: Library) {
    this.#library = library;
  }

  /** Whether the library was closed. */
  get closed(): boolean {
    return this.#library === null;
  }

  /** The symbols, or an error naming `action` when the kernel was closed. */
  symbols(action: string): Library["symbols"] {
    if (this.#library === null) {
      throw new Error(
        `Cannot call ${action}: the kernel was closed\nHint: call load() again for a new Kernel`,
      );
    }
    return this.#library.symbols;
  }

  /** Sends an encoded request; returns the encoded response (copied out). */
  callRaw(request: Uint8Array): Uint8Array {
    const symbols = this.symbols("callRaw()");
    const code = symbols.krepis_call(request, BigInt(request.length), this.#responseBytes);
    if (code !== 0) throw this.error(symbols, code);
    let taken = -1;
    try {
      const length = Number(this.#response[1]);
      const bytes = allocate(length);
      // One call copies the kernel's bytes into ours and frees them: cheaper
      // than reading through a pointer view and freeing separately.
      taken = symbols.krepis_buffer_take(this.#responseBytes, bytes, BigInt(length));
      if (taken !== 0) throw this.error(symbols, taken);
      return bytes;
    } finally {
      // Whatever failed above, the kernel's buffer is not leaked.
      if (taken !== 0) symbols.krepis_buffer_free(this.#responseBytes);
    }
  }

  /** Sends a request and decodes the answer. */
  request(action: string, request: RequestInit): Response {
    this.symbols(action);
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

  /** The error for a failed call, with the kernel's message. */
  error(symbols: Library["symbols"], code: number): KernelError {
    const pointer = symbols.krepis_last_error();
    const message = pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
    const name = RESULT_NAMES[code] ?? `code ${code}`;
    // The kernel's messages already read "Cannot …"; a Fail request's is
    // the caller's own text.
    const text = kernelText(message);
    const [first, ...rest] = text.message.split("\n");
    const lead = first.startsWith("Cannot ") ? first : `Cannot complete the kernel call: ${first}`;
    return new KernelError([`${lead} (${name})`, ...rest].join("\n"), code, name, {
      ...(text.hint === undefined ? {} : { hint: text.hint }),
    });
  }

  /**
   * Throws `KernelError` `UNSUPPORTED` unless the kernel's `BuildInfo`
   * lists `capability`: "not available on <target>" instead of a call the
   * kernel cannot answer. The hint says whether this target's release
   * kernel has it (matrix/targets.json's `features`).
   */
  require(capability: string, action: string): void {
    if (this.#capabilities === undefined) {
      const info = this.request(action, { buildInfo: {} }).buildInfo;
      this.#capabilities = Object.freeze([...(info?.capabilities ?? [])]);
      this.#target = info?.target ?? "";
    }
    if (this.#capabilities.includes(capability)) return;
    const has = this.#capabilities.length > 0 ? this.#capabilities.join(", ") : "none";
    const release = TARGETS.find((t) => t.triple === this.#target);
    const hint = release && !release.features.includes(capability)
      ? `the ${this.#target} release kernel is built without it; the loader's README lists which targets have which capabilities`
      : "use the release kernel of the loader's version, which has it";
    throw new KernelError(
      `Cannot ${action}: not available on ${this.#target} (this kernel lacks the "${capability}" capability; it has: ${has}) (UNSUPPORTED)`,
      UNSUPPORTED,
      "UNSUPPORTED",
      { hint },
    );
  }

  /** Wraps the kernel's view `id` (of `length` bytes) without copying it. */
  view(id: bigint, length: bigint): KernelView {
    const symbols = this.symbols("view");
    let buffer: ArrayBuffer;
    try {
      const code = symbols.krepis_view_get(id, this.#lentBytes);
      if (code !== 0) throw this.error(symbols, code);
      if (this.#lent[1] !== length) {
        throw new Error(
          `Cannot read view ${id}: the kernel lends ${
            this.#lent[1]
          } bytes, not the ${length} it announced`,
        );
      }
      const pointer = Deno.UnsafePointer.create(this.#lent[0]);
      buffer = pointer === null
        ? new ArrayBuffer(0)
        : Deno.UnsafePointerView.getArrayBuffer(pointer, Number(length));
    } catch (error) {
      this.release(id);
      throw error;
    }
    pin(buffer);
    const view = new KernelView(KERNEL_TOKEN, id, buffer, this);
    this.#views.set(id, { view: new WeakRef(view), buffer: new WeakRef(buffer) });
    this.#collector.register(buffer, id, buffer);
    return view;
  }

  /** Frees the kernel's bytes of view `id` (a no-op once closed). */
  release(id: bigint): void {
    this.#library?.symbols.krepis_view_release(id);
  }

  /** Forgets a view its owner closed. */
  forget(id: bigint): void {
    const buffer = this.#views.get(id)?.buffer.deref();
    if (buffer) this.#collector.unregister(buffer);
    this.#views.delete(id);
  }

  /** Runs `closer` before the library closes; returns how to cancel that. */
  onClose(closer: () => void): () => void {
    this.#closers.add(closer);
    return () => this.#closers.delete(closer);
  }

  /**
   * Closes what depends on the library (journals, then views: each view's
   * buffers are detached before its memory is freed), then the library.
   */
  close(): void {
    if (this.#library === null) return;
    for (const closer of [...this.#closers]) {
      try {
        closer();
      } catch {
        // Closing must finish: the library is closed regardless.
      }
    }
    this.#closers.clear();
    for (const [id, lent] of [...this.#views]) {
      const view = lent.view.deref();
      if (view) {
        view.close();
        continue;
      }
      const buffer = lent.buffer.deref();
      if (buffer) {
        this.#collector.unregister(buffer);
        // Moved elsewhere by a transfer list: left allocated (see KernelView).
        if (buffer.detached) continue;
        detach(buffer);
      }
      this.release(id);
    }
    this.#views.clear();
    this.#library.close();
    this.#library = null;
  }
}

/**
 * The kernel's error text as its message and its hint. The kernel's C
 * boundary renders `message`, then `\nHint: hint` when there is one; this is
 * the one place in the loader that reads a hint back out of a text.
 */
export function kernelText(text: string): { message: string; hint?: string } {
  const at = text.indexOf("\nHint: ");
  if (at < 0) return { message: text };
  return { message: text.slice(0, at), hint: text.slice(at + "\nHint: ".length) };
}
