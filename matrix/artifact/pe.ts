/**
 * Reads a PE32+ DLL: machine, the DLL flag, the names in its export
 * directory, and the DLLs named by its import and delay-load import
 * directories.
 *
 * @module
 */

import { type BinaryInfo, Reader } from "./binary.ts";

const MACHINES: Record<number, string> = { 0x8664: "x86_64", 0xaa64: "aarch64" };
const IMAGE_FILE_DLL = 0x2000;
/** Data directory indexes (PE format: optional header data directories). */
const EXPORT_DIRECTORY = 0;
const IMPORT_DIRECTORY = 1;
const DELAY_IMPORT_DIRECTORY = 13;

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
  const directories = r.u32(optional + 108);
  const directoryRva = (index: number) =>
    index < directories ? r.u32(optional + 112 + index * 8) : 0;
  const exportRva = directoryRva(EXPORT_DIRECTORY);
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
  const imports: string[] = [];
  const addImport = (rva: number) => {
    const name = r.cstring(offset(rva));
    if (!imports.some((known) => known.toLowerCase() === name.toLowerCase())) imports.push(name);
  };
  // IMAGE_IMPORT_DESCRIPTOR: 20 bytes, the DLL name's RVA at +12; a zeroed
  // descriptor ends the table.
  const importRva = directoryRva(IMPORT_DIRECTORY);
  if (importRva !== 0) {
    for (let at = offset(importRva);; at += 20) {
      const name = r.u32(at + 12);
      if (name === 0 && r.u32(at + 16) === 0) break;
      if (name !== 0) addImport(name);
    }
  }
  // Delay-load descriptor (ImgDelayDescr): 32 bytes, attributes at +0 (bit 0
  // set: the fields are RVAs), the DLL name at +4; a zero name ends the table.
  const delayRva = directoryRva(DELAY_IMPORT_DIRECTORY);
  if (delayRva !== 0) {
    for (let at = offset(delayRva);; at += 32) {
      const name = r.u32(at + 4);
      if (name === 0) break;
      if ((r.u32(at) & 1) === 0) {
        throw new Error(`Cannot read ${what}: a delay-load descriptor uses virtual addresses`);
      }
      addImport(name);
    }
  }
  return {
    format: "pe",
    arch: MACHINES[machine] ?? `unknown (machine 0x${machine.toString(16)})`,
    sharedLibrary: (characteristics & IMAGE_FILE_DLL) !== 0,
    exports: exports.sort(),
    glibcVersions: [],
    imports,
    installName: null,
    minMacos: null,
  };
}
