import assert from "node:assert/strict";
import { readEnvFlag } from "./env.ts";

Deno.test("readEnvFlag() reads 1/true/yes and 0/false/no in any case, unset or empty as undefined, and refuses the rest", () => {
  const name = "KREPIS_TEST_FLAG";
  try {
    for (const value of ["1", "true", "yes", "TRUE", " Yes "]) {
      Deno.env.set(name, value);
      assert.equal(readEnvFlag(name), true, value);
    }
    for (const value of ["0", "false", "no", "NO"]) {
      Deno.env.set(name, value);
      assert.equal(readEnvFlag(name), false, value);
    }
    Deno.env.set(name, "");
    assert.equal(readEnvFlag(name), undefined);
    Deno.env.delete(name);
    assert.equal(readEnvFlag(name), undefined);
    for (const value of ["on", "y", "2", "truee"]) {
      Deno.env.set(name, value);
      assert.throws(
        () => readEnvFlag(name),
        (e: Error) =>
          e instanceof TypeError &&
          e.message.startsWith(`Cannot read ${name}: "${value}" is neither yes nor no\nHint: `),
      );
    }
  } finally {
    Deno.env.delete(name);
  }
});
