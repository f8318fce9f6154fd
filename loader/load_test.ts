import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  AbiMismatchError,
  install,
  IntegrityError,
  Kernel,
  KernelError,
  load,
  LOADER_ABI,
  OfflineError,
  resolveTarget,
  VERSION,
} from "./mod.ts";
import { kernelFeatures, kernelPath, kernelTarget } from "../tests/_kernel.ts";
import { withEnv } from "../tests/_env.ts";
import { cCompiler, skipIf, WINDOWS } from "../tests/_tools.ts";
import { runScript } from "../tests/_script.ts";

const encoder = new TextEncoder();
const host = resolveTarget();
const cc = await cCompiler();
const NO_CC = cc === null ? "no C compiler (deno task setup installs zig)" : null;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("load() opens a real build and reports the verified ABI", async () => {
  using kernel = await load({ path: await kernelPath() });
  assert.deepEqual(kernel.abi, { ...LOADER_ABI });
  assert.deepEqual(kernel.version, VERSION);
  assert(!kernel.closed);
});

Deno.test("load() reads KREPIS_KERNEL_PATH when no path is given", async () => {
  const path = await kernelPath();
  await withEnv("KREPIS_KERNEL_PATH", path, async () => {
    using kernel = await load();
    assert.equal(kernel.path, path);
  });
});

Deno.test("buildInfo() describes the build that was loaded", async () => {
  using kernel = await load({ path: await kernelPath() });
  const info = kernel.buildInfo();
  assert.deepEqual(info.version, kernel.version);
  assert.deepEqual(info.target, kernelTarget());
  assert.deepEqual(info.profile, "debug");
  assert.match(info.rustc, /^rustc \d+\.\d+\.\d+/);
  assert.match(info.gitCommit, /^([0-9a-f]{40}|unknown)$/);
  // This target's row of matrix/targets.json chose the features (cargo adds
  // "default" when a build relied on the default set).
  const features = (await kernelFeatures()) ?? ["journal", "server"];
  assert.deepEqual(info.features.filter((f) => f !== "default"), features);
  assert.deepEqual(info.capabilities, ["view", ...features]);
});

Deno.test("echo() round-trips empty, small and 1 MiB payloads", async () => {
  using kernel = await load({ path: await kernelPath() });
  assert.deepEqual(kernel.echo(new Uint8Array()), new Uint8Array());
  assert.deepEqual(new TextDecoder().decode(kernel.echo(encoder.encode("héllo"))), "héllo");
  const big = new Uint8Array(1 << 20).map((_, i) => i * 7);
  assert.deepEqual(kernel.echo(big), big);
});

Deno.test("callRaw() turns malformed bytes into MALFORMED_REQUEST", async () => {
  using kernel = await load({ path: await kernelPath() });
  const error = assertThrowsKernel(() => kernel.callRaw(new Uint8Array([0xff, 0xff, 0xff])));
  assert.deepEqual([error.code, error.result, error.codeName], ["KERNEL", 3, "MALFORMED_REQUEST"]);
  assert.match(
    error.message,
    /^Cannot decode the request: it is not a valid krepis\.v1\.Request \(.*\) \(MALFORMED_REQUEST\)$/,
  );
});

Deno.test("callRaw() answers UNKNOWN_REQUEST to a request with no known kind", async () => {
  using kernel = await load({ path: await kernelPath() });
  const unknown = assertThrowsKernel(() => kernel.callRaw(new Uint8Array()));
  assert.equal(unknown.codeName, "UNKNOWN_REQUEST");
  assert.match(unknown.message, /^Cannot handle the request: .* \(UNKNOWN_REQUEST\)\nHint: /);
  // The kernel's hint arrives as the error's own field, split once by the binding.
  assert.ok(unknown.hint && !unknown.hint.includes("Hint:"), String(unknown.hint));
  assert.ok(unknown.message.endsWith(`\nHint: ${unknown.hint}`));
  // Field 100 (varint): a request kind from a newer schema.
  assert.deepEqual(
    assertThrowsKernel(() => kernel.callRaw(new Uint8Array([0xa0, 0x06, 1]))).result,
    4,
  );
});

Deno.test("a Fail request returns FAILED with its message, a panic is caught as PANIC", async () => {
  using kernel = await load({ path: await kernelPath() });
  // krepis.v1.Request { fail: { message: "boom" } }
  const fail = new Uint8Array([0x1a, 0x06, 0x0a, 0x04, ...encoder.encode("boom")]);
  const failed = assertThrowsKernel(() => kernel.callRaw(fail));
  assert.equal(failed.codeName, "FAILED");
  assert.equal(failed.message, "Cannot complete the kernel call: boom (FAILED)");
  // ... and with panic = true
  const panic = new Uint8Array([0x1a, 0x08, 0x0a, 0x04, ...encoder.encode("boom"), 0x10, 0x01]);
  const panicked = assertThrowsKernel(() => kernel.callRaw(panic));
  assert.deepEqual(panicked.codeName, "PANIC");
  assert.equal(panicked.message, "Cannot complete the call: the kernel panicked: boom (PANIC)");
  // The kernel is still usable after a caught panic.
  assert.deepEqual(kernel.echo(encoder.encode("ok")), encoder.encode("ok"));
});

Deno.test("a closed Kernel throws instead of calling into the unloaded library", async () => {
  const kernel = await load({ path: await kernelPath() });
  kernel.close();
  kernel.close();
  assert(kernel.closed);
  for (const call of [() => kernel.echo(new Uint8Array(1)), () => kernel.buildInfo()]) {
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof Error);
    assert.match(error.message, /^Cannot call (echo|buildInfo)\(\): the kernel was closed\nHint: /);
  }
});

Deno.test("using disposes the Kernel at the end of the block", async () => {
  let escaped;
  {
    using kernel = await load({ path: await kernelPath() });
    escaped = kernel;
  }
  assert(escaped.closed);
});

Deno.test("load() without a path installs, and offline with an empty cache says so", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    await withEnv("KREPIS_KERNEL_PATH", undefined, async () => {
      await assert.rejects(() => load({ offline: true, cacheDir }), (e: Error) => {
        assert.ok(e instanceof OfflineError);
        assert.match(
          e.message,
          /^Cannot install the kernel .* offline: it is not in the cache at .*\nHint: /,
        );
        return true;
      });
    });
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("load({ path }) reports a missing file as an IntegrityError whose hint names the path option", async () => {
  const dir = await Deno.makeTempDir();
  const missing = join(dir, "nonexistent", host.file);
  try {
    await assert.rejects(() => load({ path: missing }), (e: Error) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.equal((e as IntegrityError).code, "INTEGRITY");
      assert.ok(e.cause instanceof Deno.errors.NotFound);
      assert.match(
        e.message,
        new RegExp(`^Cannot load kernel ${escapeRegExp(missing)}: no such file\\nHint: `),
      );
      assert.match(e.message, /the path given to load\(\{ path \}\)$/);
      assert.doesNotMatch(e.message, /KREPIS_KERNEL_PATH/);
      return true;
    });
    await assert.rejects(
      () => load({ path: "" }),
      (e: Error) =>
        e instanceof TypeError && /^Cannot load the kernel: path is empty\nHint: /.test(e.message),
    );
    await withEnv("KREPIS_KERNEL_PATH", missing, () =>
      assert.rejects(
        () => load(),
        (e: Error) => e instanceof IntegrityError && /fix KREPIS_KERNEL_PATH/.test(e.message),
      ));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("load() refuses a file that is not a library", async () => {
  const path = await Deno.makeTempFile({ suffix: host.file.slice(host.file.lastIndexOf(".")) });
  try {
    // Checked before dlopen: refused as what it is, whatever its length.
    for (const text of ["<html>not a library</html>", "<html>not a library</html>\n".repeat(100)]) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(() => load({ path }), (e: Error) => {
        assert.ok(e instanceof IntegrityError, String(e));
        assert.match(
          e.message,
          /^Cannot load kernel .*: it (is \d+ bytes, too short for any library|is not a shared library \(no ELF, Mach-O or PE header\))\nHint: /,
        );
        return true;
      });
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test(skipIf("load() refuses a library that exports no Krepis ABI", NO_CC), async () => {
  const path = await compileLibrary("EXPORT int other_function(void) { return 1; }\n");
  try {
    await assert.rejects(() => load({ path }), (e: Error) => {
      assert.ok(e instanceof AbiMismatchError);
      assert.equal(e.found, null);
      assert.match(e.message, /exports no krepis_abi_version/);
      return true;
    });
  } finally {
    await Deno.remove(dirname(path), { recursive: true });
  }
});

Deno.test(skipIf("load() checks the ABI before calling anything else", NO_CC), async () => {
  // Only the two ABI symbols exist: the full table cannot be bound, and the
  // error must still name the ABI major, not a missing symbol.
  const path = await compileLibrary(`
    EXPORT unsigned int krepis_abi_version(void) { return 7u << 16; }
    EXPORT const char *krepis_abi_fingerprint(void) { return "${"0".repeat(64)}"; }
  `);
  try {
    await assert.rejects(() => load({ path }), (e: Error) => {
      assert.ok(e instanceof AbiMismatchError);
      assert.deepEqual(e.found, { major: 7, minor: 0, fingerprint: "0".repeat(64) });
      assert.match(
        e.message,
        new RegExp(
          `: its ABI major 7 is not 1; found ABI 7\\.0 .*expected 1\\.${LOADER_ABI.minor} `,
        ),
      );
      return true;
    });
  } finally {
    await Deno.remove(dirname(path), { recursive: true });
  }
});

/** Marks a function as exported from the shared library, on every OS. */
const EXPORT_MACRO = `#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif
`;

/**
 * Compiles C source (which marks its exports with `EXPORT`) into a shared
 * library named like this platform's kernel, in a new temp directory.
 */
async function compileLibrary(source: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, host.file);
  const c = join(dir, "fixture.c");
  await Deno.writeTextFile(c, EXPORT_MACRO + source);
  const output = await new Deno.Command(cc![0], {
    args: [...cc!.slice(1), "-shared", ...(WINDOWS ? [] : ["-fPIC"]), "-o", path, c],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  await Deno.remove(c);
  return path;
}

function assertThrowsKernel(call: () => unknown): KernelError {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof KernelError);
    return error;
  }
  throw new Error("expected a KernelError");
}

Deno.test("load() and install() refuse options they do not know, naming the nearest", async () => {
  const path = await kernelPath();
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => load({ pth: path } as any),
    (error: unknown) =>
      error instanceof TypeError &&
      /^Cannot load the kernel: unknown option "pth"\nHint: did you mean path\?/.test(
        error.message,
      ),
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => install({ cachedir: "/nowhere" } as any),
    (error: unknown) =>
      error instanceof TypeError &&
      /^Cannot install the kernel: unknown option "cachedir"\nHint: did you mean cacheDir\?/.test(
        error.message,
      ),
  );
  // Every documented option is still taken.
  using kernel = await load({ path, offline: true, verify: "stamp" });
  assert.equal(kernel.closed, false);
});

Deno.test("echo() and callRaw() refuse arguments that are not a Uint8Array", async () => {
  using kernel = await load({ path: await kernelPath() });
  for (const payload of ["hi", [104, 105], new ArrayBuffer(2), null, undefined]) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => kernel.echo(payload as any),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot echo: payload must be a Uint8Array, not .*\nHint: encode text first/.test(
          error.message,
        ),
      String(payload),
    );
    // deno-lint-ignore no-explicit-any
    assert.throws(() => kernel.callRaw(payload as any), TypeError, String(payload));
  }
  // deno-lint-ignore no-explicit-any
  assert.throws(() => kernel.readFile(42 as any), TypeError);
});

Deno.test("callRaw() needs the permissions of the typed API for files, journals and sockets", async () => {
  const kernel = await kernelPath();
  const denied = await Deno.makeTempDir();
  const script = `
    import { load } from ${JSON.stringify(new URL("./mod.ts", import.meta.url).href)};
    import { encodeRequest } from ${
    JSON.stringify(new URL("./_gen/messages.ts", import.meta.url).href)
  };
    using kernel = await load({ path: ${JSON.stringify(kernel)} });
    const denied = ${JSON.stringify(denied)};
    for (const request of [
      { readFile: { path: denied } },
      { journalOpen: { root: denied } },
      { serverStart: { listen: "127.0.0.1:0", upstreams: ["127.0.0.2:9"] } },
    ]) {
      try {
        kernel.callRaw(encodeRequest(request));
        console.log("sent");
      } catch (error) {
        console.log(error.name, error.flag);
      }
    }
  `;
  const output = await runScript(
    [
      `--allow-read=${kernel}`,
      "--allow-ffi",
      "--allow-env",
      "--allow-net=127.0.0.1",
      "--no-prompt",
    ],
    script,
  );
  await Deno.remove(denied, { recursive: true });
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.deepEqual(new TextDecoder().decode(output.stdout).trim().split("\n"), [
    `PermissionError --allow-read=${denied}`,
    `PermissionError --allow-read=${denied}`,
    "PermissionError --allow-net=127.0.0.2:9",
  ]);
});

Deno.test("echo() results are independent copies, not views of reused memory", async () => {
  using kernel = await load({ path: await kernelPath() });
  const first = kernel.echo(encoder.encode("first"));
  const second = kernel.echo(encoder.encode("second"));
  first.fill(0);
  assert.equal(new TextDecoder().decode(second), "second");
  assert.equal(new TextDecoder().decode(kernel.echo(encoder.encode("third"))), "third");
});

Deno.test("a transferred result does not break later calls (the result pool starts a new slab)", async () => {
  using kernel = await load({ path: await kernelPath() });
  const result = kernel.echo(encoder.encode("moving"));
  structuredClone(result.buffer, { transfer: [result.buffer as ArrayBuffer] });
  assert.equal(new TextDecoder().decode(kernel.echo(encoder.encode("still ok"))), "still ok");
});

Deno.test("Kernel cannot be constructed without load()", () => {
  assert.throws(
    // @ts-expect-error: the constructor's token is internal
    () => new Kernel(Symbol("forged"), null, "x.so", LOADER_ABI),
    /^TypeError: Cannot construct a Kernel directly: it would skip the ABI check\nHint: use load\(\)$/,
  );
});

Deno.test(
  skipIf(
    "load() names the missing symbol of a newer-minor kernel and keeps the ABI it found",
    NO_CC,
  ),
  async () => {
    const path = await compileLibrary(`
    EXPORT unsigned int krepis_abi_version(void) { return (${LOADER_ABI.major}u << 16) | ${
      LOADER_ABI.minor + 1
    }u; }
    EXPORT const char *krepis_abi_fingerprint(void) { return "${"1".repeat(64)}"; }
  `);
    try {
      await assert.rejects(() => load({ path }), (e: Error) => {
        assert.ok(e instanceof AbiMismatchError);
        assert.deepEqual(e.found, {
          major: LOADER_ABI.major,
          minor: LOADER_ABI.minor + 1,
          fingerprint: "1".repeat(64),
        });
        assert.match(
          e.message,
          new RegExp(
            `: its ABI ${LOADER_ABI.major}\\.${
              LOADER_ABI.minor + 1
            } lacks a symbol this loader binds`,
          ),
        );
        return true;
      });
    } finally {
      await Deno.remove(dirname(path), { recursive: true });
    }
  },
);
