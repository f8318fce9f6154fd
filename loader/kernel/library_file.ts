/**
 * Checks a library file before `dlopen` sees it. `dlopen` is synchronous
 * and trusts the file: a FIFO makes it wait forever, and a file shorter
 * than its own headers say makes the OS map pages past its end, so the
 * first touch ends the whole process with SIGBUS, which no `try` can catch.
 *
 * Used for the development path (`KREPIS_KERNEL_PATH`, `load({ path })`);
 * the cache holds only files whose hash was verified. It reads the file's
 * headers (ELF, Mach-O, PE) with bounded reads: a few KiB, whatever the
 * file claims.
 */

import { IntegrityError } from "../errors.ts";

type Os = typeof Deno.build.os;
type Arch = typeof Deno.build.arch;

/** Largest header table read (program headers, load commands, section table). */
const MAX_TABLE = 1 << 20;

/** What a library's headers say. */
export interface LibraryHeader {
  format: "elf" | "macho" | "pe";
  arch: Arch | "other";
  sharedLibrary: boolean;
  /** The least the file's length must be for every byte its headers place in it to exist. */
  minimumLength: number;
}

/** Random access to a file's bytes, bounded per read. */
export interface ByteSource {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

class Problem extends Error {}

async function bytesAt(src: ByteSource, offset: number, length: number): Promise<DataView> {
  if (length > MAX_TABLE || offset + length > src.size) {
    throw new Problem(`its headers point past its end (${offset + length} > ${src.size} bytes)`);
  }
  const bytes = await src.read(offset, length);
  if (bytes.length < length) throw new Problem("it is shorter than its headers say");
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const big = (v: bigint) => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v));

async function readElf(src: ByteSource, h: DataView): Promise<LibraryHeader> {
  if (h.getUint8(4) !== 2 || h.getUint8(5) !== 1) {
    throw new Problem("it is not a 64-bit little-endian ELF file");
  }
  const machine = h.getUint16(18, true);
  const arch = machine === 62 ? "x86_64" : machine === 183 ? "aarch64" : "other";
  const phoff = big(h.getBigUint64(32, true));
  const shoff = big(h.getBigUint64(40, true));
  const phentsize = h.getUint16(54, true);
  const phnum = h.getUint16(56, true);
  const shentsize = h.getUint16(58, true);
  const shnum = h.getUint16(60, true);
  let minimum = Math.max(64, phoff + phnum * phentsize, shnum ? shoff + shnum * shentsize : 0);
  if (phnum && phentsize >= 56) {
    const table = await bytesAt(src, phoff, phnum * phentsize);
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      if (table.getUint32(at, true) !== 1) continue; // PT_LOAD
      const end = big(table.getBigUint64(at + 8, true)) + big(table.getBigUint64(at + 32, true));
      minimum = Math.max(minimum, end);
    }
  }
  return {
    format: "elf",
    arch,
    sharedLibrary: h.getUint16(16, true) === 3,
    minimumLength: minimum,
  };
}

async function readMachO(src: ByteSource, h: DataView, base = 0): Promise<LibraryHeader> {
  if (h.getUint32(0, true) !== 0xfeedfacf) throw new Problem("it is not a 64-bit Mach-O file");
  const cpu = h.getUint32(4, true);
  const arch = cpu === 0x01000007 ? "x86_64" : cpu === 0x0100000c ? "aarch64" : "other";
  const ncmds = h.getUint32(16, true);
  const sizeofcmds = h.getUint32(20, true);
  let minimum = base + 32 + sizeofcmds;
  const cmds = await bytesAt(src, base + 32, sizeofcmds);
  let at = 0;
  for (let i = 0; i < ncmds; i++) {
    if (at + 8 > sizeofcmds) throw new Problem("its load commands run past their table");
    const cmd = cmds.getUint32(at, true);
    const size = cmds.getUint32(at + 4, true);
    if (size < 8 || at + size > sizeofcmds) throw new Problem("a load command has a bad size");
    if (cmd === 0x19 && size >= 56) { // LC_SEGMENT_64: fileoff, filesize
      const end = big(cmds.getBigUint64(at + 40, true)) + big(cmds.getBigUint64(at + 48, true));
      minimum = Math.max(minimum, base + end);
    }
    at += size;
  }
  return {
    format: "macho",
    arch,
    sharedLibrary: h.getUint32(12, true) === 6, // MH_DYLIB
    minimumLength: minimum,
  };
}

async function readFat(src: ByteSource, h: DataView, arch: Arch): Promise<LibraryHeader> {
  // Universal binary: big-endian table of slices; check ours and every slice's bounds.
  const n = h.getUint32(4, false);
  if (n === 0 || n > 32) throw new Problem("its universal header lists no usable slices");
  const table = await bytesAt(src, 8, n * 20);
  let minimum = 8 + n * 20;
  let ours: LibraryHeader | null = null;
  for (let i = 0; i < n; i++) {
    const offset = table.getUint32(i * 20 + 8, false);
    const size = table.getUint32(i * 20 + 12, false);
    minimum = Math.max(minimum, offset + size);
    const head = await bytesAt(src, offset, 32);
    const slice = await readMachO(src, head, offset);
    if (slice.minimumLength > offset + size) throw new Problem("a slice is longer than its entry");
    if (slice.arch === arch) ours = slice;
  }
  if (!ours) {
    return { format: "macho", arch: "other", sharedLibrary: false, minimumLength: minimum };
  }
  return { ...ours, minimumLength: Math.max(minimum, ours.minimumLength) };
}

async function readPe(src: ByteSource, h: DataView): Promise<LibraryHeader> {
  const peAt = h.getUint32(0x3c, true);
  const pe = await bytesAt(src, peAt, 24);
  if (pe.getUint32(0, true) !== 0x00004550) throw new Problem("it has no PE signature");
  const machine = pe.getUint16(4, true);
  const arch = machine === 0x8664 ? "x86_64" : machine === 0xaa64 ? "aarch64" : "other";
  const sections = pe.getUint16(6, true);
  const optionalSize = pe.getUint16(20, true);
  const characteristics = pe.getUint16(22, true);
  const tableAt = peAt + 24 + optionalSize;
  let minimum = tableAt + sections * 40;
  const table = await bytesAt(src, tableAt, sections * 40);
  for (let i = 0; i < sections; i++) {
    const rawSize = table.getUint32(i * 40 + 16, true);
    const rawAt = table.getUint32(i * 40 + 20, true);
    if (rawSize) minimum = Math.max(minimum, rawAt + rawSize);
  }
  return {
    format: "pe",
    arch,
    sharedLibrary: (characteristics & 0x2000) !== 0, // IMAGE_FILE_DLL
    minimumLength: minimum,
  };
}

/**
 * Reads a library's format, CPU, kind and the length its headers need.
 *
 * @param src The file's bytes.
 * @param arch The CPU to pick from a universal Mach-O file.
 * @returns The header facts.
 * @throws {Error} With the reason, when the headers are not a library's.
 */
export async function readLibraryHeader(src: ByteSource, arch: Arch): Promise<LibraryHeader> {
  const head = await bytesAt(src, 0, Math.min(src.size, 64));
  if (src.size < 64) throw new Problem(`it is ${src.size} bytes, too short for any library`);
  const magic = head.getUint32(0, false);
  if (magic === 0x7f454c46) return await readElf(src, head);
  if (magic === 0xcffaedfe) return await readMachO(src, head);
  if (magic === 0xcafebabe) return await readFat(src, head, arch);
  if (head.getUint16(0, false) === 0x4d5a) return await readPe(src, head);
  throw new Problem("it is not a shared library (no ELF, Mach-O or PE header)");
}

const FORMAT: Partial<Record<Os, LibraryHeader["format"]>> = {
  linux: "elf",
  android: "elf",
  freebsd: "elf",
  netbsd: "elf",
  darwin: "macho",
  windows: "pe",
};

/**
 * Refuses, before `dlopen`, a file that is not a regular file, not a
 * shared library for this OS and CPU, or shorter than its headers say.
 *
 * @param path The library.
 * @param os The OS to check for. @default {Deno.build.os}
 * @param arch The CPU to check for. @default {Deno.build.arch}
 * @throws {IntegrityError} With what is wrong and what to do.
 * @throws {Deno.errors.NotFound} When there is no such file.
 */
export async function checkLibraryFile(
  path: string,
  os: Os = Deno.build.os,
  arch: Arch = Deno.build.arch,
): Promise<void> {
  const refuse = (
    why: string,
    hint = "point KREPIS_KERNEL_PATH at a kernel built for this machine",
  ) => new IntegrityError(`Cannot load kernel ${path}: ${why}`, { hint: hint });
  const info = await Deno.stat(path);
  if (!info.isFile) {
    const kind = info.isDirectory ? "a directory" : "not a regular file (a FIFO, socket or device)";
    throw refuse(`it is ${kind}`);
  }
  // Opened without blocking: stat said it is a regular file.
  using file = await Deno.open(path, { read: true });
  const src: ByteSource = {
    size: info.size,
    read: async (offset, length) => {
      await file.seek(offset, Deno.SeekMode.Start);
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = await file.read(out.subarray(got));
        if (n === null) break;
        got += n;
      }
      return out.subarray(0, got);
    },
  };
  let header: LibraryHeader;
  try {
    header = await readLibraryHeader(src, arch);
  } catch (error) {
    if (error instanceof Problem || error instanceof RangeError) {
      throw refuse(
        error.message,
        "rebuild it (cargo build -p krepis-kernel) or fix KREPIS_KERNEL_PATH",
      );
    }
    throw error;
  }
  const want = FORMAT[os];
  if (want && header.format !== want) {
    throw refuse(
      `it is a ${header.format.toUpperCase()} file, and ${os} loads ${want.toUpperCase()}`,
    );
  }
  if (header.arch !== arch) {
    throw refuse(
      `it is built for ${
        header.arch === "other" ? "another CPU" : header.arch
      }, and this is ${arch}`,
    );
  }
  if (!header.sharedLibrary) {
    throw refuse("it is not a shared library (an executable or object file?)");
  }
  if (info.size < header.minimumLength) {
    throw refuse(
      `it is truncated: ${info.size} bytes, and its headers place data up to byte ${header.minimumLength}`,
      "rebuild it (cargo build -p krepis-kernel) or copy it again",
    );
  }
}
