/**
 * Reads any of the three shared-library formats by its magic number.
 *
 * @module
 */

import type { BinaryInfo } from "./binary.ts";
import { readElf } from "./elf.ts";
import { readMachO } from "./macho.ts";
import { readPe } from "./pe.ts";

export type { BinaryInfo } from "./binary.ts";

/**
 * Inspects a shared library.
 *
 * @param bytes The file's bytes.
 * @param what Its name, for messages.
 * @returns Format, CPU, whether it is a shared library, exports, glibc versions.
 * @throws {Error} When the format is not ELF, Mach-O or PE, or the file is damaged.
 */
export function inspectBinary(bytes: Uint8Array, what: string): BinaryInfo {
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    return readElf(bytes, what);
  }
  if (bytes[0] === 0xcf && bytes[1] === 0xfa && bytes[2] === 0xed && bytes[3] === 0xfe) {
    return readMachO(bytes, what);
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) return readPe(bytes, what);
  throw new Error(`Cannot inspect ${what}: it is not an ELF, Mach-O or PE file`);
}
