/**
 * Error classes for the conditions a caller is expected to catch. Other
 * failures use the built-in classes (`Error`, `Deno.errors.NotFound`, ...).
 *
 * Messages read `Cannot <action>: <state>` and, where there is a fix, a
 * hint on the next line. Every class extends {@linkcode KrepisError}: a
 * stable string `code` (what a program tests, never the wording, and the
 * row of the CLI's exit-code table) and the hint on its own, as `hint`,
 * passed in when the error is made, never read back out of the message.
 * `KernelError` keeps the kernel's numeric result as `result`.
 *
 * @module
 */

import type { AbiInfo } from "./abi.ts";

/** What every loader error takes besides its message: the hint, and the standard `cause`. */
export interface KrepisErrorOptions extends ErrorOptions {
  /** What to do about it, shown on the line after the message. */
  hint?: string;
}

/**
 * The one base class of the loader's errors: a stable string `code` and a
 * `hint` passed in. The message shown is the given message with the hint on
 * the next line (`Hint: …`).
 *
 * @example Telling a loader error apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheError, KrepisError } from "@krepis/loader";
 *
 * const error = new CacheError("Cannot write x: disk full", { hint: "free some space" });
 * assert.ok(error instanceof KrepisError);
 * assert.deepEqual([error.code, error.hint], ["CACHE", "free some space"]);
 * assert.equal(error.message, "Cannot write x: disk full\nHint: free some space");
 * ```
 */
export class KrepisError extends Error {
  /** Stable, machine-readable condition, e.g. `"CACHE"`. */
  readonly code: string;
  /** What to do about it, or null. */
  readonly hint: string | null;
  /** The message without its hint line. */
  readonly summary: string;

  /**
   * Builds the error.
   *
   * @param code The stable condition.
   * @param message What could not be done and why (`Cannot <action>: <state>`).
   * @param options The hint and the standard `cause`.
   */
  constructor(code: string, message: string, options: KrepisErrorOptions = {}) {
    super(
      options.hint === undefined ? message : `${message}\nHint: ${options.hint}`,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.code = code;
    this.hint = options.hint ?? null;
    this.summary = message;
  }
}

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
export class AbiMismatchError extends KrepisError {
  /** Stable, machine-readable condition: `"ABI_MISMATCH"`. */
  declare readonly code: "ABI_MISMATCH";
  /** The library that was refused. */
  readonly path: string;
  /** The ABI this loader needs. */
  readonly expected: AbiInfo;
  /** The ABI the library reported, or `null` when it exports none. */
  readonly found: AbiInfo | null;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param path The library that was refused.
   * @param expected The ABI this loader needs.
   * @param found The ABI the library reported, or `null`.
   */
  constructor(
    message: string,
    path: string,
    expected: AbiInfo,
    found: AbiInfo | null,
    options?: KrepisErrorOptions,
  ) {
    super("ABI_MISMATCH", message, options);
    this.name = "AbiMismatchError";
    this.path = path;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * The kernel answered a call with a result code other than OK.
 *
 * @example Reading the result of a failed call
 * ```ts
 * import assert from "node:assert/strict";
 * import { KernelError } from "@krepis/loader";
 *
 * const error = new KernelError("Cannot call the kernel: boom", 5, "FAILED", { hint: "retry" });
 * assert.deepEqual([error.code, error.result, error.codeName], ["KERNEL", 5, "FAILED"]);
 * assert.equal(error.hint, "retry");
 * ```
 */
export class KernelError extends KrepisError {
  /** Stable, machine-readable condition: `"KERNEL"`. */
  declare readonly code: "KERNEL";
  /** The kernel's numeric `KrepisResult`. */
  readonly result: number;
  /** The result's name without the `KREPIS_RESULT_` prefix, e.g. `"MALFORMED_REQUEST"`. */
  readonly codeName: string;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What the kernel said, without its hint.
   * @param result The numeric result.
   * @param codeName The result's name.
   * @param options The kernel's hint and the standard `cause`.
   */
  constructor(message: string, result: number, codeName: string, options?: KrepisErrorOptions) {
    super("KERNEL", message, options);
    this.name = "KernelError";
    this.result = result;
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
export class UnsupportedPlatformError extends KrepisError {
  /** Stable, machine-readable condition: `"UNSUPPORTED_PLATFORM"`. */
  declare readonly code: "UNSUPPORTED_PLATFORM";
  /** The platform found, e.g. `"linux/riscv64 (gnu)"`, or the triple asked for. */
  readonly platform: string;
  /** The triples that are supported. */
  readonly supported: readonly string[];

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param platform The platform found.
   * @param supported The supported triples.
   */
  constructor(
    message: string,
    platform: string,
    supported: readonly string[],
    options?: KrepisErrorOptions,
  ) {
    super("UNSUPPORTED_PLATFORM", message, options);
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
export class IntegrityError extends KrepisError {
  /** Stable, machine-readable condition: `"INTEGRITY"`. */
  declare readonly code: "INTEGRITY";
  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: KrepisErrorOptions) {
    super("INTEGRITY", message, options);
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
export class OfflineError extends KrepisError {
  /** Stable, machine-readable condition: `"OFFLINE"`. */
  declare readonly code: "OFFLINE";
  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   */
  constructor(message: string, options?: KrepisErrorOptions) {
    super("OFFLINE", message, options);
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
export class CacheError extends KrepisError {
  /** Stable, machine-readable condition: `"CACHE"`. */
  declare readonly code: "CACHE";
  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: KrepisErrorOptions) {
    super("CACHE", message, options);
    this.name = "CacheError";
  }
}

/**
 * The network failed: the release host is unreachable, timed out, answered
 * with an HTTP error, or a URL was refused by policy (plain http off
 * loopback, a redirect from https to http). Nothing unverified was cached.
 *
 * @example Reading the HTTP status of a failed download
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetworkError } from "@krepis/loader";
 *
 * const error = new NetworkError("Cannot download https://x/y: the server answered 404", { status: 404 });
 * assert.deepEqual([error.code, error.status], ["NETWORK", 404]);
 * ```
 */
export class NetworkError extends KrepisError {
  /** Stable, machine-readable condition: `"NETWORK"`. */
  declare readonly code: "NETWORK";
  /** The HTTP status, when the server answered with an error. */
  readonly status: number | null;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param options `status` (HTTP) and the standard `cause`.
   */
  constructor(message: string, options: KrepisErrorOptions & { status?: number } = {}) {
    super("NETWORK", message, options);
    this.name = "NetworkError";
    this.status = options.status ?? null;
  }
}

/**
 * A Deno permission the operation needs was not granted. Never retried:
 * the hint names the flag to add.
 *
 * @example Naming the missing flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { PermissionError } from "@krepis/loader";
 *
 * const error = new PermissionError("Cannot open the kernel: no FFI permission", "--allow-ffi");
 * assert.equal(error.flag, "--allow-ffi");
 * ```
 */
export class PermissionError extends KrepisError {
  /** Stable, machine-readable condition: `"PERMISSION"`. */
  declare readonly code: "PERMISSION";
  /** What to do about it: the flag to add. */
  declare readonly hint: string;
  /** The Deno flag that grants it, e.g. `--allow-net`. */
  readonly flag: string;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done, without a hint (one is added).
   * @param flag The Deno flag that grants the permission.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, flag: string, options?: ErrorOptions) {
    super("PERMISSION", message, {
      ...options,
      hint: `run Deno with ${flag} (README: "Permissions" lists what each use needs)`,
    });
    this.name = "PermissionError";
    this.flag = flag;
  }
}

/**
 * A project's journal refused or could not do what was asked: another
 * process holds it (`reason` `"BUSY"`), a path outside the project, nothing
 * to undo, a damaged snapshot, a closed journal or transaction, … The
 * project's files are as they were before the call (an undo that stopped
 * part way is finished by the next open, and says so).
 *
 * @example Telling a busy journal apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { JournalError } from "@krepis/loader";
 *
 * const error = new JournalError("Cannot open the journal in /p/.krepis: another process has it open", "BUSY", {
 *   hint: "wait",
 * });
 * assert.deepEqual([error.code, error.reason, error.hint], ["JOURNAL", "BUSY", "wait"]);
 * ```
 */
export class JournalError extends KrepisError {
  /** Stable, machine-readable condition: `"JOURNAL"`. */
  declare readonly code: "JOURNAL";
  /**
   * The kernel's result name: `"BUSY"` (another process holds the journal),
   * `"UNKNOWN_HANDLE"` (closed journal, finished transaction), `"FAILED"`
   * (refused or failed; the message says why), `"UNSUPPORTED"` (this kernel
   * has no journal).
   */
  readonly reason: string;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param reason The kernel's result name.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, reason: string, options?: KrepisErrorOptions) {
    super("JOURNAL", message, options);
    this.name = "JournalError";
    this.reason = reason;
  }
}

/**
 * The server engine failed: an address that is malformed or cannot be
 * bound, a stopped server, or a kernel without the engine.
 *
 * @example Telling a busy port from other failures
 * ```ts
 * import { ServerError } from "@krepis/loader";
 * import assert from "node:assert/strict";
 *
 * const error = new ServerError(
 *   "Cannot start the server: cannot listen on 127.0.0.1:80 (in use) (FAILED)",
 *   "FAILED",
 *   { hint: "listen on port 0" },
 * );
 * assert.deepEqual([error.code, error.reason, error.hint], ["SERVER", "FAILED", "listen on port 0"]);
 * ```
 */
export class ServerError extends KrepisError {
  /** Stable, machine-readable condition: `"SERVER"`. */
  declare readonly code: "SERVER";
  /**
   * `"FAILED"` (the message says why: malformed address, port in use, …),
   * `"UNSUPPORTED"` (this kernel has no server engine), `"CLOSED"` (the
   * server was stopped), or another kernel result name.
   */
  readonly reason: string;

  /**
   * Builds the error; use the class only to check `instanceof`.
   *
   * @param message What could not be done and why, without the hint.
   * @param reason The kernel's result name, or `"CLOSED"`.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, reason: string, options?: KrepisErrorOptions) {
    super("SERVER", message, options);
    this.name = "ServerError";
    this.reason = reason;
  }
}
