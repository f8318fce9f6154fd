/**
 * What the post-build checks need to know about a shared library, whatever
 * its format.
 *
 * @module
 */

/** A shared library's header facts and exports. */
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
