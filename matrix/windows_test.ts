import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { loadTargetTable, targetRow } from "./targets.ts";
import {
  rowOrTwin,
  twinCommand,
  twinDir,
  twinRow,
  windowsCcEnv,
  withServer,
  withTestCrate,
} from "./windows.ts";

const rows = await loadTargetTable();

Deno.test("each Windows MSVC row has a GNU test twin, named as one, never written to dist/", () => {
  for (
    const [msvc, gnu] of [
      ["x86_64-pc-windows-msvc", "x86_64-pc-windows-gnu"],
      ["aarch64-pc-windows-msvc", "aarch64-pc-windows-gnullvm"],
    ]
  ) {
    const row = targetRow(rows, msvc);
    const twin = twinRow(row);
    assert.equal(twin.triple, gnu);
    assert.equal(twin.file, `krepis_kernel-${gnu}-test-twin.dll`);
    assert.deepEqual(twin.features, withServer(row));
    assert.ok(twin.features.includes("server"));
    assert.equal(twin.os, "windows");
    assert.equal(twin.arch, row.arch);
    assert.ok(!twinDir(gnu).startsWith(join(REPO_ROOT, "dist")), twinDir(gnu));
    // The smoke step finds the twin's row from the triple the kernel reports.
    assert.deepEqual(rowOrTwin(rows, gnu), twin);
    assert.deepEqual(rowOrTwin(rows, msvc), row);
  }
  assert.equal(rowOrTwin(rows, "x86_64-unknown-freebsd"), undefined);
  assert.throws(
    () => twinRow(targetRow(rows, "x86_64-unknown-linux-gnu")),
    /not a Windows MSVC row/,
  );
});

Deno.test("windowsCcEnv() gives mingw-w64 for x86_64, zig for aarch64, and llvm-lib for the MSVC check", () => {
  assert.deepEqual(windowsCcEnv("x86_64-pc-windows-msvc"), {
    CC_x86_64_pc_windows_msvc: "x86_64-w64-mingw32-gcc",
    AR_x86_64_pc_windows_msvc: "llvm-lib",
    CMAKE_GENERATOR_x86_64_pc_windows_msvc: "Ninja",
  });
  assert.deepEqual(windowsCcEnv("x86_64-pc-windows-gnu"), {
    CC_x86_64_pc_windows_gnu: "x86_64-w64-mingw32-gcc",
    AR_x86_64_pc_windows_gnu: "x86_64-w64-mingw32-ar",
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER: "x86_64-w64-mingw32-gcc",
  });
  assert.deepEqual(windowsCcEnv("aarch64-pc-windows-gnullvm", "/zcc"), {
    CC_aarch64_pc_windows_gnullvm: "/zcc",
    AR_aarch64_pc_windows_gnullvm: "llvm-ar",
    CARGO_TARGET_AARCH64_PC_WINDOWS_GNULLVM_LINKER: "/zcc",
  });
  assert.deepEqual(windowsCcEnv("aarch64-pc-windows-msvc", "/zcc"), {
    CC_aarch64_pc_windows_msvc: "/zcc",
    AR_aarch64_pc_windows_msvc: "llvm-lib",
    CMAKE_GENERATOR_aarch64_pc_windows_msvc: "Ninja",
  });
});

Deno.test("a twin's DLL and its unit tests build the same std (with test), so they share every dependency", () => {
  assert.deepEqual(withTestCrate(["-Zbuild-std=std,panic_abort,panic_unwind"]), [
    "-Zbuild-std=std,panic_abort,panic_unwind,test",
  ]);
  assert.deepEqual(withTestCrate(["-Zbuild-std=std,test", "-j2"]), ["-Zbuild-std=std,test", "-j2"]);
  const twin = twinRow(targetRow(rows, "x86_64-pc-windows-msvc"));
  const std = { cargo: "cargo", env: {}, args: ["-Zbuild-std=std,panic_unwind"] };
  const dll = twinCommand(twin, "dev", std);
  const tests = twinCommand(twin, "dev", std, true);
  assert.equal(dll.at(-1), "-Zbuild-std=std,panic_unwind,test");
  assert.equal(tests.at(-1), dll.at(-1));
  assert.deepEqual(tests.slice(1, 3), ["test", "--no-run"]);
});
