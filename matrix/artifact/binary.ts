/**
 * What the post-build checks need to know about a shared library, whatever
 * its format.
 *
 * @module
 */

/** A shared library's header facts, exports and imports. */
export interface BinaryInfo {
  /** Container format. */
  format: "elf" | "macho" | "pe";
  /** CPU, named like `Deno.build.arch`, or `unknown (<code>)`. */
  arch: string;
  /** Whether the file is a shared library (ELF ET_DYN, Mach-O MH_DYLIB, PE DLL). */
  sharedLibrary: boolean;
  /** Exported (defined, global) symbol names, without Mach-O's leading underscore. */
  exports: string[];
  /** glibc symbol versions required (`GLIBC_2.17`, …); ELF only, else empty. */
  glibcVersions: string[];
  /**
   * The libraries the loader must find before the file can run, in file
   * order: ELF `DT_NEEDED` names, PE import and delay-load DLL names,
   * Mach-O `LC_LOAD_DYLIB` (and weak, re-export, lazy, upward) paths.
   */
  imports: string[];
  /** Mach-O `LC_ID_DYLIB`, the install name; null elsewhere or when absent. */
  installName: string | null;
  /**
   * Mach-O: the minimum macOS version (`LC_BUILD_VERSION` minos for the
   * macOS platform, or `LC_VERSION_MIN_MACOSX`), e.g. `11.0`; null elsewhere
   * or when the file names none.
   */
  minMacos: string | null;
  /** Mach-O: symbols in the symbol table that are neither external nor debug entries (0 once stripped). */
  localSymbols?: number;
  /** Mach-O: debug (stab) entries in the symbol table (0 once stripped). */
  debugSymbols?: number;
}

/**
 * Orders dotted version numbers numerically (`2.9` before `2.17`, `10.12`
 * before `11.0`); a missing part counts as 0.
 *
 * @param a A version such as `11.0`.
 * @param b Another.
 * @returns Negative, zero or positive, like a sort comparator.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A little-endian reader over a file's bytes that fails with a clear message. */
export class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly what: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  #check(offset: number, size: number) {
    if (offset < 0 || offset + size > this.bytes.length) {
      throw new Error(
        `Cannot read ${this.what}: it is truncated (needs byte ${
          offset + size
        } of ${this.bytes.length})`,
      );
    }
  }
  u8(offset: number): number {
    this.#check(offset, 1);
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    this.#check(offset, 2);
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    this.#check(offset, 4);
    return this.view.getUint32(offset, true);
  }
  u64(offset: number): number {
    this.#check(offset, 8);
    return Number(this.view.getBigUint64(offset, true));
  }
  /** A NUL-terminated string starting at `offset`. */
  cstring(offset: number): string {
    this.#check(offset, 1);
    let end = offset;
    while (end < this.bytes.length && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(offset, end));
  }
}
