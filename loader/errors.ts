/**
 * Error classes for the conditions a caller is expected to catch. Other
 * failures use the built-in classes (`Error`, `Deno.errors.NotFound`, ...).
 *
 * Messages read `Cannot <action>: <state>` and, where there is a fix, a
 * hint on the next line.
 *
 * @module
 */

import type { AbiInfo } from "./abi.ts";

/**
 * The library's ABI is not the one this loader was built for: another major,
 * an older minor, another fingerprint, or no Krepis ABI at all.
 *
 * @example Telling an ABI mismatch apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { AbiMismatchError } from "@krepis/loader";
 *
 * const error = new AbiMismatchError(
 *   "Cannot load kernel libkrepis_kernel.so: ABI 2.0 is not 1.0",
 *   "libkrepis_kernel.so",
 *   { major: 1, minor: 0, fingerprint: "a".repeat(64) },
 *   { major: 2, minor: 0, fingerprint: "b".repeat(64) },
 * );
 * assert.ok(error instanceof Error && error.found?.major === 2);
 * ```
 */
export class AbiMismatchError extends Error {
  /** The library that was refused. */
  readonly path: string;
  /** The ABI this loader needs. */
  readonly expected: AbiInfo;
  /** The ABI the library reported, or `null` when it exports none. */
  readonly found: AbiInfo | null;

  /**
   * @param message The full message, hint included.
   * @param path The library that was refused.
   * @param expected The ABI this loader needs.
   * @param found The ABI the library reported, or `null`.
   */
  constructor(message: string, path: string, expected: AbiInfo, found: AbiInfo | null) {
    super(message);
    this.name = "AbiMismatchError";
    this.path = path;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * The kernel answered a call with a result code other than OK.
 *
 * @example Reading the code of a failed call
 * ```ts
 * import assert from "node:assert/strict";
 * import { KernelError } from "@krepis/loader";
 *
 * const error = new KernelError("Cannot call the kernel: boom", 5, "FAILED");
 * assert.deepEqual([error.code, error.codeName], [5, "FAILED"]);
 * ```
 */
export class KernelError extends Error {
  /** The numeric `KrepisResult` code. */
  readonly code: number;
  /** The code's name without the `KREPIS_RESULT_` prefix, e.g. `"MALFORMED_REQUEST"`. */
  readonly codeName: string;

  /**
   * @param message The full message.
   * @param code The numeric result code.
   * @param codeName The code's name.
   */
  constructor(message: string, code: number, codeName: string) {
    super(message);
    this.name = "KernelError";
    this.code = code;
    this.codeName = codeName;
  }
}

/**
 * No kernel is shipped for this machine (or for the target asked for).
 *
 * @example Listing what is supported
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnsupportedPlatformError } from "@krepis/loader";
 *
 * const error = new UnsupportedPlatformError("Cannot find a kernel: linux/riscv64", "linux/riscv64", ["x86_64-unknown-linux-gnu"]);
 * assert.deepEqual(error.supported, ["x86_64-unknown-linux-gnu"]);
 * ```
 */
export class UnsupportedPlatformError extends Error {
  /** The platform found, e.g. `"linux/riscv64 (gnu)"`, or the triple asked for. */
  readonly platform: string;
  /** The triples that are supported. */
  readonly supported: readonly string[];

  /**
   * @param message The full message, hint included.
   * @param platform The platform found.
   * @param supported The supported triples.
   */
  constructor(message: string, platform: string, supported: readonly string[]) {
    super(message);
    this.name = "UnsupportedPlatformError";
    this.platform = platform;
    this.supported = supported;
  }
}

/**
 * Bytes did not match a trusted checksum, or a manifest or signature could
 * not be trusted. Nothing unverified was cached or loaded.
 *
 * @example Catching an integrity failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { IntegrityError } from "@krepis/loader";
 *
 * const error = new IntegrityError("Cannot verify libkrepis_kernel.so: SHA-256 mismatch");
 * assert.equal(error.name, "IntegrityError");
 * ```
 */
export class IntegrityError extends Error {
  /**
   * @param message The full message, hint included.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "IntegrityError";
  }
}

/**
 * Offline mode (`KREPIS_OFFLINE=1` or `offline: true`) and the kernel is not
 * in the cache.
 *
 * @example Recognizing an offline miss
 * ```ts
 * import assert from "node:assert/strict";
 * import { OfflineError } from "@krepis/loader";
 *
 * const error = new OfflineError("Cannot install the kernel offline: not cached");
 * assert.equal(error.name, "OfflineError");
 * ```
 */
export class OfflineError extends Error {
  /**
   * @param message The full message, hint included.
   */
  constructor(message: string) {
    super(message);
    this.name = "OfflineError";
  }
}

/**
 * The cache cannot be used or written: a directory other users could
 * write to, the disk is full, or (on Windows) a file that a process has
 * loaded stands where a file must be replaced or removed. Nothing
 * unverified was cached or loaded.
 *
 * @example Telling a full disk apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheError } from "@krepis/loader";
 *
 * const error = new CacheError("Cannot write to the cache: the disk is full");
 * assert.equal(error.name, "CacheError");
 * ```
 */
export class CacheError extends Error {
  /**
   * @param message The full message, hint included.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CacheError";
  }
}
