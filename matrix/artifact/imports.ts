/**
 * Which libraries a shipped kernel may import: only those every machine of
 * its OS already has. A kernel that needs anything else loads on the build
 * runner and fails on a fresh machine, so the post-build check refuses it.
 *
 * The rules, per container format:
 *
 * - ELF (`DT_NEEDED`): glibc's own libraries (`libc.so.6`, `libm.so.6`,
 *   `libdl.so.2`, `libpthread.so.0`, `librt.so.1`), its dynamic loader
 *   (`ld-linux*.so.*`) and `libgcc_s.so.1` (Rust's unwinder on Linux gnu).
 * - PE (import and delay-load directories): no C runtime of Microsoft's
 *   redistributable: `vcruntime*.dll`, `msvcp*.dll`, `msvcr*.dll` (also the
 *   mingw `msvcrt.dll`), `ucrtbase.dll` and the UCRT API sets
 *   `api-ms-win-crt-*.dll` are refused, with a hint to link the CRT
 *   statically (`+crt-static`). Allowed: the other `api-ms-win-*` API sets
 *   (the OS loader resolves them on every Windows 10 and later) and the
 *   system DLLs in {@linkcode WINDOWS_SYSTEM_DLLS}, which ship in System32
 *   of every supported Windows. Anything else is refused as not a system
 *   DLL; extend the list when a dependency needs another system DLL.
 * - Mach-O (`LC_LOAD_DYLIB` and its weak, re-export, lazy and upward
 *   forms): `/usr/lib/libSystem.B.dylib`, `/usr/lib/libiconv*`,
 *   `/usr/lib/libresolv*` and Apple's frameworks under
 *   `/System/Library/Frameworks/`.
 *
 * Names are compared case-insensitively on Windows (the file system is), and
 * exactly elsewhere.
 *
 * @module
 */

import type { BinaryInfo } from "./binary.ts";

/** ELF `DT_NEEDED` names every glibc Linux machine has. */
export const LINUX_SYSTEM_LIBRARIES: readonly RegExp[] = [
  /^libc\.so\.6$/,
  /^libm\.so\.6$/,
  /^libdl\.so\.2$/,
  /^libpthread\.so\.0$/,
  /^librt\.so\.1$/,
  /^libgcc_s\.so\.1$/,
  /^ld-linux(-[\w-]+)?\.so\.\d+$/,
];

/** Microsoft's C and C++ runtime DLLs: absent from a fresh Windows unless the redistributable is installed. */
export const WINDOWS_RUNTIME_DLLS: readonly RegExp[] = [
  /^vcruntime[\w-]*\.dll$/i,
  /^msvcp[\w-]*\.dll$/i,
  /^msvcr[\w-]*\.dll$/i,
  /^ucrtbased?\.dll$/i,
  /^api-ms-win-crt-[\w-]+\.dll$/i,
  /^concrt[\w-]*\.dll$/i,
  /^vccorlib[\w-]*\.dll$/i,
];

/** Windows DLLs in System32 of every supported Windows (lower case). */
export const WINDOWS_SYSTEM_DLLS: ReadonlySet<string> = new Set([
  "advapi32.dll",
  "bcrypt.dll",
  "bcryptprimitives.dll",
  "crypt32.dll",
  "dbghelp.dll",
  "dnsapi.dll",
  "gdi32.dll",
  "iphlpapi.dll",
  "kernel32.dll",
  "kernelbase.dll",
  "mswsock.dll",
  "ncrypt.dll",
  "netapi32.dll",
  "ntdll.dll",
  "ole32.dll",
  "oleaut32.dll",
  "powrprof.dll",
  "psapi.dll",
  "rpcrt4.dll",
  "secur32.dll",
  "shell32.dll",
  "shlwapi.dll",
  "sspicli.dll",
  "synchronization.dll",
  "user32.dll",
  "userenv.dll",
  "version.dll",
  "winmm.dll",
  "ws2_32.dll",
]);

/** Mach-O load paths every macOS machine has. */
export const MACOS_SYSTEM_LIBRARIES: readonly RegExp[] = [
  /^\/usr\/lib\/libSystem\.B\.dylib$/,
  /^\/usr\/lib\/libiconv(\.[\w.]+)?\.dylib$/,
  /^\/usr\/lib\/libresolv(\.[\w.]+)?\.dylib$/,
  /^\/System\/Library\/Frameworks\/[^/]+\.framework\/.+/,
];

/**
 * Why a library may not be imported by a shipped kernel, or null when it may.
 *
 * @param format The importing file's container format.
 * @param name The imported name: an ELF `DT_NEEDED` name, a PE DLL name, a Mach-O load path.
 * @returns A short reason for the report, or null.
 * @example Judging a DLL's imports
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseImport } from "./imports.ts";
 *
 * assert.equal(refuseImport("pe", "KERNEL32.dll"), null);
 * assert.match(refuseImport("pe", "VCRUNTIME140.dll") ?? "", /\+crt-static/);
 * ```
 */
export function refuseImport(format: BinaryInfo["format"], name: string): string | null {
  switch (format) {
    case "elf":
      return LINUX_SYSTEM_LIBRARIES.some((rule) => rule.test(name))
        ? null
        : "not part of glibc or libgcc";
    case "pe":
      if (WINDOWS_RUNTIME_DLLS.some((rule) => rule.test(name))) {
        return "the MSVC C runtime, absent from a fresh Windows: link it statically with +crt-static";
      }
      return /^api-ms-win-[\w-]+\.dll$/i.test(name) || WINDOWS_SYSTEM_DLLS.has(name.toLowerCase())
        ? null
        : "not a Windows system DLL";
    case "macho":
      return MACOS_SYSTEM_LIBRARIES.some((rule) => rule.test(name))
        ? null
        : "not a macOS system library";
  }
}
