/**
 * `load()`: open a kernel library, verify its ABI, return the typed API.
 *
 * @module
 */

import { absolute } from "./_internal/path.ts";
import { permissionError } from "./_internal/permission.ts";
import { install, INSTALL_OPTION_KEYS, type InstallOptions } from "./install.ts";
import { checkKeys } from "./_internal/options.ts";
import { readEnv } from "./_internal/env.ts";
import { IntegrityError } from "./errors.ts";
import { type AbiInfo, LOADER_ABI } from "./abi.ts";
import { Kernel } from "./kernel/kernel.ts";
import { SYMBOLS } from "./_gen/ffi.ts";
import { checkAbi, missingSymbols, noAbi } from "./kernel/check_abi.ts";
import { KERNEL_TOKEN } from "./kernel/token.ts";

/** Options for {@linkcode load}: where to find the kernel. */
export interface LoadOptions extends InstallOptions {
  /**
   * A kernel library to open instead of the release binary (development
   * builds). Nothing is downloaded; the ABI is checked all the same.
   *
   * @default {the value of `KREPIS_KERNEL_PATH`}
   */
  path?: string;
}

const PROBE = {
  krepis_abi_version: SYMBOLS.krepis_abi_version,
  krepis_abi_fingerprint: SYMBOLS.krepis_abi_fingerprint,
} as const;

/**
 * Finds the kernel, checks its ABI before calling anything else, and
 * returns the typed {@linkcode Kernel}.
 *
 * Without `path` (or `KREPIS_KERNEL_PATH`), the release binary for this
 * machine is installed first with {@linkcode install}: fetched, verified
 * against a trusted checksum, and cached; a warm cache needs no network.
 *
 * The library is then opened with the loader's symbol table, and nothing
 * but `krepis_abi_version` and `krepis_abi_fingerprint` is called until the
 * major, the minor and the fingerprint were accepted. A library that lacks
 * a symbol of the table is reopened with those two alone, to say whether it
 * is of another ABI, not a kernel at all, or a newer minor missing a symbol.
 *
 * A development library given by `path` or `KREPIS_KERNEL_PATH` was never
 * hash-verified, so its file is checked first: a regular file (a FIFO
 * would make `dlopen` wait forever), the OS's format and this CPU, and at
 * least as long as its own headers say (a truncated file would end the
 * process with a bus error inside `dlopen`).
 *
 * Permissions: a warm load needs `--allow-env`, `--allow-read=<cache>`
 * (on Linux also `/proc/self/maps`), `--allow-ffi` (unscoped: pointer views
 * need it) and, except on Windows, `--allow-sys=uid`; a download adds
 * `--allow-write=<cache>` and `--allow-net=<host>`. A missing one is a
 * `PermissionError` naming its flag.
 *
 * @param options Which library to open, or how to install it.
 * @returns The verified kernel. Close it (or `using`) when done.
 * @throws {AbiMismatchError} When the library's ABI major differs, its minor
 *   is older than the loader needs, its fingerprint differs, or it is not a
 *   Krepis kernel.
 * @throws {UnsupportedPlatformError} When no kernel is shipped for this machine.
 * @throws {IntegrityError} When downloaded bytes or the manifest do not verify,
 *   or a development library (`path`, `KREPIS_KERNEL_PATH`) does not exist,
 *   is not a regular file, not a shared library for this OS and CPU, or
 *   shorter than its headers say (checked before `dlopen`, which would hang
 *   or crash on it); its hint names where the path came from.
 * @throws {CacheError} When the cache cannot be used (see `install()`).
 * @throws {NetworkError} When the download fails.
 * @throws {PermissionError} When a Deno permission is missing (its hint names the flag).
 * @throws {OfflineError} When offline and the kernel is not cached.
 * @throws {TypeError} When `path` is empty.
 * @throws {Error} When the OS refuses to open a file that passed those checks.
 * @throws {TypeError} When `options` has a key it does not know (the nearest known one is named).
 *
 * @example Loading a development build
 * ```ts
 * import { load } from "@krepis/loader";
 *
 * // KREPIS_KERNEL_PATH names a kernel built with `cargo build`.
 * using kernel = await load({ path: Deno.env.get("KREPIS_KERNEL_PATH") });
 * const info = kernel.buildInfo();
 * console.log(`krepis ${kernel.version} (${info.target}), ABI ${kernel.abi.major}.${kernel.abi.minor}`);
 * ```
 */
export async function load(options: LoadOptions = {}): Promise<Kernel> {
  checkKeys("load the kernel", options, [...INSTALL_OPTION_KEYS, "path"]);
  try {
    return await loadChecked(options);
  } catch (error) {
    // Deno's own refusal, wherever it came from, names the flag to add.
    throw permissionError(error, "load the kernel");
  }
}

async function loadChecked(options: LoadOptions): Promise<Kernel> {
  const { path: asked, ...installOptions } = options;
  if (asked === "") {
    throw new TypeError(
      `Cannot load the kernel: path is empty\nHint: pass the library file, or leave path out to load the release kernel`,
    );
  }
  const development = asked ?? readEnv("KREPIS_KERNEL_PATH");
  // Where the path came from, for the hint: the caller's option or the variable.
  const source = asked !== undefined
    ? "the path given to load({ path })"
    : "KREPIS_KERNEL_PATH (or unset it to load the release kernel)";
  const given = development ?? (await install(installOptions)).path;
  // An absolute path: a bare file name would make the OS search its library
  // path and could open some other file.
  const path = absolute(given);
  try {
    // A development library was never hash-verified: its file is checked
    // (regular, this OS and CPU, as long as its headers say) so that dlopen
    // cannot hang on a FIFO or kill the process on a truncated file. The
    // cache holds only verified bytes, and install() has just checked the
    // file is there: nothing more to do on the warm path.
    if (development !== undefined) {
      // Loaded only here: the warm path from the cache never needs it.
      const { checkLibraryFile } = await import("./kernel/library_file.ts");
      await checkLibraryFile(path);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw permissionError(error, `load kernel ${path}`);
    }
    if (error instanceof Deno.errors.NotFound) {
      // Not a loadable file, as a file that is no library: an IntegrityError (code INTEGRITY).
      throw new IntegrityError(
        `Cannot load kernel ${path}: no such file`,
        { cause: error, hint: `build it with \`cargo build -p krepis-kernel\`, or fix ${source}` },
      );
    }
    throw error;
  }
  // One dlopen binds the whole table (binding calls nothing); only the two
  // ABI functions are called before the ABI is accepted, and the image that
  // was checked is the one the Kernel keeps.
  let library: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    library = Deno.dlopen(path, SYMBOLS);
  } catch (error) {
    throw whyNotOpened(path, error);
  }
  let found: AbiInfo;
  try {
    found = readAbi(library);
    checkAbi(path, LOADER_ABI, found);
  } catch (error) {
    library.close();
    throw error;
  }
  return new Kernel(KERNEL_TOKEN, library, path, found);
}

/**
 * Why the full table could not be bound: the library is reopened with the
 * two ABI symbols alone, so that a kernel of another ABI is named as such
 * (not as a missing symbol), a file without them as not a kernel, and an
 * accepted newer minor as lacking a symbol.
 */
function whyNotOpened(path: string, error: unknown): unknown {
  if (error instanceof Deno.errors.NotCapable) return permissionError(error, `load kernel ${path}`);
  const message = error instanceof Error ? error.message : String(error);
  if (!/symbol/i.test(message)) {
    return new Error(
      `Cannot load kernel ${path}: the OS refused to open it (${message})\nHint: check that the file is a kernel library built for this platform`,
      { cause: error },
    );
  }
  let probe: Deno.DynamicLibrary<typeof PROBE>;
  try {
    probe = Deno.dlopen(path, PROBE);
  } catch (probeError) {
    return noAbi(path, LOADER_ABI, probeError);
  }
  try {
    const found = readAbi(probe);
    checkAbi(path, LOADER_ABI, found);
    return missingSymbols(path, LOADER_ABI, found, error);
  } catch (mismatch) {
    return mismatch;
  } finally {
    probe.close();
  }
}

function readAbi(library: Deno.DynamicLibrary<typeof PROBE>): AbiInfo {
  const packed = library.symbols.krepis_abi_version();
  const pointer = library.symbols.krepis_abi_fingerprint();
  const fingerprint = pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
  return { major: packed >>> 16, minor: packed & 0xffff, fingerprint };
}
