/**
 * `@krepis/loader`: opens the Krepis native kernel from Deno, verifies its
 * ABI before binding anything, and exposes a typed API.
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
 * @module
 */

export * from "./abi.ts";
export * from "./errors.ts";
export * from "./kernel.ts";
export * from "./load.ts";
export * from "./platform.ts";
export * from "./manifest.ts";
export * from "./minisign.ts";
export * from "./cache_dir.ts";
export * from "./install.ts";
