/**
 * Reads a PE32+ DLL: machine, the DLL flag, and the names in its export
 * directory.
 *
 * @module
 */

import { type BinaryInfo, Reader } from "./binary.ts";

const MACHINES: Record<number, string> = { 0x8664: "x86_64", 0xaa64: "aarch64" };
const IMAGE_FILE_DLL = 0x2000;

/** Parses a PE32+ file. */
export function readPe(bytes: Uint8Array, what: string): BinaryInfo {
  const r = new Reader(bytes, what);
  const pe = r.u32(0x3c);
  if (r.u32(pe) !== 0x00004550) throw new Error(`Cannot read ${what}: no PE signature`);
  const coff = pe + 4;
  const machine = r.u16(coff);
  const nsections = r.u16(coff + 2);
  const optionalSize = r.u16(coff + 16);
  const characteristics = r.u16(coff + 18);
  const optional = coff + 20;
  if (r.u16(optional) !== 0x20b) {
    throw new Error(`Cannot read ${what}: only PE32+ (64-bit) is supported`);
  }
  const exportRva = r.u32(optional + 112);
  const sectionTable = optional + optionalSize;
  const sections = Array.from({ length: nsections }, (_, i) => {
    const at = sectionTable + i * 40;
    return {
      va: r.u32(at + 12),
      vsize: Math.max(r.u32(at + 8), r.u32(at + 16)),
      raw: r.u32(at + 20),
    };
  });
  const offset = (rva: number) => {
    const section = sections.find((s) => rva >= s.va && rva < s.va + s.vsize);
    if (!section) {
      throw new Error(`Cannot read ${what}: RVA 0x${rva.toString(16)} is in no section`);
    }
    return rva - section.va + section.raw;
  };
  const exports: string[] = [];
  if (exportRva !== 0) {
    const dir = offset(exportRva);
    const count = r.u32(dir + 24);
    const names = offset(r.u32(dir + 32));
    for (let i = 0; i < count; i++) exports.push(r.cstring(offset(r.u32(names + i * 4))));
  }
  return {
    format: "pe",
    arch: MACHINES[machine] ?? `unknown (machine 0x${machine.toString(16)})`,
    sharedLibrary: (characteristics & IMAGE_FILE_DLL) !== 0,
    exports: exports.sort(),
    glibcVersions: [],
  };
}
