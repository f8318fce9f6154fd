import assert from "node:assert/strict";
import * as errors from "../errors.ts";
import { ERROR_EXITS, EXIT_CODES, exitCode, MEANING } from "./exit_codes.ts";

/** One instance of every error class the loader exports, built as the loader builds them. */
function everyError(): errors.KrepisError[] {
  const abi = { major: 1, minor: 0, fingerprint: "a".repeat(64) };
  return [
    new errors.AbiMismatchError("Cannot load k: ABI", "k", abi, null),
    new errors.KernelError("Cannot call: boom (FAILED)", 5, "FAILED"),
    new errors.UnsupportedPlatformError("Cannot find a kernel: x", "x", []),
    new errors.IntegrityError("Cannot verify x: y"),
    new errors.OfflineError("Cannot install offline: not cached"),
    new errors.CacheError("Cannot write x: y"),
    new errors.NetworkError("Cannot download x: y"),
    new errors.PermissionError("Cannot read x: denied", "--allow-read"),
    new errors.JournalError("Cannot undo: nothing", "FAILED"),
    new errors.ServerError("Cannot start: port in use", "FAILED"),
  ];
}

Deno.test("every error class's code has its row in the exit-code table, and every failure row is reached", () => {
  const classes = Object.values(errors).filter((value) =>
    typeof value === "function" && value.prototype instanceof errors.KrepisError
  );
  const built = everyError();
  // The list above is every exported class, so a new class cannot skip the table.
  assert.deepEqual(
    new Set(built.map((error) => error.constructor)),
    new Set(classes),
  );
  for (const error of built) {
    assert.ok(Object.hasOwn(ERROR_EXITS, error.code), `${error.code} has no exit code`);
    assert.equal(exitCode(error), ERROR_EXITS[error.code]);
  }
  const reached = new Set(built.map(exitCode));
  for (const [name, code] of Object.entries(EXIT_CODES)) {
    assert.ok(MEANING[code], `exit ${code} (${name}) has a meaning for --help and the README`);
    if (name !== "ok" && name !== "usage") {
      assert.ok(reached.has(code), `no error ends with exit ${code}`);
    }
  }
  assert.deepEqual(Object.keys(MEANING).map(Number), Object.values(EXIT_CODES));
});

Deno.test("exitCode() reads Deno's own timeout and permission classes, and anything else is 1", () => {
  assert.equal(exitCode(new Deno.errors.TimedOut("slow")), EXIT_CODES.network);
  assert.equal(exitCode(new Deno.errors.NotCapable("Requires read access")), EXIT_CODES.permission);
  assert.equal(exitCode(new Error("what")), EXIT_CODES.failure);
  assert.equal(exitCode("text"), EXIT_CODES.failure);
});
