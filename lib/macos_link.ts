/**
 * Linking a macOS dylib on another OS the way Apple's linker does: with
 * LLVM's Mach-O linker (`ld64.lld`), which rustup ships as `rust-lld` in
 * every toolchain (`lib/rustlib/<host>/bin/rust-lld`; rustc runs it with
 * `-flavor darwin` when it is the linker of an Apple target). Unlike zig's
 * linker it honours rustc's `-exported_symbols_list`, so the dylib exports
 * what the macOS runners' dylib exports.
 *
 * A linker needs the system libraries' text stubs (`.tbd`) under
 * `-syslibroot`: {@linkcode ensureSyslibroot} makes a directory in the tools
 * folder whose `usr/lib/libSystem.tbd` is the one zig ships
 * (`<zig lib>/libc/darwin/libSystem.tbd`, the libSystem of a current macOS
 * SDK, less the architectures lld does not know, see
 * {@linkcode libSystemForLld}), with `libc.tbd` and `libm.tbd` the same
 * stub (as in Apple's SDK, where they are links to it: rustc passes `-lc
 * -lm`), and whose `usr/lib/libiconv.tbd` is {@linkcode LIBICONV_TBD}, the
 * stub of the `libiconv` that the `libc` crate asks for on every Apple
 * target (`-dead_strip_dylibs` leaves it out of the dylib, since nothing
 * calls it, but the linker must find it).
 *
 * @module
 */

import { join } from "node:path";
import { toolsDir } from "./tools_dir.ts";

/**
 * A text stub of macOS's `/usr/lib/libiconv.2.dylib` with the three
 * functions of its C API, enough for the linker to resolve `-liconv`.
 */
export const LIBICONV_TBD = `--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, arm64-macos ]
install-name:    '/usr/lib/libiconv.2.dylib'
current-version: 7
compatibility-version: 7
exports:
  - targets:         [ x86_64-macos, arm64-macos ]
    symbols:         [ _iconv, _iconv_close, _iconv_open ]
...
`;

/**
 * zig's `libSystem.tbd` as LLVM's lld reads it: every `targets: [ … ]` list
 * without the architectures that have a variant suffix (`arm64e.x1-macos`,
 * which newer SDK stubs list and lld 22 refuses as "unknown architecture").
 * The other entries (`arm64e`, `x86_64`, `x86_64h`, both platforms) stay;
 * lld links arm64 against an arm64e stub, the same CPU type.
 *
 * @param text zig's `libSystem.tbd`.
 */
export function libSystemForLld(text: string): string {
  return text.replace(/(targets:\s*)\[([^\]]*)\]/g, (_all, head: string, list: string) => {
    const keep = list.split(",").map((entry) => entry.trim()).filter((entry) =>
      entry && !/^[a-z0-9_]+\.[a-z0-9]+-/.test(entry)
    );
    return `${head}[ ${keep.join(", ")} ]`;
  });
}

/** The marker written first into a directory this module makes (so only such a one is ever changed). */
const MADE_BY_KREPIS = "krepis-syslibroot.made";

/** How a macOS row links off macOS. */
export interface DarwinLinker {
  /** rustup's `rust-lld` (run by rustc as `ld64.lld`). */
  lld: string;
  /** The directory passed as `-syslibroot` (its `usr/lib` holds the stubs). */
  syslibroot: string;
}

/** Where the stubs live: `<tools>/macos-syslibroot`. */
export function syslibrootDir(): string {
  return join(toolsDir(), "macos-syslibroot");
}

/**
 * zig's library directory from `zig env`'s output: ZON (`.lib_dir = "…"`,
 * zig 0.14 and later) or JSON (`"lib_dir": "…"`, older zig); null when
 * neither is there.
 *
 * @param output What `zig env` (or `python3 -m ziglang env`) printed.
 */
export function zigLibDir(output: string): string | null {
  const match = output.match(/\.lib_dir\s*=\s*"([^"]+)"/) ??
    output.match(/"lib_dir"\s*:\s*"([^"]+)"/);
  return match ? match[1] : null;
}

/**
 * The path of `rust-lld` in a toolchain: `<sysroot>/lib/rustlib/<host>/bin/rust-lld`.
 *
 * @param sysroot The toolchain's root (`rustc --print sysroot`).
 * @param host The toolchain's host triple (`rustc -vV`'s `host:` line).
 */
export function rustLldPath(sysroot: string, host: string): string {
  const exe = host.includes("windows") ? "rust-lld.exe" : "rust-lld";
  return join(sysroot, "lib", "rustlib", host, "bin", exe);
}

/**
 * The host triple in `rustc -vV`'s output, or null.
 *
 * @param output What `rustc -vV` printed.
 */
export function rustcHost(output: string): string | null {
  return output.match(/^host:\s*(\S+)\s*$/m)?.[1] ?? null;
}

async function commandText(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/** zig's `libSystem.tbd`: from the `ziglang` Python package, as cargo-zigbuild finds zig, else a `zig` on PATH. */
async function zigLibSystem(): Promise<string> {
  for (const [cmd, args] of [["python3", ["-m", "ziglang", "env"]], ["zig", ["env"]]] as const) {
    const text = await commandText(cmd, [...args]);
    const lib = text && zigLibDir(text);
    if (!lib) continue;
    const tbd = join(lib, "libc", "darwin", "libSystem.tbd");
    try {
      if ((await Deno.stat(tbd)).isFile) return tbd;
    } catch {
      // not this zig
    }
  }
  throw new Error(
    "Cannot link for macOS here: no zig with libc/darwin/libSystem.tbd found\nHint: deno task setup --build --target aarch64-apple-darwin installs ziglang",
  );
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/**
 * Makes (or brings up to date) the `-syslibroot` directory: `usr/lib/libSystem.tbd`
 * (and `libc.tbd`, `libm.tbd`) from zig's ({@linkcode libSystemForLld}),
 * `usr/lib/libiconv.tbd` from {@linkcode LIBICONV_TBD}. A
 * file that differs from what it should be is written again, so a damaged
 * or stale stub never survives a build. A directory there that this module
 * did not make (no marker) is refused, never changed.
 *
 * @param dir Where. @default {syslibrootDir()}
 * @param libSystem zig's `libSystem.tbd`. @default {found through `python3 -m ziglang env` or `zig env`}
 * @returns The directory.
 * @throws {Error} `Cannot …` with a hint: no zig, or a foreign directory.
 */
export async function ensureSyslibroot(
  dir = syslibrootDir(),
  libSystem?: string,
): Promise<string> {
  const source = libSystem ?? await zigLibSystem();
  const marker = join(dir, MADE_BY_KREPIS);
  let present = false;
  try {
    await Deno.lstat(dir);
    present = true;
  } catch {
    // made below
  }
  if (present && (await readText(marker)) === null) {
    throw new Error(
      `Cannot use ${dir} as the macOS syslibroot: it was not made by deno task build (no ${MADE_BY_KREPIS})\nHint: move it away, then build again`,
    );
  }
  const lib = join(dir, "usr", "lib");
  await Deno.mkdir(lib, { recursive: true });
  if (!present) await Deno.writeTextFile(marker, "made by deno task build\n");
  const libSystemTbd = libSystemForLld(await Deno.readTextFile(source));
  const wanted: Record<string, string> = {
    "libSystem.tbd": libSystemTbd,
    "libc.tbd": libSystemTbd,
    "libm.tbd": libSystemTbd,
    "libiconv.tbd": LIBICONV_TBD,
  };
  for (const [name, text] of Object.entries(wanted)) {
    const path = join(lib, name);
    if ((await readText(path)) !== text) await Deno.writeTextFile(path, text);
  }
  return dir;
}

/**
 * The linker of a macOS row built off macOS: the toolchain's `rust-lld` and
 * the syslibroot ({@linkcode ensureSyslibroot}).
 *
 * @param rustc The toolchain's rustc (the build-std copy's).
 * @param sysroot Its root.
 * @throws {Error} `Cannot …` with a hint when the toolchain has no `rust-lld` or no zig is found.
 */
export async function darwinLinker(rustc: string, sysroot: string): Promise<DarwinLinker> {
  const host = rustcHost(await commandText(rustc, ["-vV"]) ?? "");
  const lld = host ? rustLldPath(sysroot, host) : null;
  let found = false;
  try {
    found = lld !== null && (await Deno.stat(lld)).isFile;
  } catch {
    found = false;
  }
  if (!lld || !found) {
    throw new Error(
      `Cannot link for macOS here: no rust-lld in ${sysroot}\nHint: rustup's toolchain ships it in lib/rustlib/<host>/bin; make the copy again with deno task setup --build --target aarch64-apple-darwin`,
    );
  }
  return { lld, syslibroot: await ensureSyslibroot() };
}
