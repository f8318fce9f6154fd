import assert from "node:assert/strict";
import { checkAbi } from "./check_abi.ts";
import { AbiMismatchError } from "../errors.ts";

const expected = { major: 1, minor: 2, fingerprint: "a".repeat(64) };

Deno.test("checkAbi() accepts the same major, minor and fingerprint", () => {
  checkAbi("k.so", expected, { ...expected });
});

Deno.test("checkAbi() accepts a newer minor whatever its fingerprint", () => {
  checkAbi("k.so", expected, { major: 1, minor: 3, fingerprint: "b".repeat(64) });
});

for (
  const [what, found, pattern] of [
    ["another major", { ...expected, major: 2 }, /its ABI major 2 is not 1;/],
    ["an older minor", { ...expected, minor: 1 }, /its ABI minor 1 is older than 2;/],
    [
      "another fingerprint",
      { ...expected, fingerprint: "c".repeat(64) },
      /fingerprint c{64} is not a{64}/,
    ],
  ] as const
) {
  Deno.test(`checkAbi() refuses ${what}, naming expected and found`, () => {
    let error: unknown;
    try {
      checkAbi("k.so", expected, found);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof AbiMismatchError);
    assert.match(error.message, /^Cannot load kernel k\.so: /);
    assert.match(error.message, pattern);
    assert.match(error.message, /found ABI \d+\.\d+ .*, expected 1\.2 /);
    assert.match(error.message, /\nHint: /);
    assert.deepEqual([error.expected, error.found], [expected, found]);
  });
}
