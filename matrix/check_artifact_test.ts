/**
 * The post-build checks on real binaries of every format: small C libraries
 * that `zig cc -target …` builds for Linux arm64, macOS x86_64 and arm64, and
 * Windows x86_64 and arm64, plus fixtures that must be refused (wrong CPU,
 * wrong format, a missing symbol, a too-new glibc symbol, no fingerprint, an
 * import a fresh machine lacks, a wrong install name, a too-new minimum
 * macOS).
 *
 * Unexpected imports are real links too: an ELF or Mach-O fixture linked
 * against a stub library zig builds first, and a DLL linked against import
 * libraries that `zig dlltool` makes from `.def` files naming
 * `vcruntime140.dll` and friends (no MSVC needed). Windows fixtures are built
 * without mingw's C runtime (`-nostdlib`, their own `DllMainCRTStartup`), so
 * they import only `KERNEL32.dll`, as a `+crt-static` MSVC build does. zig's
 * linker cannot make delay-load imports, so that table is tested on a PE
 * image assembled in memory.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ABI_FINGERPRINT, SYMBOLS } from "../loader/_gen/ffi.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { inspectBinary } from "./artifact/inspect.ts";
import { verifyCodeSignature } from "./artifact/codesign.ts";
import {
  checkArtifact,
  checkArtifactFile,
  checkCodeSignature,
  formatReport,
} from "./check_artifact.ts";
import { loadTargetTable, targetRow } from "./targets.ts";

const rows = await loadTargetTable();
const row = (triple: string) => targetRow(rows, triple);
const FIXTURES = `${REPO_ROOT}/target/fixtures`;

interface FixtureOptions {
  omit?: string;
  newGlibc?: boolean;
  fingerprint?: boolean;
  /** More `zig cc` arguments after the source: libraries, linker flags. */
  args?: string[];
  /** More C source lines. */
  source?: string[];
  /** A C expression (of integer or pointer type) the first export evaluates, so what it calls is linked. */
  call?: string;
}

/** C source exporting the loader's symbols as stubs (generated from the symbol table). */
function fixtureSource(
  { omit, newGlibc = false, fingerprint = true, source = [], call }: FixtureOptions,
): string {
  const lines = [
    "#include <stddef.h>",
    "#ifdef _WIN32",
    "#define EXPORT __declspec(dllexport)",
    "__declspec(dllimport) unsigned long __stdcall GetCurrentProcessId(void);",
    "static unsigned long fixture_pid(void) { return GetCurrentProcessId(); }",
    "int __stdcall DllMainCRTStartup(void *h, unsigned long r, void *p) { (void)h; (void)r; (void)p; return 1; }",
    "#else",
    '#define EXPORT __attribute__((visibility("default")))',
    "#include <unistd.h>",
    "static long fixture_pid(void) { return (long)getpid(); }",
    "#endif",
    `static const char fingerprint[] = "${fingerprint ? ABI_FINGERPRINT : "none"}";`,
  ];
  // The first export calls fixture_pid, so the C library's (or KERNEL32's)
  // import stays; fixture_pid itself is not exported (only the loader's
  // symbols are).
  lines.push(...source);
  for (const [i, name] of Object.keys(SYMBOLS).filter((n) => n !== omit).entries()) {
    lines.push(
      `EXPORT const char *${name}(void) { return ${
        i === 0
          ? `(fixture_pid()${call ? ` + (long)(${call})` : ""}) ? fingerprint : 0`
          : "fingerprint"
      }; }`,
    );
  }
  if (newGlibc) {
    lines.push(
      "#include <sys/random.h>",
      "EXPORT long krepis_fixture_random(void) { char b[4]; return getrandom(b, 4, 0); }",
    );
  }
  return lines.join("\n") + "\n";
}

/** Runs `zig <args>`, failing the test with zig's message. */
async function zig(args: string[]): Promise<void> {
  const output = await new Deno.Command("python3", {
    args: ["-m", "ziglang", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(
    output.success,
    `zig ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
  );
}

/**
 * Builds (or reuses) a fixture library with `zig cc -target <zigTarget>`;
 * Windows fixtures without mingw's C runtime.
 */
async function fixture(zigTarget: string, options: FixtureOptions = {}): Promise<Uint8Array> {
  return await Deno.readFile(await fixturePath(zigTarget, options));
}

async function fixturePath(zigTarget: string, options: FixtureOptions = {}): Promise<string> {
  const source = fixtureSource(options);
  const args = [
    ...(zigTarget.includes("windows") ? ["-nostdlib", "-lkernel32"] : []),
    ...(options.args ?? []),
  ];
  const key = createHash("sha256").update(`${zigTarget}\n${args.join("\n")}\n${source}`)
    .digest("hex").slice(0, 16);
  const out = `${FIXTURES}/${zigTarget}-${key}.bin`;
  if (await Deno.stat(out).then(() => true, () => false)) return out;
  await Deno.mkdir(FIXTURES, { recursive: true });
  const src = `${FIXTURES}/${key}.c`;
  await Deno.writeTextFile(src, source);
  await zig(["cc", "-target", zigTarget, "-shared", "-fPIC", "-O2", "-o", out, src, ...args]);
  return out;
}

/** A macOS fixture whose install name is the one `triple`'s release file should carry. */
function macFixture(zigTarget: string, triple: string, options: FixtureOptions = {}) {
  return fixture(zigTarget, {
    ...options,
    args: [`-Wl,-install_name,@rpath/${row(triple).file}`, ...(options.args ?? [])],
  });
}

/**
 * A stub library `lib<name>` for `zigTarget` (ELF `.so` or Mach-O `.dylib`
 * with the given install name) in its own directory, for `-L<dir> -l<name>`.
 */
async function stubLibrary(zigTarget: string, name: string, installName?: string) {
  const dir = `${FIXTURES}/stub-${zigTarget}`;
  const file = `${dir}/lib${name}.${zigTarget.includes("macos") ? "dylib" : "so"}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/${name}.c`, `int ${name}_value(void) { return 7; }\n`);
  await zig([
    "cc",
    "-target",
    zigTarget,
    "-shared",
    "-fPIC",
    "-o",
    file,
    `${dir}/${name}.c`,
    ...(installName ? [`-Wl,-install_name,${installName}`] : []),
  ]);
  return dir;
}

/** An import library for a DLL named `dll` exporting `symbol`, made by `zig dlltool` from a `.def` file. */
async function importLibrary(machine: string, dll: string, symbol: string): Promise<string> {
  await Deno.mkdir(FIXTURES, { recursive: true });
  const def = `${FIXTURES}/${dll}-${machine}.def`;
  const lib = `${FIXTURES}/${dll}-${machine}.lib`;
  await Deno.writeTextFile(def, `LIBRARY ${dll}\nEXPORTS\n  ${symbol}\n`);
  await zig(["dlltool", "-m", machine, "-d", def, "-l", lib]);
  return lib;
}

for (
  const [zigTarget, triple, format, imports] of [
    ["aarch64-linux-gnu.2.17", "aarch64-unknown-linux-gnu", "elf", ["libc.so.6"]],
    ["x86_64-macos.10.12", "x86_64-apple-darwin", "macho", ["/usr/lib/libSystem.B.dylib"]],
    ["aarch64-macos.11.0", "aarch64-apple-darwin", "macho", ["/usr/lib/libSystem.B.dylib"]],
    ["x86_64-windows-gnu", "x86_64-pc-windows-msvc", "pe", ["KERNEL32.dll"]],
    ["aarch64-windows-gnu", "aarch64-pc-windows-msvc", "pe", ["KERNEL32.dll"]],
  ] as const
) {
  Deno.test(`checkArtifact() accepts a ${format} library built for ${triple}`, async () => {
    const report = checkArtifact(
      format === "macho" ? await macFixture(zigTarget, triple) : await fixture(zigTarget),
      row(triple),
    );
    assert.deepEqual(report.problems, []);
    assert.equal(report.info.format, format);
    assert.deepEqual(
      report.info.exports.filter((n) => n.startsWith("krepis_")).sort(),
      Object.keys(SYMBOLS).sort(),
    );
    assert.deepEqual(report.info.imports, imports);
    if (format === "macho") {
      assert.equal(report.info.installName, `@rpath/${row(triple).file}`);
      assert.equal(report.info.minMacos, row(triple).macosDeploymentTarget);
    } else {
      assert.equal(report.info.installName, null);
      assert.equal(report.info.minMacos, null);
    }
  });
}

Deno.test("checkArtifact() refuses the wrong CPU (arm64 Linux library for x86_64)", async () => {
  const report = checkArtifact(
    await fixture("aarch64-linux-gnu.2.17"),
    row("x86_64-unknown-linux-gnu"),
  );
  assert.deepEqual(report.problems, ["architecture: expected x86_64, found aarch64"]);
});

Deno.test("checkArtifact() refuses the wrong CPU in Mach-O and PE too", async () => {
  assert.deepEqual(
    checkArtifact(
      await macFixture("x86_64-macos.11.0", "aarch64-apple-darwin"),
      row("aarch64-apple-darwin"),
    ).problems,
    ["architecture: expected aarch64, found x86_64"],
  );
  assert.deepEqual(
    checkArtifact(await fixture("aarch64-windows-gnu"), row("x86_64-pc-windows-msvc")).problems,
    ["architecture: expected x86_64, found aarch64"],
  );
});

Deno.test("checkArtifact() refuses the wrong format (a Windows DLL for Linux)", async () => {
  const report = checkArtifact(
    await fixture("x86_64-windows-gnu"),
    row("x86_64-unknown-linux-gnu"),
  );
  assert.deepEqual(report.problems, ["format: expected elf, found pe"]);
});

Deno.test("checkArtifact() refuses a library missing a symbol of the loader's table", async () => {
  const report = checkArtifact(
    await fixture("x86_64-linux-gnu.2.17", { omit: "krepis_call" }),
    row("x86_64-unknown-linux-gnu"),
  );
  assert.equal(report.problems.length, 1);
  assert.match(
    report.problems[0],
    /^exports: expected exactly the loader's \d+ krepis_\* symbols, found missing krepis_call$/,
  );
});

Deno.test("checkArtifact() refuses a library that needs a glibc newer than the floor", async () => {
  const report = checkArtifact(
    await fixture("x86_64-linux-gnu.2.28", { newGlibc: true }),
    row("x86_64-unknown-linux-gnu"),
  );
  const glibc = report.problems.find((p) => p.startsWith("glibc:"));
  assert.ok(glibc, report.problems.join("\n"));
  assert.match(glibc, /^glibc: expected at most GLIBC_2\.17, found .*GLIBC_2\.25/);
  assert.equal(report.glibcMax !== null, true);
});

Deno.test("checkArtifact() refuses a library without the loader's ABI fingerprint", async () => {
  const report = checkArtifact(
    await macFixture("aarch64-macos.11.0", "aarch64-apple-darwin", { fingerprint: false }),
    row("aarch64-apple-darwin"),
  );
  assert.deepEqual(report.problems, [
    `ABI fingerprint: expected ${ABI_FINGERPRINT.slice(0, 16)}… embedded, found none`,
  ]);
});

Deno.test("inspectBinary() refuses a file that is no shared library format", () => {
  assert.throws(
    () =>
      checkArtifact(new TextEncoder().encode("<html>404</html>"), row("x86_64-unknown-linux-gnu")),
    /^Error: Cannot inspect libkrepis_kernel-x86_64-unknown-linux-gnu\.so: it is not an ELF, Mach-O or PE file$/,
  );
  const truncated = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  assert.throws(
    () => checkArtifact(truncated, row("x86_64-unknown-linux-gnu")),
    /: it is truncated/,
  );
});

Deno.test("compareGlibc() orders numbered versions; marker versions never reach the maximum", async () => {
  const { compareGlibc } = await import("./artifact/elf.ts");
  assert.deepEqual(["GLIBC_2.17", "GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.9"].sort(compareGlibc), [
    "GLIBC_2.2.5",
    "GLIBC_2.9",
    "GLIBC_2.17",
    "GLIBC_2.34",
  ]);
  // The host kernel's own requirements are all numbered releases.
  const report = checkArtifact(
    await fixture("x86_64-linux-gnu.2.28", { newGlibc: true }),
    row("x86_64-unknown-linux-gnu"),
  );
  assert.ok(
    report.info.glibcVersions.every((v) => /^GLIBC_\d+(\.\d+)+$/.test(v)),
    report.info.glibcVersions.join(", "),
  );
});

Deno.test("checkArtifact() refuses an ELF library that needs a library beyond glibc", async () => {
  const zigTarget = "x86_64-linux-gnu.2.17";
  const dir = await stubLibrary(zigTarget, "krepis_fixture_dep");
  const report = checkArtifact(
    await fixture(zigTarget, {
      args: [`-L${dir}`, "-lkrepis_fixture_dep"],
      source: [
        "int krepis_fixture_dep_value(void);",
        "static int fixture_dep(void) { return krepis_fixture_dep_value(); }",
      ],
      call: "fixture_dep()",
    }),
    row("x86_64-unknown-linux-gnu"),
  );
  assert.deepEqual(report.info.imports.sort(), ["libc.so.6", "libkrepis_fixture_dep.so"]);
  assert.deepEqual(report.problems, [
    "imports: expected only system libraries, found libkrepis_fixture_dep.so (not part of glibc or libgcc)",
  ]);
});

Deno.test("checkArtifact() refuses a DLL that imports the MSVC runtime or a DLL Windows lacks", async () => {
  const dlls = [
    ["vcruntime140.dll", "fixture_vcruntime"],
    ["api-ms-win-crt-runtime-l1-1-0.dll", "fixture_ucrt"],
    ["MSVCP140.dll", "fixture_msvcp"],
    ["libcrypto-3-x64.dll", "fixture_crypto"],
  ];
  for (
    const [zigTarget, machine, triple] of [
      ["x86_64-windows-gnu", "i386:x86-64", "x86_64-pc-windows-msvc"],
      ["aarch64-windows-gnu", "arm64", "aarch64-pc-windows-msvc"],
    ]
  ) {
    const libs = [];
    for (const [dll, symbol] of dlls) libs.push(await importLibrary(machine, dll, symbol));
    const report = checkArtifact(
      await fixture(zigTarget, {
        args: libs,
        source: [
          ...dlls.map(([, symbol]) => `void *${symbol}(void);`),
          "static volatile int fixture_index;",
          `static void *fixture_imports(int i) { return ${
            dlls.map(([, symbol], i) => `i == ${i} ? ${symbol}() : `).join("")
          }NULL; }`,
        ],
        call: "fixture_imports(fixture_index) != NULL",
      }),
      row(triple),
    );
    assert.deepEqual(
      [...report.info.imports].sort(),
      ["KERNEL32.dll", ...dlls.map(([dll]) => dll)].sort(),
    );
    const runtime =
      "the MSVC C runtime, absent from a fresh Windows: link it statically with +crt-static";
    assert.deepEqual(report.problems, [
      `imports: expected only system libraries, found ${
        report.info.imports.filter((name) => name !== "KERNEL32.dll").map((name) =>
          `${name} (${name === "libcrypto-3-x64.dll" ? "not a Windows system DLL" : runtime})`
        ).join(", ")
      }`,
    ]);
  }
});

Deno.test("checkArtifact() refuses a Mach-O library that loads a dylib macOS lacks", async () => {
  const zigTarget = "aarch64-macos.11.0";
  const dir = await stubLibrary(
    zigTarget,
    "krepis_fixture_dep",
    "/opt/homebrew/lib/libkrepis_fixture_dep.dylib",
  );
  const report = checkArtifact(
    await macFixture(zigTarget, "aarch64-apple-darwin", {
      args: [`-L${dir}`, "-lkrepis_fixture_dep"],
      source: [
        "int krepis_fixture_dep_value(void);",
        "static int fixture_dep(void) { return krepis_fixture_dep_value(); }",
      ],
      call: "fixture_dep()",
    }),
    row("aarch64-apple-darwin"),
  );
  assert.deepEqual(report.info.imports.sort(), [
    "/opt/homebrew/lib/libkrepis_fixture_dep.dylib",
    "/usr/lib/libSystem.B.dylib",
  ]);
  assert.deepEqual(report.problems, [
    "imports: expected only system libraries, found /opt/homebrew/lib/libkrepis_fixture_dep.dylib (not a macOS system library)",
  ]);
});

Deno.test("checkArtifact() refuses a Mach-O library whose install name is not @rpath/<release file>", async () => {
  const target = row("x86_64-apple-darwin");
  const absolute = checkArtifact(
    await fixture("x86_64-macos.10.12", {
      args: ["-Wl,-install_name,/usr/local/lib/libkrepis_kernel.dylib"],
    }),
    target,
  );
  assert.deepEqual(absolute.problems, [
    `install name: expected @rpath/${target.file}, found /usr/local/lib/libkrepis_kernel.dylib`,
  ]);
  // cargo's file name under @rpath is not the shipped one either.
  const cargoName = checkArtifact(
    await fixture("x86_64-macos.10.12", {
      args: ["-Wl,-install_name,@rpath/libkrepis_kernel.dylib"],
    }),
    target,
  );
  assert.deepEqual(cargoName.problems, [
    `install name: expected @rpath/${target.file}, found @rpath/libkrepis_kernel.dylib`,
  ]);
});

Deno.test("checkArtifact() refuses a Mach-O library that needs a newer macOS than the table's", async () => {
  // LC_BUILD_VERSION (what zig and current linkers write for 10.14 and later)…
  const arm = checkArtifact(
    await macFixture("aarch64-macos.14.0", "aarch64-apple-darwin"),
    row("aarch64-apple-darwin"),
  );
  assert.deepEqual(arm.problems, [
    "minimum macOS: expected at most 11.0 (the table's macosDeploymentTarget), found 14.0",
  ]);
  // …and LC_VERSION_MIN_MACOSX (older deployment targets).
  const intel = checkArtifact(
    await macFixture("x86_64-macos.10.13", "x86_64-apple-darwin"),
    row("x86_64-apple-darwin"),
  );
  assert.deepEqual(intel.problems, [
    "minimum macOS: expected at most 10.12 (the table's macosDeploymentTarget), found 10.13",
  ]);
});

/** A minimal PE32+ DLL image: one section holding import and delay-load descriptors and their names. */
function minimalPe(imports: string[], delayImports: string[]): Uint8Array {
  const bytes = new Uint8Array(0x400);
  const view = new DataView(bytes.buffer);
  const text = new TextEncoder();
  bytes.set(text.encode("MZ"), 0);
  view.setUint32(0x3c, 0x40, true);
  bytes.set(text.encode("PE\0\0"), 0x40);
  const coff = 0x44;
  view.setUint16(coff, 0x8664, true);
  view.setUint16(coff + 2, 1, true); // one section
  view.setUint16(coff + 16, 240, true); // PE32+ optional header with 16 data directories
  view.setUint16(coff + 18, 0x2022, true); // DLL, executable, large-address aware
  const optional = coff + 20;
  view.setUint16(optional, 0x20b, true);
  view.setUint32(optional + 108, 16, true);
  const sectionRva = 0x1000;
  const sectionRaw = 0x200;
  const header = optional + 240;
  bytes.set(text.encode(".rdata"), header);
  view.setUint32(header + 8, 0x200, true);
  view.setUint32(header + 12, sectionRva, true);
  view.setUint32(header + 16, 0x200, true);
  view.setUint32(header + 20, sectionRaw, true);
  // Import descriptors (20 bytes each) at the section's start, then delay-load
  // descriptors (32 bytes each), each table ending in a zeroed entry, then the names.
  const importAt = 0;
  const delayAt = (imports.length + 1) * 20;
  let nameAt = delayAt + (delayImports.length + 1) * 32;
  const putName = (name: string) => {
    bytes.set(text.encode(`${name}\0`), sectionRaw + nameAt);
    const rva = sectionRva + nameAt;
    nameAt += name.length + 1;
    return rva;
  };
  imports.forEach((name, i) => {
    const at = sectionRaw + importAt + i * 20;
    view.setUint32(at + 12, putName(name), true);
    view.setUint32(at + 16, sectionRva, true); // a first-thunk RVA; never followed
  });
  delayImports.forEach((name, i) => {
    const at = sectionRaw + delayAt + i * 32;
    view.setUint32(at, 1, true); // the fields are RVAs
    view.setUint32(at + 4, putName(name), true);
  });
  if (imports.length) view.setUint32(optional + 112 + 1 * 8, sectionRva + importAt, true);
  if (delayImports.length) view.setUint32(optional + 112 + 13 * 8, sectionRva + delayAt, true);
  return bytes;
}

Deno.test("inspectBinary() lists a DLL's delay-load imports after its imports", () => {
  const info = inspectBinary(
    minimalPe(["KERNEL32.dll"], ["VCRUNTIME140.dll", "kernel32.DLL"]),
    "x.dll",
  );
  assert.deepEqual(info.imports, ["KERNEL32.dll", "VCRUNTIME140.dll"]);
  const report = checkArtifact(
    minimalPe([], ["vcruntime140_1.dll"]),
    row("x86_64-pc-windows-msvc"),
    [],
  );
  assert.deepEqual(report.problems.filter((problem) => problem.startsWith("imports:")), [
    "imports: expected only system libraries, found vcruntime140_1.dll (the MSVC C runtime, absent from a fresh Windows: link it statically with +crt-static)",
  ]);
});

Deno.test("formatReport() lists imports, install name, minimum macOS and the code signature", async () => {
  const target = row("aarch64-apple-darwin");
  const text = formatReport(
    "x.dylib",
    target,
    checkArtifact(await macFixture("aarch64-macos.11.0", target.triple), target),
  );
  assert.match(text, /^ {2}imports {9}\/usr\/lib\/libSystem\.B\.dylib$/m);
  assert.match(
    text,
    new RegExp(`^  install name {4}@rpath/${target.file.replaceAll(".", "\\.")}$`, "m"),
  );
  assert.match(text, /^ {2}minimum macOS {3}11\.0 \(deployment target 11\.0\)$/m);
  assert.match(
    text,
    /^ {2}code signature {2}valid \(ad hoc, by the linker; \d+ SHA-256 page hashes verified\)$/m,
  );
  assert.match(text, /^ {2}exports {9}9 krepis_\* symbols, 2 others$/m);
  assert.doesNotMatch(text, /FAIL/);
});

Deno.test("checkCodeSignature() runs codesign -v only on macOS and reports its failure", async () => {
  const path = await fixturePath("aarch64-macos.11.0", {
    args: [`-Wl,-install_name,@rpath/${row("aarch64-apple-darwin").file}`],
  });
  assert.deepEqual(await checkCodeSignature(path, { os: "linux", codesign: "false" }), {
    codeSignature: "not checked (not on macOS)",
    problem: null,
  });
  assert.deepEqual(await checkCodeSignature(path, { os: "darwin", codesign: "true" }), {
    codeSignature: "valid (codesign -v)",
    problem: null,
  });
  const failed = await checkCodeSignature(path, { os: "darwin", codesign: "false" });
  assert.deepEqual(failed, {
    codeSignature: "invalid",
    problem: "code signature: expected codesign -v to accept it, found exit code 1",
  });
  const missing = await checkCodeSignature(path, {
    os: "darwin",
    codesign: "krepis-no-such-codesign",
  });
  assert.equal(missing.codeSignature, "not checked (codesign did not run)");
  assert.match(missing.problem ?? "", /^code signature: expected codesign -v to run, found /);
  // The file-level check adds the signature's problem to the others.
  const report = await checkArtifactFile(path, row("aarch64-apple-darwin"), {
    os: "darwin",
    codesign: "false",
  });
  assert.deepEqual(report.problems, [failed.problem]);
  assert.equal(report.codeSignature, "invalid");
});

Deno.test("checkArtifact() verifies an arm64 dylib's ad hoc signature page by page and refuses a changed byte", async () => {
  const target = row("aarch64-apple-darwin");
  const bytes = await macFixture("aarch64-macos.11.0", target.triple);
  const signed = verifyCodeSignature(bytes);
  assert.ok(signed.signed && signed.adhoc && signed.problem === null, JSON.stringify(signed));
  assert.ok(signed.pages > 0);
  assert.deepEqual(checkArtifact(bytes, target).problems, []);
  // A padding byte after the load commands, in the first hashed page: nothing but the hash notices.
  const changed = bytes.slice();
  const at = 32 + new DataView(changed.buffer).getUint32(20, true) + 8;
  changed[at] ^= 1;
  const report = checkArtifact(changed, target);
  assert.equal(report.codeSignature, "invalid");
  assert.deepEqual(report.problems, [
    `code signature: expected every page hash to match, found 1 of ${signed.pages} page hashes do not match (first: page ${
      Math.floor(at / 16384)
    }, bytes ${Math.floor(at / 16384) * 16384}…)`,
  ]);
});

Deno.test("checkArtifact() requires a signature on arm64 macOS, and on x86_64 in a release build", async () => {
  const arm = row("aarch64-apple-darwin");
  const bytes = (await macFixture("aarch64-macos.11.0", arm.triple)).slice();
  // Turn LC_CODE_SIGNATURE (0x1d) into LC_DATA_IN_CODE (0x29), same layout: no signature left.
  const view = new DataView(bytes.buffer);
  let at = 32;
  for (let i = 0; i < view.getUint32(16, true); i++) {
    if (view.getUint32(at, true) === 0x1d) view.setUint32(at, 0x29, true);
    at += view.getUint32(at + 4, true);
  }
  assert.deepEqual(verifyCodeSignature(bytes), { signed: false });
  assert.deepEqual(checkArtifact(bytes, arm).problems, [
    "code signature: expected one (arm64 macOS maps only signed code), found none",
  ]);
  const intel = row("x86_64-apple-darwin");
  const x86 = checkArtifact(await macFixture("x86_64-macos.10.12", intel.triple), intel);
  assert.deepEqual(x86.problems, []);
  assert.ok(["none", "valid"].some((s) => x86.codeSignature.startsWith(s)), x86.codeSignature);
  // A release build signs both CPUs (build.rs): there an unsigned x86_64 dylib is refused.
  const x86Bytes = (await macFixture("x86_64-macos.10.12", intel.triple)).slice();
  const x86View = new DataView(x86Bytes.buffer);
  at = 32;
  for (let i = 0; i < x86View.getUint32(16, true); i++) {
    if (x86View.getUint32(at, true) === 0x1d) x86View.setUint32(at, 0x29, true);
    at += x86View.getUint32(at + 4, true);
  }
  const unsigned = checkArtifact(x86Bytes, intel, undefined, undefined, { release: true }).problems
    .filter((p) => p.startsWith("code signature"));
  assert.deepEqual(unsigned, [
    "code signature: expected one in a release build (the build signs every macOS dylib ad hoc), found none",
  ]);
  assert.deepEqual(
    checkArtifact(x86Bytes, intel).problems.filter((p) => p.startsWith("code signature")),
    [],
  );
});

Deno.test("checkArtifact() refuses any export beyond the loader's symbols, brotli's C API and the linker's own", async () => {
  for (
    const [zigTarget, triple] of [
      ["x86_64-linux-gnu.2.17", "x86_64-unknown-linux-gnu"],
      ["aarch64-macos.11.0", "aarch64-apple-darwin"],
    ]
  ) {
    const source = [
      '__attribute__((visibility("default"))) int BrotliDecoderIsFinished(void) { return 1; }',
      '__attribute__((visibility("default"))) int fixture_extra(void) { return 2; }',
    ];
    const options = { source, args: [`-Wl,-install_name,@rpath/${row(triple).file}`] };
    const bytes = triple.includes("apple")
      ? await macFixture(zigTarget, triple, { source })
      : await fixture(zigTarget, options);
    assert.deepEqual(checkArtifact(bytes, row(triple)).problems, [
      "exports: expected only the loader's symbols (and brotli's C API), found 1 more: fixture_extra",
    ], triple);
  }
});

Deno.test("checkArtifact() with release refuses a Mach-O file that still has local or debug symbols", async () => {
  const target = row("x86_64-apple-darwin");
  const source = [
    "static int fixture_local(int x) { return x * 3; }",
    "int (*volatile fixture_use)(int) = fixture_local;",
  ];
  const bytes = await macFixture("x86_64-macos.10.12", target.triple, {
    source,
    args: ["-g", "-O0"],
  });
  const info = checkArtifact(bytes, target, undefined, undefined, { release: true });
  assert.ok(
    (info.info.localSymbols ?? 0) + (info.info.debugSymbols ?? 0) > 0,
    JSON.stringify(info.info),
  );
  assert.match(
    info.problems.join("\n"),
    /^stripped: expected no local or debug symbols in a release build, found \d+ local, \d+ debug$/m,
  );
  assert.ok(!checkArtifact(bytes, target).problems.some((p) => p.startsWith("stripped")));
});
