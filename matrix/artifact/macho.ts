/**
 * Reads a 64-bit little-endian Mach-O dynamic library: CPU, file type, the
 * external symbols it defines (LC_SYMTAB), the dylibs it loads
 * (LC_LOAD_DYLIB and its weak, re-export, lazy and upward forms), its own
 * install name (LC_ID_DYLIB), and the minimum macOS version
 * (LC_BUILD_VERSION for the macOS platform, or LC_VERSION_MIN_MACOSX), and
 * how many local and debug (stab) symbols are left (none once stripped).
 *
 * @module
 */

import { type BinaryInfo, Reader } from "./binary.ts";

const CPU_TYPES: Record<number, string> = { 0x01000007: "x86_64", 0x0100000c: "aarch64" };
const MH_DYLIB = 6;
const LC_SYMTAB = 0x2;
const LC_ID_DYLIB = 0xd;
const LC_VERSION_MIN_MACOSX = 0x24;
const LC_BUILD_VERSION = 0x32;
const PLATFORM_MACOS = 1;
/** LC_LOAD_DYLIB, LC_LAZY_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LOAD_UPWARD_DYLIB. */
const LOAD_COMMANDS = new Set([0xc, 0x20, 0x80000018, 0x8000001f, 0x80000023]);
const N_EXT = 0x01;
const N_TYPE = 0x0e;
const N_SECT = 0x0e;
const N_STAB = 0xe0;

/** Parses a thin 64-bit Mach-O file. */
export function readMachO(bytes: Uint8Array, what: string): BinaryInfo {
  const r = new Reader(bytes, what);
  if (r.u32(0) !== 0xfeedfacf) {
    throw new Error(`Cannot read ${what}: only thin 64-bit little-endian Mach-O is supported`);
  }
  const cputype = r.u32(4);
  const filetype = r.u32(12);
  const ncmds = r.u32(16);
  const exports: string[] = [];
  let localSymbols = 0;
  let debugSymbols = 0;
  const imports: string[] = [];
  let installName: string | null = null;
  let minMacos: string | null = null;
  // dylib_command: cmd, cmdsize, then the name as an offset from the command's start.
  const dylibName = (at: number) => r.cstring(at + r.u32(at + 8));
  let at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = r.u32(at);
    const size = r.u32(at + 4);
    if (cmd === LC_SYMTAB) {
      const symoff = r.u32(at + 8);
      const nsyms = r.u32(at + 12);
      const stroff = r.u32(at + 16);
      for (let s = 0; s < nsyms; s++) {
        const entry = symoff + s * 16;
        const type = r.u8(entry + 4);
        if ((type & N_STAB) !== 0) debugSymbols++;
        else if ((type & N_EXT) === 0) localSymbols++;
        if ((type & N_STAB) !== 0 || (type & N_EXT) === 0 || (type & N_TYPE) !== N_SECT) continue;
        const name = r.cstring(stroff + r.u32(entry));
        exports.push(name.startsWith("_") ? name.slice(1) : name);
      }
    } else if (LOAD_COMMANDS.has(cmd)) {
      imports.push(dylibName(at));
    } else if (cmd === LC_ID_DYLIB) {
      installName = dylibName(at);
    } else if (cmd === LC_BUILD_VERSION && r.u32(at + 8) === PLATFORM_MACOS) {
      minMacos = machoVersion(r.u32(at + 12));
    } else if (cmd === LC_VERSION_MIN_MACOSX) {
      minMacos = machoVersion(r.u32(at + 8));
    }
    if (size === 0) break;
    at += size;
  }
  return {
    format: "macho",
    arch: CPU_TYPES[cputype] ?? `unknown (cputype 0x${cputype.toString(16)})`,
    sharedLibrary: filetype === MH_DYLIB,
    exports: exports.sort(),
    glibcVersions: [],
    imports,
    installName,
    minMacos,
    localSymbols,
    debugSymbols,
  };
}

/** A Mach-O version, nibbles `xxxx.yy.zz`, as `x.y` or `x.y.z` (patch shown when not 0). */
function machoVersion(encoded: number): string {
  const major = encoded >>> 16;
  const minor = (encoded >>> 8) & 0xff;
  const patch = encoded & 0xff;
  return patch ? `${major}.${minor}.${patch}` : `${major}.${minor}`;
}
