/**
 * Zero-copy view benchmarks, each as a ratio measured in the same run:
 *
 * 1. a view's life over bytes the kernel already holds (`krepis_view_get`,
 *    `UnsafePointerView.getArrayBuffer`, one read, detach on close) for
 *    1 MiB vs 256 MiB (goal: ratio ≤ 1.5, i.e. O(1)); a copy out of the
 *    same bytes for contrast. Views are closed as `KernelView.close()`
 *    does: V8 counts a live external buffer's length as external memory,
 *    so thousands of huge views left open make its collector run more;
 * 2. reading a 256 MiB file through `kernel.readFile()` vs `Deno.readFile`;
 * 3. scanning 256 MiB (counting newlines) through the view vs copying it
 *    out first.
 *
 * Usage: deno run -A bench/views.ts <kernel library>
 *
 * @module
 */

import { join } from "node:path";
import { load } from "../loader/mod.ts";
import { SYMBOLS } from "../loader/_gen/ffi.ts";
import { decodeResponse, encodeRequest } from "../loader/_gen/messages.ts";
import { reportUncaught } from "../lib/task.ts";

// Run by `deno task bench`: a failure is written as every task writes one.
reportUncaught("deno task bench");

const library = Deno.args[0];
if (!library) {
  throw new Error("Cannot run the view benchmarks: no library given\nHint: run `deno task bench`");
}
const MiB = 1024 * 1024;
const runs = Number(Deno.env.get("KREPIS_BENCH_RUNS") ?? "15");

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function time(repeat: number, body: () => void): number {
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    for (let i = 0; i < repeat; i++) body();
    samples.push((performance.now() - start) / repeat);
  }
  return median(samples);
}

function countNewlines(bytes: Uint8Array): number {
  let lines = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) lines++;
  return lines;
}

const dir = await Deno.makeTempDir({ prefix: "krepis-bench-views-" });
try {
  const files: Record<string, string> = {};
  for (const size of [1, 256]) {
    const file = join(dir, `${size}MiB.bin`);
    const chunk = new Uint8Array(MiB).map((_, i) => (i % 80 === 79 ? 10 : 97));
    using handle = await Deno.open(file, { write: true, create: true });
    for (let i = 0; i < size; i++) await handle.write(chunk);
    files[size] = file;
  }

  // 1. View creation, on bytes the kernel already holds.
  const raw = Deno.dlopen(library, {
    krepis_call: SYMBOLS.krepis_call,
    krepis_buffer_free: SYMBOLS.krepis_buffer_free,
    krepis_view_get: SYMBOLS.krepis_view_get,
    krepis_view_release: SYMBOLS.krepis_view_release,
  });
  const lent = new BigUint64Array(2);
  const lentBytes = new Uint8Array(lent.buffer);
  const kernelRead = (file: string): bigint => {
    const request = encodeRequest({ readFile: { path: file } });
    const out = new BigUint64Array(2);
    const outBytes = new Uint8Array(out.buffer);
    if (raw.symbols.krepis_call(request, BigInt(request.length), outBytes) !== 0) {
      throw new Error(`Cannot read ${file} in the kernel`);
    }
    const answer = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(out[0])!, Number(out[1])),
    ).slice();
    raw.symbols.krepis_buffer_free(outBytes);
    return decodeResponse(answer).view!.id;
  };
  const view = (id: bigint): Uint8Array => {
    raw.symbols.krepis_view_get(id, lentBytes);
    return new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(lent[0])!, Number(lent[1])),
    );
  };
  // What readFile() and close() do around the read: lend, wrap, use, detach.
  const viewLife = (id: bigint): void => {
    const bytes = view(id);
    if (bytes[0] !== 97) throw new Error("Cannot bench: the view shows other bytes");
    (bytes.buffer as ArrayBuffer).transfer(0);
  };
  const small = kernelRead(files[1]);
  const large = kernelRead(files[256]);
  const viewSmall = time(10, () => viewLife(small));
  const viewLarge = time(10, () => viewLife(large));
  const copySmall = time(10, () => view(small).slice());
  const copyLarge = time(1, () => view(large).slice());
  raw.symbols.krepis_view_release(small);
  raw.symbols.krepis_view_release(large);

  // 2. Reading a file: through the kernel (read, view, close) vs Deno.readFile.
  using kernel = await load({ path: library });
  // Alternated, so that neither runs in the other's garbage.
  const kernelSamples: number[] = [];
  const denoSamples: number[] = [];
  for (let run = 0; run < runs; run++) {
    let start = performance.now();
    kernel.readFile(files[256]).close();
    kernelSamples.push(performance.now() - start);
    start = performance.now();
    await Deno.readFile(files[256]);
    denoSamples.push(performance.now() - start);
  }
  const viaKernel = median(kernelSamples);
  const viaDeno = median(denoSamples);

  // 3. Scanning 256 MiB: in place vs copying first.
  using scanned = kernel.readFile(files[256]);
  const lines = countNewlines(scanned.bytes);
  const scanView = time(1, () => countNewlines(scanned.bytes));
  const scanCopy = time(1, () => countNewlines(scanned.bytes.slice()));

  const ms = (value: number) => `${value < 0.01 ? value.toFixed(5) : value.toFixed(2)} ms`;
  console.log(`\nzero-copy views (median of ${runs} runs; ${lines} lines in 256 MiB)`);
  console.log(
    `  view creation   1 MiB: ${ms(viewSmall)}   256 MiB: ${ms(viewLarge)}   ratio ${
      (viewLarge / viewSmall).toFixed(2)
    } (goal ≤ 1.5)`,
  );
  console.log(
    `  copy out        1 MiB: ${ms(copySmall)}   256 MiB: ${ms(copyLarge)}   ratio ${
      (copyLarge / copySmall).toFixed(0)
    } (for contrast: O(n))`,
  );
  console.log(
    `  read 256 MiB    kernel.readFile: ${ms(viaKernel)}   Deno.readFile: ${ms(viaDeno)}   ratio ${
      (viaKernel / viaDeno).toFixed(2)
    }`,
  );
  console.log(
    `  scan 256 MiB    through the view: ${ms(scanView)}   copy first: ${ms(scanCopy)}   ratio ${
      (scanCopy / scanView).toFixed(2)
    }`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
