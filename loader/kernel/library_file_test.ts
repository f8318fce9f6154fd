/**
 * The checks a development library gets before dlopen, on the real kernel,
 * on copies of it cut or patched at many places, on synthetic Mach-O and PE
 * headers (so every parser runs on every OS), and in child processes that
 * would die or hang if a check were missing.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { IntegrityError } from "../errors.ts";
import { type ByteSource, checkLibraryFile, readLibraryHeader } from "./library_file.ts";
import { kernelPath } from "../../tests/_kernel.ts";
import { outputWithin, skipIf, when, WINDOWS } from "../../tests/_tools.ts";

const kernel = await Deno.readFile(await kernelPath());
const ext = WINDOWS ? ".dll" : Deno.build.os === "darwin" ? ".dylib" : ".so";

function source(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + length)),
  };
}

async function withFile<T>(bytes: Uint8Array, body: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, `lib${ext}`);
    await Deno.writeFile(path, bytes);
    return await body(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refused(
  bytes: Uint8Array,
  pattern: RegExp,
  os?: typeof Deno.build.os,
  arch?: typeof Deno.build.arch,
) {
  await withFile(
    bytes,
    (path) =>
      assert.rejects(() => checkLibraryFile(path, os, arch), (e: Error) => {
        assert.ok(e instanceof IntegrityError, String(e));
        assert.match(e.message, /^Cannot load kernel .*: /);
        assert.match(e.message, pattern);
        assert.match(e.message, /\nHint: /);
        return true;
      }),
  );
}

Deno.test("checkLibraryFile() accepts the real kernel built for this machine", async () => {
  await checkLibraryFile(await kernelPath());
  const header = await readLibraryHeader(source(kernel), Deno.build.arch);
  assert.equal(header.arch, Deno.build.arch);
  assert.equal(header.sharedLibrary, true);
  assert.ok(header.minimumLength <= kernel.length && header.minimumLength > kernel.length / 2);
});

Deno.test("checkLibraryFile() refuses the kernel cut anywhere short of its last mapped byte", async () => {
  const { minimumLength } = await readLibraryHeader(source(kernel), Deno.build.arch);
  const cuts = [
    0,
    1,
    16,
    63,
    64,
    200,
    4096,
    minimumLength >> 2,
    minimumLength >> 1,
    minimumLength - 1,
  ];
  for (const cut of cuts) {
    await refused(kernel.slice(0, cut), /too short|truncated|past its end|shorter than/);
  }
});

Deno.test("checkLibraryFile() refuses what is not a library, or not this machine's", async () => {
  const text = new TextEncoder().encode("#!/bin/sh\necho not a library\n".repeat(10));
  await refused(text, /not a shared library \(no ELF, Mach-O or PE header\)/);
  await refused(crypto.getRandomValues(new Uint8Array(4096)), /not a shared library|not a 64-bit/);
  // Another CPU, and an executable rather than a library: patch the real kernel's header.
  if (Deno.build.os === "linux") {
    const otherCpu = kernel.slice();
    new DataView(otherCpu.buffer).setUint16(18, Deno.build.arch === "x86_64" ? 183 : 62, true);
    await refused(otherCpu, /built for (aarch64|x86_64), and this is/);
    const executable = kernel.slice();
    new DataView(executable.buffer).setUint16(16, 2, true); // ET_EXEC
    await refused(executable, /not a shared library \(an executable/);
    const farTable = kernel.slice();
    new DataView(farTable.buffer).setBigUint64(32, 1n << 40n, true); // e_phoff past the end
    await refused(farTable, /past its end/);
  }
});

/** A minimal 64-bit Mach-O dylib: header, one LC_SEGMENT_64 mapping `fileSize` bytes. */
function machO(cpu: number, fileSize: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(4, cpu, true);
  v.setUint32(12, 6, true); // MH_DYLIB
  v.setUint32(16, 1, true); // ncmds
  v.setUint32(20, 72, true); // sizeofcmds
  v.setUint32(32, 0x19, true); // LC_SEGMENT_64
  v.setUint32(36, 72, true);
  v.setBigUint64(32 + 40, 0n, true); // fileoff
  v.setBigUint64(32 + 48, BigInt(fileSize), true); // filesize
  return bytes;
}

/** A minimal PE32+ DLL: one section whose raw data ends at `rawEnd`. */
function pe(machine: number, rawEnd: number, length: number, dll = true): Uint8Array {
  const bytes = new Uint8Array(length);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, 0x4d5a, false);
  v.setUint32(0x3c, 0x80, true);
  v.setUint32(0x80, 0x00004550, true);
  v.setUint16(0x84, machine, true);
  v.setUint16(0x86, 1, true); // one section
  v.setUint16(0x94, 0xf0, true); // size of the optional header
  v.setUint16(0x96, dll ? 0x2022 : 0x0022, true);
  const section = 0x80 + 24 + 0xf0;
  v.setUint32(section + 16, rawEnd - 0x400, true); // SizeOfRawData
  v.setUint32(section + 20, 0x400, true); // PointerToRawData
  return bytes;
}

Deno.test("Mach-O and PE headers are checked the same way, on every OS", async () => {
  const ARM = 0x0100000c, X64 = 0x01000007;
  await withFile(machO(ARM, 8192, 8192), (p) => checkLibraryFile(p, "darwin", "aarch64"));
  await refused(
    machO(ARM, 8192, 8000),
    /truncated: 8000 bytes, and its headers place data up to byte 8192/,
    "darwin",
    "aarch64",
  );
  await refused(
    machO(X64, 8192, 8192),
    /built for x86_64, and this is aarch64/,
    "darwin",
    "aarch64",
  );
  await refused(machO(ARM, 8192, 8192), /MACHO file, and linux loads ELF/, "linux", "aarch64");
  await withFile(pe(0x8664, 0x2000, 0x2000), (p) => checkLibraryFile(p, "windows", "x86_64"));
  await refused(pe(0x8664, 0x2000, 0x1800), /truncated/, "windows", "x86_64");
  await refused(
    pe(0xaa64, 0x2000, 0x2000),
    /built for aarch64, and this is x86_64/,
    "windows",
    "x86_64",
  );
  await refused(pe(0x8664, 0x2000, 0x2000, false), /not a shared library/, "windows", "x86_64");
  // This machine's kernel, checked as another OS's library, is refused.
  if (Deno.build.os === "windows") {
    await refused(kernel, /file, and linux loads ELF|built for/, "linux", Deno.build.arch);
  } else {
    await refused(kernel, /file, and windows loads PE|built for/, "windows", Deno.build.arch);
  }
});

Deno.test("checkLibraryFile() refuses a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(() => checkLibraryFile(dir), /it is a directory/);
  } finally {
    await Deno.remove(dir);
  }
});

/** Runs load({ path }) in a child Deno process, so a crash or hang cannot take the tests down. */
async function loadInChild(
  path: string,
): Promise<{ code: number; signal: string | null; stderr: string }> {
  const script = `import { load } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url).href)
  };
try { await load({ path: ${JSON.stringify(path)} }); console.log("loaded"); }
catch (e) { console.error(e.name + ": " + e.message); Deno.exit(4); }`;
  const out = await outputWithin(
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: { KREPIS_KERNEL_PATH: "" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  return { code: out.code, signal: out.signal, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("load() of a kernel cut inside its code is a clear error in the process, not a bus error", async () => {
  // 128 KiB lies inside the mapped code of any debug kernel build.
  const cut = kernel.slice(0, 128 * 1024);
  await withFile(cut, async (path) => {
    if (Deno.build.os === "linux") {
      // The control: a bare dlopen of these bytes kills the process with SIGBUS.
      const bare = await new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--quiet",
          `Deno.dlopen(${
            JSON.stringify(path)
          }, { krepis_abi_version: { parameters: [], result: "u32" } }).symbols.krepis_abi_version()`,
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(bare.signal, "SIGBUS", "the truncated file no longer crashes a bare dlopen");
    }
    const run = await loadInChild(path);
    assert.equal(run.signal, null, `the process was killed by ${run.signal}`);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /^IntegrityError: Cannot load kernel .*: it is truncated/);
  });
});

Deno.test(
  skipIf(
    "load() of a FIFO returns an error at once instead of hanging",
    when(WINDOWS, "Windows has no FIFOs in the file system (mkfifo)"),
  ),
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const fifo = join(dir, `lib${ext}`);
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(made.success);
      const run = await loadInChild(fifo);
      assert.equal(run.signal, null, "killed after 30 s: load() hung on the FIFO");
      assert.equal(run.code, 4, run.stderr);
      assert.match(
        run.stderr,
        /^IntegrityError: Cannot load kernel .*: it is not a regular file \(a FIFO/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
