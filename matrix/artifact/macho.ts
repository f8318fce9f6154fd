/**
 * Reads a 64-bit little-endian Mach-O dynamic library: CPU, file type, and
 * the external symbols it defines (LC_SYMTAB).
 *
 * @module
 */

import { type BinaryInfo, Reader } from "./binary.ts";

const CPU_TYPES: Record<number, string> = { 0x01000007: "x86_64", 0x0100000c: "aarch64" };
const MH_DYLIB = 6;
const LC_SYMTAB = 0x2;
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
        if ((type & N_STAB) !== 0 || (type & N_EXT) === 0 || (type & N_TYPE) !== N_SECT) continue;
        const name = r.cstring(stroff + r.u32(entry));
        exports.push(name.startsWith("_") ? name.slice(1) : name);
      }
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
  };
}
