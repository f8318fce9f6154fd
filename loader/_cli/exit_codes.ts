/**
 * The one table of the `krepis` command's exit codes: `--help` prints it,
 * the README's table is checked against it, and each error class's `code`
 * names its row.
 *
 * @module
 */

import { KrepisError } from "../errors.ts";

/** Exit codes of the `krepis` command, one per failure class. */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  unsupported: 3,
  integrity: 4,
  abi: 5,
  offline: 6,
  network: 7,
  cache: 8,
  permission: 9,
  journal: 10,
} as const;

/** What each exit code means, as `--help` and the README say it. */
export const MEANING: Record<number, string> = {
  0: "success",
  1: "unexpected failure",
  2: "usage error (unknown command or option, bad value)",
  3: "platform or target not supported",
  4: "integrity: bytes, manifest or signature did not verify, or a library is not loadable",
  5: "ABI mismatch between this loader and the kernel",
  6: "offline and not cached",
  7: "network: unreachable, timed out, an HTTP error, or a URL refused by policy",
  8: "cache: unsafe or foreign cache directory, disk full, file in use",
  9: "permission: a Deno permission is missing (the hint names the flag)",
  10: "journal: none here, held by another process, nothing to undo, damaged, outside the project",
};

/** The meanings of exit 0, 1, 2 and the given codes, for a command's `--help`. */
export function codes(...which: number[]): Record<number, string> {
  return Object.fromEntries([0, 1, 2, ...which].map((code) => [code, MEANING[code]]));
}

/**
 * The exit code of each error `code`: the row of the table a loader error
 * class names. `KERNEL` and `SERVER` (a refused kernel call, a server that
 * failed) are unexpected for a command, so exit 1.
 */
export const ERROR_EXITS: Readonly<Record<string, number>> = {
  UNSUPPORTED_PLATFORM: EXIT_CODES.unsupported,
  INTEGRITY: EXIT_CODES.integrity,
  ABI_MISMATCH: EXIT_CODES.abi,
  OFFLINE: EXIT_CODES.offline,
  NETWORK: EXIT_CODES.network,
  CACHE: EXIT_CODES.cache,
  PERMISSION: EXIT_CODES.permission,
  JOURNAL: EXIT_CODES.journal,
  KERNEL: EXIT_CODES.failure,
  SERVER: EXIT_CODES.failure,
};

/** The exit code for a failure. */
export function exitCode(error: unknown): number {
  // By code, never by message text: rewording a message changes no exit code.
  if (error instanceof KrepisError) return ERROR_EXITS[error.code] ?? EXIT_CODES.failure;
  // Deno's own classes for a timeout and a refused permission.
  if (error instanceof Deno.errors.TimedOut) return EXIT_CODES.network;
  if (error instanceof Deno.errors.NotCapable) return EXIT_CODES.permission;
  return EXIT_CODES.failure;
}
