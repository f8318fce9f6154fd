/**
 * Every failure as one of the loader's error classes, so that callers and
 * the CLI decide by class: a missing Deno permission becomes a
 * {@linkcode PermissionError} naming the flag; a file-system failure (a
 * read-only disk, a full disk, a file where a directory should be, a
 * directory where a file should be) a {@linkcode CacheError} with a hint.
 */

import { CacheError, KrepisError } from "../errors.ts";
import { DISK_FULL_HINT, isDiskFull, osErrorCode } from "./os_error.ts";
import { permissionError } from "./permission.ts";

/**
 * @param error What was thrown.
 * @param action What was being done, e.g. `"install the kernel"`.
 * @param cacheDir The cache root, for the message. @default {the cache}
 * @returns The error as one of the loader's classes, or `error` itself when it is not an OS failure.
 */
export function asKrepisError(error: unknown, action: string, cacheDir?: string): unknown {
  if (error instanceof Deno.errors.NotCapable) return permissionError(error, action);
  const ours = error instanceof KrepisError || error instanceof Deno.errors.TimedOut ||
    error instanceof TypeError;
  if (ours || !(error instanceof Error) || osErrorCode(error) === null) return error;
  const full = isDiskFull(error);
  return new CacheError(
    `Cannot ${action}${cacheDir ? ` (cache at ${cacheDir})` : ""}: ${
      full ? "the disk is full" : error.message
    }`,
    {
      cause: error,
      hint: full
        ? DISK_FULL_HINT
        : "check that KREPIS_CACHE_DIR (or --cache-dir) is a directory you can write, and remove whatever stands where the cache's files should be",
    },
  );
}
