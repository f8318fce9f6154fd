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
 * import { AbiMismatchError } from "@krepis/loader";
 *
 * const error = new AbiMismatchError(
 *   "Cannot load kernel libkrepis_kernel.so: ABI 2.0 is not 1.0",
 *   "libkrepis_kernel.so",
 *   { major: 1, minor: 0, fingerprint: "a".repeat(64) },
 *   { major: 2, minor: 0, fingerprint: "b".repeat(64) },
 * );
 * console.assert(error instanceof AbiMismatchError && error.found?.major === 2);
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
 * import { KernelError } from "@krepis/loader";
 *
 * const error = new KernelError("Cannot call the kernel: boom", 5, "FAILED");
 * console.assert(error.code === 5 && error.codeName === "FAILED");
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
