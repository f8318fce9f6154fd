/**
 * Where the kernel cache lives.
 *
 * @module
 */

import { absolute, isAbsolute, join, normalize } from "./_internal/path.ts";
import { readEnv } from "./_internal/env.ts";
import { PermissionError } from "./errors.ts";

/**
 * The cache root: `KREPIS_CACHE_DIR` (made absolute), else the OS cache
 * directory plus `krepis` (`$XDG_CACHE_HOME` when it is absolute, as the XDG
 * specification requires, else `~/.cache` on Linux; `~/Library/Caches` on
 * macOS; `%LOCALAPPDATA%` on Windows).
 *
 * @returns An absolute path (not created).
 * @throws {PermissionError} When the environment may not be read (`--allow-env`).
 * @throws {Error} When neither `KREPIS_CACHE_DIR` nor a home directory is known.
 *
 * @example Printing the cache root
 * ```ts
 * import { cacheRoot } from "@krepis/loader";
 *
 * console.log(cacheRoot());
 * ```
 */
export function cacheRoot(): string {
  const explicit = readEnv("KREPIS_CACHE_DIR");
  if (explicit) return normalize(absolute(explicit));
  const home = readEnv("HOME") ?? readEnv("USERPROFILE");
  let base: string | undefined;
  if (Deno.build.os === "windows") base = readEnv("LOCALAPPDATA");
  else if (Deno.build.os === "darwin") base = home && join(home, "Library", "Caches");
  else {
    // The XDG Base Directory specification: a relative XDG_CACHE_HOME is invalid and ignored.
    const xdg = readEnv("XDG_CACHE_HOME");
    base = xdg && isAbsolute(xdg) ? xdg : home && join(home, ".cache");
  }
  if (!base) {
    const variable = Deno.build.os === "windows" ? "LOCALAPPDATA" : "HOME";
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") {
      throw new PermissionError(
        `Cannot find the cache directory: no permission to read ${variable} (or KREPIS_CACHE_DIR)`,
        "--allow-env",
      );
    }
    throw new Error(
      "Cannot find a cache directory: no home directory is set\nHint: set KREPIS_CACHE_DIR to a directory only you can write",
    );
  }
  return normalize(join(base, "krepis"));
}
