/**
 * `@krepis/loader`: opens the Krepis native kernel from Deno, verifies its
 * ABI before calling anything else, and exposes a typed API.
 *
 * ```ts
 * import { load } from "@krepis/loader";
 *
 * using kernel = await load({ path: Deno.env.get("KREPIS_KERNEL_PATH") });
 * console.log(kernel.version, kernel.abi, kernel.buildInfo());
 * console.log(new TextDecoder().decode(kernel.echo(new TextEncoder().encode("hi"))));
 * ```
 *
 * A library whose ABI major differs, whose minor is older than the loader
 * needs, or whose fingerprint differs is refused with an
 * {@linkcode AbiMismatchError}.
 *
 * This module is what a user of the kernel needs: {@linkcode load},
 * {@linkcode install}, the {@linkcode Kernel}, the error classes (each with
 * a stable `code` and a `hint`) and platform resolution. The release
 * format (manifest, minisign signatures), which the release step shares
 * with the loader, is `@krepis/loader/release`; the command line is
 * `@krepis/loader/cli`.
 *
 * @module
 */

export { type AbiInfo, LOADER_ABI } from "./abi.ts";
export {
  AbiMismatchError,
  CacheError,
  IntegrityError,
  JournalError,
  KernelError,
  KrepisError,
  type KrepisErrorOptions,
  NetworkError,
  OfflineError,
  PermissionError,
  ServerError,
  UnsupportedPlatformError,
} from "./errors.ts";
export { type BuildInfo, Kernel } from "./kernel/kernel.ts";
export {
  type ForgetOptions,
  Journal,
  type JournalEntry,
  type JournalOpenOptions,
  Journals,
  type Recovery,
  type Restored,
  type TrackedFile,
  Transaction,
  type UndoOptions,
} from "./kernel/journal.ts";
export {
  Server,
  type ServerOptions,
  Servers,
  type ServerStats,
  type StopOptions,
} from "./kernel/server.ts";
export { KernelView } from "./kernel/view.ts";
export { load, type LoadOptions } from "./load.ts";
export {
  currentPlatform,
  type Platform,
  resolveTarget,
  supportedTriples,
  type TargetInfo,
} from "./platform.ts";
export { cacheRoot } from "./cache_dir.ts";
export {
  install,
  type Installation,
  type InstallOptions,
  type PinnedChecksums,
  type PinnedFile,
  type Progress,
  type VerifyMode,
  VERSION,
} from "./install.ts";
