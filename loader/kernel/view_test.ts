import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelError, KernelView, load } from "../mod.ts";
import { KERNEL_TOKEN } from "./token.ts";
import { kernelPath } from "../../tests/_kernel.ts";
import { skipIf, when, WINDOWS } from "../../tests/_tools.ts";
import { runScript } from "../../tests/_script.ts";
import { memoryLimitUnavailable, runLimited } from "../../tests/_memory_limit.ts";

const NO_MEMORY_LIMIT = memoryLimitUnavailable();
const MIB = 1024 * 1024;

async function tempFile(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-view-" });
  const file = join(dir, "data.bin");
  await Deno.writeFile(file, bytes);
  return file;
}

Deno.test("readFile() lends the file's bytes in kernel memory without a copy", async () => {
  const bytes = crypto.getRandomValues(new Uint8Array(65536));
  const file = await tempFile(bytes);
  using kernel = await load({ path: await kernelPath() });
  assert.ok(kernel.buildInfo().capabilities.includes("view"));
  using view = kernel.readFile(file);
  assert.ok(view instanceof KernelView);
  assert.equal(view.byteLength, bytes.length);
  assert.deepEqual(view.bytes, bytes);
  // The bytes are the kernel's, not a copy in a Deno-allocated buffer: a
  // second view of the same id would alias them (checked through the
  // pointer of the view's buffer).
  const pointer = Deno.UnsafePointer.of(view.bytes);
  assert.ok(pointer !== null);
  const again = Deno.UnsafePointerView.getArrayBuffer(pointer, 16);
  assert.deepEqual(new Uint8Array(again), bytes.subarray(0, 16));
  await Deno.remove(file);
  assert.deepEqual(
    view.bytes.subarray(0, 4),
    bytes.subarray(0, 4),
    "the kernel holds its own copy",
  );
});

Deno.test("a closed view throws, and bytes taken before close are detached, not freed memory", async () => {
  const file = await tempFile(new Uint8Array([1, 2, 3, 4]));
  using kernel = await load({ path: await kernelPath() });
  const view = kernel.readFile(file);
  const kept = view.bytes;
  const sub = kept.subarray(1, 3);
  view.close();
  assert.equal(view.closed, true);
  assert.throws(() => view.bytes, /^Error: Cannot read the view: it was closed/);
  assert.equal(kept.length, 0);
  assert.equal(kept[0], undefined);
  assert.equal(sub.length, 0);
  assert.throws(() => kept.slice(0), TypeError);
  assert.equal(view.byteLength, 4, "the length is still known");
  view.close(); // twice is a no-op
  await Deno.remove(file);
});

Deno.test("a view's buffer cannot be transferred, and one moved anyway is never freed", async () => {
  const file = await tempFile(new Uint8Array(4096).fill(5));
  using kernel = await load({ path: await kernelPath() });
  const view = kernel.readFile(file);
  const buffer = view.bytes.buffer as ArrayBuffer;
  assert.throws(() => buffer.transfer(), /^TypeError: Cannot transfer a KernelView's buffer/);
  assert.throws(() => buffer.transferToFixedLength(), TypeError);
  assert.equal(view.bytes[0], 5, "still readable after the refusals");
  // structuredClone with a transfer list moves it regardless; close() must
  // then leave the bytes allocated, since the moved buffer still reads them.
  const moved = structuredClone(buffer, { transfer: [buffer] });
  view.close();
  assert.equal(new Uint8Array(moved)[4095], 5);
  await Deno.remove(file);
});

Deno.test("closing the kernel detaches and frees every view it lent", async () => {
  const file = await tempFile(new Uint8Array([9, 8, 7]));
  const kernel = await load({ path: await kernelPath() });
  const view = kernel.readFile(file);
  const kept = view.bytes;
  kernel.close();
  assert.equal(kept.length, 0);
  assert.throws(() => view.bytes, /it was closed/);
  view.close(); // after the kernel: a no-op, not a call into a closed library
  await Deno.remove(file);
});

const MOD = JSON.stringify(new URL("../mod.ts", import.meta.url).href);

Deno.test("views dropped without close() are given back to the kernel when collected", async () => {
  const file = await tempFile(new Uint8Array(1024 * 1024).fill(7));
  const library = await kernelPath();
  // A child with --expose-gc drops 64 views, collects, then asks the kernel
  // through a second handle on the same library (the same image, so the
  // same view table) whether each id is still lent: releasing an id the
  // collector already gave back answers UNKNOWN_HANDLE (7).
  const script = `
    import { load } from ${MOD};
    const kernel = await load({ path: ${JSON.stringify(library)} });
    const ids = [];
    for (let i = 0; i < 64; i++) kernel.readFile(${JSON.stringify(file)}).bytes[0];
    for (let round = 0; round < 30; round++) {
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const probe = Deno.dlopen(${JSON.stringify(library)}, {
      krepis_view_release: { parameters: ["u64"], result: "u32" },
    });
    let given = 0;
    for (let id = 1n; id <= 64n; id++) if (probe.symbols.krepis_view_release(id) === 7) given++;
    using last = kernel.readFile(${JSON.stringify(file)});
    console.log(JSON.stringify({ given, last: last.bytes[0] }));
    kernel.close();
  `;
  const output = await runScript(["-A", "--v8-flags=--expose-gc"], script);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const report = JSON.parse(new TextDecoder().decode(output.stdout));
  // A conservative stack scan may keep a few alive; most must be freed.
  assert.ok(report.given >= 56, `only ${report.given} of 64 views were freed`);
  assert.equal(report.last, 7);
  await Deno.remove(file);
});

Deno.test("readFile() refuses folders, missing files and FIFOs with a KernelError", async (t) => {
  using kernel = await load({ path: await kernelPath() });
  const dir = await Deno.makeTempDir({ prefix: "krepis-view-" });
  await t.step("a folder", () => {
    assert.throws(() => kernel.readFile(dir), (error: unknown) => {
      assert.ok(error instanceof KernelError);
      assert.equal(error.codeName, "FAILED");
      assert.match(error.message, /^Cannot read file .*: it is not a regular file/);
      return true;
    });
  });
  await t.step("a missing file", () => {
    assert.throws(() => kernel.readFile(join(dir, "missing")), /no such file/);
  });
  await t.step({
    ...skipIf("a FIFO with no writer (does not hang)", when(WINDOWS, "Windows has no FIFOs")),
    fn: async () => {
      const fifo = join(dir, "pipe");
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.equal(made.code, 0);
      assert.throws(() => kernel.readFile(fifo), /not a regular file/);
    },
  });
  await t.step("an empty file gives an empty view", async () => {
    const empty = join(dir, "empty");
    await Deno.writeFile(empty, new Uint8Array());
    using view = kernel.readFile(empty);
    assert.equal(view.bytes.length, 0);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readFile() needs Deno's read permission for the file", async () => {
  const file = await tempFile(new Uint8Array([1]));
  const library = await kernelPath();
  const script = `
    import { load, PermissionError } from ${MOD};
    using kernel = await load({ path: ${JSON.stringify(library)} });
    try { kernel.readFile(${JSON.stringify(file)}); console.log("read"); }
    catch (e) { console.log(e instanceof PermissionError ? "refused " + e.flag : String(e)); }
  `;
  const output = await runScript(
    ["--no-prompt", "--allow-env", "--allow-ffi", `--allow-read=${library}`],
    script,
  );
  const stdout = new TextDecoder().decode(output.stdout).trim();
  assert.equal(stdout, `refused --allow-read=${file}`, new TextDecoder().decode(output.stderr));
  await Deno.remove(file);
});

Deno.test("a KernelView cannot be constructed from outside the loader", () => {
  assert.throws(
    () => new KernelView(Symbol("x"), 1n, new ArrayBuffer(1), { release() {}, forget() {} }),
    TypeError,
  );
  assert.ok(KERNEL_TOKEN);
});

Deno.test(
  skipIf(
    "readFile() refuses a file larger than the memory the process may use, before touching it",
    NO_MEMORY_LIMIT,
  ),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "krepis-view-" });
    const big = join(dir, "sparse.bin");
    // 1 GiB that takes no disk: under overcommit its buffer is granted,
    // and only touching its pages would get the process killed.
    await Deno.writeFile(big, new Uint8Array());
    await Deno.truncate(big, 1024 * MIB);
    const script = `
      import { load } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
      using kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      try {
        kernel.readFile(${JSON.stringify(big)}).close();
        console.log("read");
      } catch (error) {
        console.log(error.message);
      }
    `;
    const output = await runLimited(256 * MIB, ["--allow-all"], script);
    await Deno.remove(dir, { recursive: true });
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.signal, null, `the child was killed (${output.signal}): ${stdout}`);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(
      stdout,
      /^Cannot read file .*sparse\.bin: its 1073741824 bytes do not fit in the memory this process may still use \(\d+ bytes\) \(FAILED\)\nHint: read it in parts/,
    );
  },
);

Deno.test(
  skipIf(
    "views not closed are counted, and past the memory left a read is refused with a hint to close them",
    NO_MEMORY_LIMIT,
  ),
  async () => {
    const file = await tempFile(new Uint8Array(16 * MIB).fill(7));
    const script = `
      import { load } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
      using kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      const held = [];
      let refusal = "none";
      // Bounded: 100 reads of 16 MiB are far more than the limit holds.
      for (let i = 0; i < 100; i++) {
        try {
          held.push(kernel.readFile(${JSON.stringify(file)}));
        } catch (error) {
          refusal = error.message;
          break;
        }
      }
      console.log(JSON.stringify({ held: held.length, refusal }));
      for (const view of held) view.close();
      using again = kernel.readFile(${JSON.stringify(file)});
      console.log(JSON.stringify({ again: again.byteLength }));
    `;
    const output = await runLimited(512 * MIB, ["--allow-all"], script);
    await Deno.remove(file);
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.signal, null, `the child was killed (${output.signal}): ${stdout}`);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const [first, second] = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(first.held >= 1 && first.held < 100, stdout);
    assert.match(
      first.refusal,
      new RegExp(
        `^Cannot read file .*: its ${
          16 * MIB
        } bytes do not fit in the memory this process may still use \\(\\d+ bytes; ${
          first.held * 16 * MIB
        } bytes are held by views not closed\\) \\(FAILED\\)\\nHint: close the views you no longer need`,
      ),
    );
    assert.deepEqual(second, { again: 16 * MIB }, "closing the views made room again");
  },
);

Deno.test(
  skipIf(
    "readFile() reads a file whose reported size is 0 to its end",
    when(Deno.build.os !== "linux", "/proc exists only on Linux"),
  ),
  async () => {
    using kernel = await load({ path: await kernelPath() });
    assert.equal((await Deno.stat("/proc/self/status")).size, 0);
    using view = kernel.readFile("/proc/self/status");
    const text = new TextDecoder().decode(view.bytes);
    assert.match(text, /^Name:/);
    assert.match(text, /\nVmRSS:\s+\d+ kB\n/);
    // A file that is really empty is still an empty view.
    const empty = await tempFile(new Uint8Array());
    using none = kernel.readFile(empty);
    assert.equal(none.byteLength, 0);
    await Deno.remove(empty);
  },
);
