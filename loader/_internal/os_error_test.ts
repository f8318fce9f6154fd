import assert from "node:assert/strict";
import { isDiskFull, isInUse, osErrorCode } from "./os_error.ts";
import { skipIf, when } from "../../tests/_tools.ts";

const os = (message: string) => new Error(message);

Deno.test("isDiskFull() knows each OS's numbers, and a number means nothing on another OS", () => {
  const cases: [string, typeof Deno.build.os, boolean][] = [
    ["No space left on device (os error 28)", "linux", true],
    ["Disk quota exceeded (os error 122)", "linux", true],
    ["No space left on device (os error 28)", "darwin", true],
    ["Disc quota exceeded (os error 69)", "darwin", true],
    ["There is not enough space on the disk. (os error 112)", "windows", true],
    ["The disk is full. (os error 39)", "windows", true],
    // The same numbers elsewhere: ENOTEMPTY (39) and EHOSTDOWN (112) on Linux,
    // ERROR_OUT_OF_PAPER (28) on Windows.
    ["Directory not empty (os error 39)", "linux", false],
    ["Host is down (os error 112)", "linux", false],
    ["The printer is out of paper. (os error 28)", "windows", false],
    ["Permission denied (os error 13)", "linux", false],
    ["Access is denied. (os error 5)", "windows", false],
    // No OS number: the wording decides.
    ["No space left on device", "linux", true],
    ["something else", "windows", false],
  ];
  for (const [message, system, full] of cases) {
    assert.equal(isDiskFull(os(message), system), full, `${system}: ${message}`);
  }
});

Deno.test("isInUse() is a Windows refusal only", () => {
  for (const code of [5, 32, 33]) {
    assert.equal(isInUse(os(`refused (os error ${code})`), "windows"), true, `${code}`);
    assert.equal(isInUse(os(`refused (os error ${code})`), "linux"), false, `${code}`);
    assert.equal(isInUse(os(`refused (os error ${code})`), "darwin"), false, `${code}`);
  }
  assert.equal(isInUse(os("The system cannot find the file. (os error 2)"), "windows"), false);
  assert.equal(isInUse("not an error", "windows"), false);
  assert.equal(osErrorCode(os("x (os error 112)")), 112);
  assert.equal(osErrorCode(os("x")), null);
});

Deno.test(
  skipIf(
    "isDiskFull() reads the real error of a full disk (/dev/full)",
    when(Deno.build.os !== "linux", "only Linux has /dev/full"),
  ),
  async () => {
    // /dev/full answers every write with ENOSPC: the real error Deno throws.
    using file = await Deno.open("/dev/full", { write: true });
    const error = await file.write(new Uint8Array(1)).then(() => null, (e) => e);
    assert.ok(error instanceof Error);
    assert.equal(isDiskFull(error), true, error.message);
  },
);
