/**
 * Which machine is this: OS, CPU and (on Linux) C library, and the shipped
 * target that runs on it. The facts are the data table in `_gen/targets.ts`,
 * generated from `matrix/targets.json`.
 *
 * @module
 */

import { UnsupportedPlatformError } from "./errors.ts";
import { TARGETS } from "./_gen/targets.ts";
import type { TargetInfo } from "./types.ts";
import { detectLibc } from "./_internal/libc.ts";

export type { TargetInfo } from "./types.ts";

/** A machine as the loader sees it. */
export interface Platform {
  /** `Deno.build.os`. */
  os: string;
  /** `Deno.build.arch`. */
  arch: string;
  /** `"gnu"` or `"musl"` on Linux, `null` elsewhere. */
  libc: "gnu" | "musl" | null;
}

/**
 * Describes this machine. On Linux the C library is read from
 * `/proc/self/maps` (the libraries this process really mapped), a file read
 * rather than a spawned `ldd`; without read permission it falls back to the
 * C library Deno itself was built for.
 *
 * @returns OS, CPU and C library.
 *
 * @example Describing this machine
 * ```ts
 * import { currentPlatform } from "@krepis/loader";
 *
 * const { os, arch, libc } = currentPlatform();
 * console.log(`${os}/${arch}${libc ? ` (${libc})` : ""}`);
 * ```
 */
export function currentPlatform(): Platform {
  const { os, arch } = Deno.build;
  return { os, arch, libc: os === "linux" ? detectLibc() : null };
}

/**
 * The shipped target for a platform (this machine by default).
 *
 * @param platform The machine to find a target for.
 * @returns The target's triple, OS, CPU, C library and file name.
 * @throws {UnsupportedPlatformError} When no target runs there; musl Linux
 *   gets its own message.
 *
 * @example Resolving the target of a Linux arm64 machine
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTarget } from "@krepis/loader";
 *
 * const target = resolveTarget({ os: "linux", arch: "aarch64", libc: "gnu" });
 * assert.ok(target.triple === "aarch64-unknown-linux-gnu");
 * ```
 */
export function resolveTarget(platform: Platform = currentPlatform()): TargetInfo {
  const described = `${platform.os}/${platform.arch}${platform.libc ? ` (${platform.libc})` : ""}`;
  if (platform.os === "linux" && platform.libc === "musl") {
    throw new UnsupportedPlatformError(
      `Cannot find a kernel for this platform: ${described}: musl libc builds are not shipped yet`,
      described,
      supportedTriples(),
      {
        hint:
          `use a glibc-based system or image (Debian, Ubuntu, Fedora), or build the kernel yourself and set KREPIS_KERNEL_PATH`,
      },
    );
  }
  const target = TARGETS.find((t) =>
    t.os === platform.os && t.arch === platform.arch && t.libc === platform.libc
  );
  if (!target) {
    throw new UnsupportedPlatformError(
      `Cannot find a kernel for this platform: ${described} is not supported`,
      described,
      supportedTriples(),
      {
        hint: `supported targets are ${
          supportedTriples().join(", ")
        }; elsewhere build the kernel yourself and set KREPIS_KERNEL_PATH`,
      },
    );
  }
  return target;
}

/**
 * The shipped target with this triple.
 *
 * @param triple A Rust target triple, e.g. `"x86_64-pc-windows-msvc"`.
 * @returns The target.
 * @throws {UnsupportedPlatformError} When no such target is shipped.
 *
 * @example Looking up a target by triple
 * ```ts
 * import assert from "node:assert/strict";
 * import { targetByTriple } from "@krepis/loader/release";
 *
 * assert.ok(targetByTriple("x86_64-pc-windows-msvc").file.endsWith(".dll"));
 * ```
 */
export function targetByTriple(triple: string): TargetInfo {
  const target = TARGETS.find((t) => t.triple === triple);
  if (!target) {
    throw new UnsupportedPlatformError(
      `Cannot find a kernel for target ${triple}: it is not shipped`,
      triple,
      supportedTriples(),
      { hint: `supported targets are ${supportedTriples().join(", ")}` },
    );
  }
  return target;
}

/**
 * Every shipped target triple, in table order.
 *
 * @returns The triples.
 */
export function supportedTriples(): string[] {
  return TARGETS.map((t) => t.triple);
}
