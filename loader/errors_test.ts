import assert from "node:assert/strict";
import {
  AbiMismatchError,
  CacheError,
  IntegrityError,
  KernelError,
  KrepisError,
  LOADER_ABI,
  NetworkError,
  OfflineError,
  PermissionError,
  UnsupportedPlatformError,
} from "./mod.ts";
import { EXIT_CODES, exitCode } from "./cli.ts";

const abi = { ...LOADER_ABI };

/** One of each class, with any wording: the code and the exit code follow the class. */
function samples(message: string) {
  return [
    [new AbiMismatchError(message, "x", abi, null), "ABI_MISMATCH", EXIT_CODES.abi],
    [
      new UnsupportedPlatformError(message, "linux/riscv64", []),
      "UNSUPPORTED_PLATFORM",
      EXIT_CODES.unsupported,
    ],
    [new IntegrityError(message), "INTEGRITY", EXIT_CODES.integrity],
    [new OfflineError(message), "OFFLINE", EXIT_CODES.offline],
    [new CacheError(message), "CACHE", EXIT_CODES.cache],
    [new NetworkError(message, { status: 503 }), "NETWORK", EXIT_CODES.network],
    [new PermissionError(message, "--allow-net"), "PERMISSION", EXIT_CODES.permission],
  ] as const;
}

Deno.test("every error class has a stable code and the hint it was given, never one read from its message", () => {
  for (const [error, code] of samples("Cannot do it: because\nHint: not a hint")) {
    assert.equal(error.code, code, error.name);
    assert.ok(error instanceof KrepisError, error.name);
    // The text is the message as given; nothing is parsed back out of it.
    if (!(error instanceof PermissionError)) assert.equal(error.hint, null, error.name);
  }
  const cache = new CacheError("Cannot do it: because", { hint: "do this instead" });
  assert.deepEqual([cache.hint, cache.summary], ["do this instead", "Cannot do it: because"]);
  assert.equal(cache.message, "Cannot do it: because\nHint: do this instead");
  assert.equal(new CacheError("Cannot do it: because").hint, null);
  const cause = new Error("disk");
  assert.equal(new IntegrityError("Cannot x: y", { cause, hint: "h" }).cause, cause);
  const permission = new PermissionError("Cannot install the kernel: no network", "--allow-net");
  assert.equal(
    permission.message,
    `Cannot install the kernel: no network\nHint: ${permission.hint}`,
  );
  assert.match(permission.hint, /^run Deno with --allow-net/);
});

Deno.test("KernelError's code is a string like the others, the kernel's number its own field", () => {
  const error = new KernelError("Cannot call the kernel: boom (FAILED)", 5, "FAILED", {
    hint: "retry",
  });
  assert.deepEqual([error.code, error.result, error.codeName, error.hint], [
    "KERNEL",
    5,
    "FAILED",
    "retry",
  ]);
  assert.equal(error.message, "Cannot call the kernel: boom (FAILED)\nHint: retry");
});

Deno.test("the CLI's exit code follows the class, whatever the message says", () => {
  for (
    const message of ["Cannot download x: y", "Cannot use the cache directory x", "reworded", ""]
  ) {
    for (const [error, , exit] of samples(message)) {
      assert.equal(exitCode(error), exit, `${error.name}: ${JSON.stringify(message)}`);
    }
  }
  assert.equal(exitCode(new Deno.errors.TimedOut("x")), EXIT_CODES.network);
  assert.equal(exitCode(new Deno.errors.NotCapable("x")), EXIT_CODES.permission);
  assert.equal(
    exitCode(new Error("Cannot download x: y")),
    EXIT_CODES.failure,
    "no class, no guess",
  );
});
