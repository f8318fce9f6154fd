/**
 * The post-build checks on real binaries of every format: small C libraries
 * that `zig cc -target …` builds for Linux arm64, macOS x86_64 and arm64, and
 * Windows x86_64 and arm64, plus fixtures that must be refused (wrong CPU,
 * wrong format, a missing symbol, a too-new glibc symbol, no fingerprint).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ABI_FINGERPRINT, SYMBOLS } from "../loader/_ffi.ts";
import { REPO_ROOT } from "../tools/cargo_build.ts";
import { checkArtifact } from "./check_artifact.ts";
import { loadTargetTable, targetRow } from "./targets.ts";

const rows = await loadTargetTable();
const row = (triple: string) => targetRow(rows, triple);

interface FixtureOptions {
  omit?: string;
  newGlibc?: boolean;
  fingerprint?: boolean;
}

/** C source exporting the loader's symbols as stubs (generated from the symbol table). */
function fixtureSource({ omit, newGlibc = false, fingerprint = true }: FixtureOptions): string {
  const lines = [
    "#include <stddef.h>",
    "#ifdef _WIN32",
    "#define EXPORT __declspec(dllexport)",
    "#else",
    '#define EXPORT __attribute__((visibility("default")))',
    "#endif",
    `static const char fingerprint[] = "${fingerprint ? ABI_FINGERPRINT : "none"}";`,
  ];
  for (const name of Object.keys(SYMBOLS)) {
    if (name === omit) continue;
    lines.push(`EXPORT const char *${name}(void) { return fingerprint; }`);
  }
  if (newGlibc) {
    lines.push(
      "#include <sys/random.h>",
      "EXPORT long krepis_fixture_random(void) { char b[4]; return getrandom(b, 4, 0); }",
    );
  }
  return lines.join("\n") + "\n";
}

/** Builds (or reuses) a fixture library with `zig cc -target <zigTarget>`. */
async function fixture(zigTarget: string, options: FixtureOptions = {}): Promise<Uint8Array> {
  const source = fixtureSource(options);
  const key = createHash("sha256").update(`${zigTarget}\n${source}`).digest("hex").slice(0, 16);
  const dir = `${REPO_ROOT}/target/fixtures`;
  const out = `${dir}/${zigTarget}-${key}.bin`;
  const cached = await Deno.readFile(out).catch(() => null);
  if (cached) return cached;
  await Deno.mkdir(dir, { recursive: true });
  const src = `${dir}/${key}.c`;
  await Deno.writeTextFile(src, source);
  const zig = await new Deno.Command("python3", {
    args: ["-m", "ziglang", "cc", "-target", zigTarget, "-shared", "-fPIC", "-O2", "-o", out, src],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(
    zig.success,
    `zig cc -target ${zigTarget} failed: ${new TextDecoder().decode(zig.stderr)}`,
  );
  return await Deno.readFile(out);
}

for (
  const [zigTarget, triple, format] of [
    ["aarch64-linux-gnu.2.17", "aarch64-unknown-linux-gnu", "elf"],
    ["x86_64-macos", "x86_64-apple-darwin", "macho"],
    ["aarch64-macos", "aarch64-apple-darwin", "macho"],
    ["x86_64-windows-gnu", "x86_64-pc-windows-msvc", "pe"],
    ["aarch64-windows-gnu", "aarch64-pc-windows-msvc", "pe"],
  ] as const
) {
  Deno.test(`checkArtifact() accepts a ${format} library built for ${triple}`, async () => {
    const report = checkArtifact(await fixture(zigTarget), row(triple));
    assert.deepEqual(report.problems, []);
    assert.equal(report.info.format, format);
    assert.deepEqual(
      report.info.exports.filter((n) => n.startsWith("krepis_")).sort(),
      Object.keys(SYMBOLS).sort(),
    );
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
    checkArtifact(await fixture("x86_64-macos"), row("aarch64-apple-darwin")).problems,
    [
      "architecture: expected aarch64, found x86_64",
    ],
  );
  assert.deepEqual(
    checkArtifact(await fixture("aarch64-windows-gnu"), row("x86_64-pc-windows-msvc")).problems,
    [
      "architecture: expected x86_64, found aarch64",
    ],
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
    await fixture("aarch64-macos", { fingerprint: false }),
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
