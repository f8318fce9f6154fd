import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelError, KernelView, load } from "./mod.ts";
import { KERNEL_TOKEN } from "./_token.ts";
import { kernelPath } from "../tests/_kernel.ts";
import { skipIf, when, WINDOWS } from "../tests/_tools.ts";
import { runScript } from "../tests/_script.ts";

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

const MOD = JSON.stringify(new URL("./mod.ts", import.meta.url).href);

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
