/**
 * The C ABI from outside Deno: a C program compiled against
 * include/krepis.h (with zig's C compiler, or the system's), and a Python
 * ctypes script, both call the same build the loader opens, and agree with
 * it.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { load } from "../loader/mod.ts";
import { kernelPath } from "./_kernel.ts";
import { cCompiler, python, skipIf, WINDOWS } from "./_tools.ts";

const cc = await cCompiler();
const py = await python();

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, `${command} ${args.join(" ")} failed:\n${stderr}`);
  return new TextDecoder().decode(output.stdout);
}

async function loaderView() {
  using kernel = await load({ path: await kernelPath() });
  return {
    version: kernel.version,
    abi: (kernel.abi.major << 16) | kernel.abi.minor,
    fingerprint: kernel.abi.fingerprint,
  };
}

Deno.test(
  skipIf(
    "a C program built against krepis.h calls every export of the same build",
    WINDOWS
      ? "linking a C program to the kernel's .dll needs its MSVC import library; the Python ctypes client covers the C ABI on Windows"
      : cc === null
      ? "no C compiler (deno task setup installs zig)"
      : null,
  ),
  async () => {
    const library = await kernelPath();
    const dir = await Deno.makeTempDir();
    try {
      const exe = join(dir, "abi_client");
      await run(cc![0], [
        ...cc!.slice(1),
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-I",
        join(REPO_ROOT, "crates", "krepis-kernel", "include"),
        join(REPO_ROOT, "tests", "clients", "abi_client.c"),
        "-o",
        exe,
        library,
        `-Wl,-rpath,${dirname(library)}`,
      ]);
      const seen = JSON.parse(await run(exe, []));
      assert.deepEqual(
        { version: seen.version, abi: seen.abi, fingerprint: seen.fingerprint },
        await loaderView(),
      );
      assert.match(
        seen.malformed,
        /^Cannot decode the request: it is not a valid krepis\.v1\.Request /,
      );
      assert.equal(seen.panic, "Cannot complete the call: the kernel panicked: x");
      assert.equal(seen.viewed, (await Deno.stat(exe)).size, "it read itself through a view");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  skipIf(
    "a Python ctypes script calls the same build",
    py === null ? "no Python 3 interpreter (python3 or python) on PATH" : null,
  ),
  async () => {
    const library = await kernelPath();
    const seen = JSON.parse(
      await run(py!, [join(REPO_ROOT, "tests", "clients", "abi_client.py"), library]),
    );
    assert.deepEqual(
      { version: seen.version, abi: seen.abi, fingerprint: seen.fingerprint },
      await loaderView(),
    );
    assert.equal(seen.echo, "py");
    assert.equal(
      seen.viewed,
      (await Deno.stat(join(REPO_ROOT, "tests", "clients", "abi_client.py"))).size,
      "it read itself through a view",
    );
    assert.match(
      seen.malformed,
      /^Cannot decode the request: it is not a valid krepis\.v1\.Request /,
    );
  },
);
