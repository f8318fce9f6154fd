/**
 * Reads a 64-bit little-endian ELF shared library: machine, type, the
 * dynamic symbols it defines, the glibc versions it requires
 * (`.gnu.version_r`), and the libraries it needs (`DT_NEEDED` in
 * `.dynamic`).
 *
 * @module
 */

import { type BinaryInfo, compareVersions, Reader } from "./binary.ts";

const MACHINES: Record<number, string> = { 0x3e: "x86_64", 0xb7: "aarch64" };
const ET_DYN = 3;
const SHT_DYNAMIC = 6;
const SHT_DYNSYM = 11;
const DT_NULL = 0;
const DT_NEEDED = 1;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHN_UNDEF = 0;
const STB_GLOBAL = 1;
const STB_WEAK = 2;

/** Parses an ELF64 LE file. */
export function readElf(bytes: Uint8Array, what: string): BinaryInfo {
  const r = new Reader(bytes, what);
  if (r.u8(4) !== 2 || r.u8(5) !== 1) {
    throw new Error(`Cannot read ${what}: only 64-bit little-endian ELF is supported`);
  }
  const machine = r.u16(18);
  const shoff = r.u64(0x28);
  const shentsize = r.u16(0x3a);
  const shnum = r.u16(0x3c);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      type: r.u32(at + 4),
      offset: r.u64(at + 0x18),
      size: r.u64(at + 0x20),
      link: r.u32(at + 0x28),
      entsize: r.u64(at + 0x38),
    };
  });
  const exports: string[] = [];
  const glibc = new Set<string>();
  const imports: string[] = [];
  for (const section of sections) {
    if (section.type === SHT_DYNAMIC) {
      const strtab = sections[section.link];
      if (!strtab) throw new Error(`Cannot read ${what}: .dynamic links to no string table`);
      for (let at = section.offset; at + 16 <= section.offset + section.size; at += 16) {
        const tag = r.u64(at);
        if (tag === DT_NULL) break;
        if (tag === DT_NEEDED) imports.push(r.cstring(strtab.offset + r.u64(at + 8)));
      }
    } else if (section.type === SHT_DYNSYM) {
      const strtab = sections[section.link];
      const count = section.entsize ? section.size / section.entsize : 0;
      for (let i = 1; i < count; i++) {
        const at = section.offset + i * section.entsize;
        const bind = r.u8(at + 4) >> 4;
        const shndx = r.u16(at + 6);
        if (shndx === SHN_UNDEF || (bind !== STB_GLOBAL && bind !== STB_WEAK)) continue;
        exports.push(r.cstring(strtab.offset + r.u32(at)));
      }
    } else if (section.type === SHT_GNU_VERNEED) {
      const strtab = sections[section.link];
      let need = section.offset;
      for (let guard = 0; guard < 1000; guard++) {
        const count = r.u16(need + 2);
        let aux = need + r.u32(need + 8);
        for (let j = 0; j < count; j++) {
          const name = r.cstring(strtab.offset + r.u32(aux + 8));
          // Numbered versions only: GLIBC_PRIVATE and GLIBC_ABI_DT_RELR are
          // markers, not releases, and must not hide a real maximum.
          if (/^GLIBC_\d+(\.\d+)+$/.test(name)) glibc.add(name);
          const nextAux = r.u32(aux + 12);
          if (nextAux === 0) break;
          aux += nextAux;
        }
        const next = r.u32(need + 12);
        if (next === 0) break;
        need += next;
      }
    }
  }
  return {
    format: "elf",
    arch: MACHINES[machine] ?? `unknown (e_machine 0x${machine.toString(16)})`,
    sharedLibrary: r.u16(16) === ET_DYN,
    exports: exports.sort(),
    glibcVersions: [...glibc].sort(compareGlibc),
    imports,
    installName: null,
    minMacos: null,
  };
}

/** Orders `GLIBC_2.9` before `GLIBC_2.17`. */
export function compareGlibc(a: string, b: string): number {
  return compareVersions(a.replace(/^GLIBC_/, ""), b.replace(/^GLIBC_/, ""));
}
