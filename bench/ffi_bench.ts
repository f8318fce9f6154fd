/**
 * FFI benchmarks against the release build named by KREPIS_BENCH_KERNEL
 * (`deno task bench` builds it and sets it). The baseline is the emptiest
 * call there is: `krepis_abi_version()` through a bare `Deno.dlopen`.
 */

import { load } from "../loader/mod.ts";
import { SYMBOLS } from "../loader/_gen/ffi.ts";

const path = Deno.env.get("KREPIS_BENCH_KERNEL");
if (!path) {
  throw new Error(
    "Cannot run the benchmarks: KREPIS_BENCH_KERNEL is not set\nHint: run `deno task bench`",
  );
}

const bare = Deno.dlopen(path, { krepis_abi_version: SYMBOLS.krepis_abi_version });
const kernel = await load({ path });
const small = new TextEncoder().encode("hello, kernel!!!"); // 16 bytes
// krepis.v1.Request { echo: { payload: small } }, encoded once.
const encodedEcho = new Uint8Array([0x12, small.length + 2, 0x0a, small.length, ...small]);

Deno.bench("empty FFI call (bare Deno.dlopen, krepis_abi_version)", {
  baseline: true,
  group: "ffi",
}, () => {
  bare.symbols.krepis_abi_version();
});

Deno.bench("Echo round trip, 16 B (TS encode, call, Rust decode+encode, TS decode)", {
  group: "ffi",
}, () => {
  kernel.echo(small);
});

Deno.bench("callRaw, 16 B pre-encoded Echo (call, copy out, free)", { group: "ffi" }, () => {
  kernel.callRaw(encodedEcho);
});
