/**
 * The generated protobuf codecs (`tools/gen_codec.ts`) against protobufjs
 * and the kernel's own prost code, byte for byte: random messages of every
 * field kind (`proto/conformance.proto`) and of the control plane
 * (`proto/krepis.proto`), with defaults, negative and 64-bit numbers, empty
 * and large bytes, non-ASCII text, and unknown fields, which every decoder
 * must skip. prost runs in `examples/proto_roundtrip.rs`, built from the
 * same build script as the kernel.
 *
 * Random messages come from a seeded generator; the seed is in every
 * failure message, and `KREPIS_CONFORMANCE_SEED=<n>` replays it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import protobuf from "npm:protobufjs@^8.8.1";
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  type RequestInit,
  type ResponseInit,
} from "../loader/_gen/messages.ts";
import { Reader, WireError, Writer } from "../loader/_codec/wire.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import {
  Color,
  decodeEverything,
  encodeEverything,
  type Everything,
  type EverythingInit,
  type Inner,
  newEverything,
} from "./conformance/_messages.ts";
import { outputWithin } from "./_tools.ts";

const SEED = Number(Deno.env.get("KREPIS_CONFORMANCE_SEED") ?? Date.now() % 2 ** 31);
const COUNT = 300;

/** mulberry32: small, seeded, good enough to spread values. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(values: readonly T[]) => values[int(values.length)];
  const u64 = () => (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32));
  return {
    next,
    int,
    pick,
    chance: (p: number) => next() < p,
    int32: () => pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 127, 128, -128, int(2 ** 32) | 0]),
    uint32: () => pick([0, 1, 2 ** 32 - 1, 127, 128, 16384, int(2 ** 32)]),
    int64: () => pick([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), BigInt.asIntN(64, u64())]),
    uint64: () => pick([0n, 1n, 2n ** 64n - 1n, 2n ** 32n, BigInt.asUintN(64, u64())]),
    float: () => pick([0, 1.5, -2.25, 3.4028234663852886e38, Math.fround(next() * 1e6 - 5e5)]),
    double: () => pick([0, -1e-300, 1.7976931348623157e308, next() * 1e12 - 5e11, 5e-324]),
    text: () =>
      pick(["", "a", "krepis", "é", "日本語", "emoji 🦀", "x".repeat(200 + int(300))]).slice(
        0,
        400,
      ),
    bytes: () => {
      const size = pick([0, 1, 7, 128, 300, 70_000]);
      const out = new Uint8Array(size);
      for (let i = 0; i < size; i++) out[i] = int(256);
      return out;
    },
  };
}
type Rng = ReturnType<typeof rng>;

function randomInner(r: Rng): Inner {
  return { name: r.chance(0.5) ? r.text() : "", delta: r.chance(0.5) ? r.int64() : 0n };
}

function randomList<T>(r: Rng, make: () => T): T[] {
  return r.chance(0.4) ? [] : Array.from({ length: 1 + r.int(5) }, make);
}

/** A random Everything, as decoding would return it (defaults filled). */
function randomEverything(r: Rng): Everything {
  const m = newEverything();
  const maybe = <T>(make: () => T, zero: T) => (r.chance(0.6) ? make() : zero);
  m.i32 = maybe(r.int32, 0);
  m.i64 = maybe(r.int64, 0n);
  m.u32 = maybe(r.uint32, 0);
  m.u64 = maybe(r.uint64, 0n);
  m.s32 = maybe(r.int32, 0);
  m.s64 = maybe(r.int64, 0n);
  m.f32 = maybe(r.uint32, 0);
  m.f64 = maybe(r.uint64, 0n);
  m.sf32 = maybe(r.int32, 0);
  m.sf64 = maybe(r.int64, 0n);
  m.flag = r.chance(0.5);
  m.text = maybe(r.text, "");
  m.data = maybe(r.bytes, new Uint8Array(0));
  m.color = r.pick([Color.COLOR_UNSPECIFIED, Color.COLOR_RED, Color.COLOR_BLUE, 7, -3]);
  if (r.chance(0.5)) m.inner = randomInner(r);
  m.real32 = maybe(r.float, 0);
  m.real64 = maybe(r.double, 0);
  m.manyI32 = randomList(r, r.int32);
  m.manyS64 = randomList(r, r.int64);
  m.manyU64 = randomList(r, r.uint64);
  m.manyFlags = randomList(r, () => r.chance(0.5));
  m.manyText = randomList(r, r.text);
  m.manyData = randomList(r, r.bytes);
  m.manyInner = randomList(r, () => randomInner(r));
  m.manyColors = randomList(r, () => r.pick([0, 1, 2, 9]));
  m.manyF32 = randomList(r, r.uint32);
  m.manyReal64 = randomList(r, r.double);
  switch (r.int(5)) {
    case 0:
      m.choice = "choiceText";
      m.choiceText = r.chance(0.3) ? "" : r.text(); // a set member is written even when empty
      break;
    case 1:
      m.choice = "choiceNumber";
      m.choiceNumber = r.chance(0.3) ? 0n : r.int64();
      break;
    case 2:
      m.choice = "choiceInner";
      m.choiceInner = randomInner(r);
      break;
    case 3:
      m.choice = "choiceData";
      m.choiceData = r.bytes();
      break;
  }
  return m;
}

/** Unknown fields of every wire type, with numbers the schemas do not use. */
function unknownFields(r: Rng): Uint8Array {
  const w = new Writer();
  for (let i = 0, n = 1 + r.int(4); i < n; i++) {
    const field = 1000 + r.int(100_000);
    switch (r.int(4)) {
      case 0:
        w.tag(field, 0);
        w.uint64(r.uint64());
        break;
      case 1:
        w.tag(field, 1);
        w.fixed64(r.uint64());
        break;
      case 2:
        w.tag(field, 2);
        w.bytes(r.bytes());
        break;
      default:
        w.tag(field, 5);
        w.fixed32(r.uint32());
    }
  }
  return w.finish();
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// --- protobufjs, from the same .proto files.

async function protobufjsRoot(file: string): Promise<protobuf.Root> {
  return protobuf.parse(await Deno.readTextFile(join(REPO_ROOT, "proto", file)), {
    keepCase: false,
  }).root;
}
const pbConformance = (await protobufjsRoot("conformance.proto")).lookupType(
  "krepis.conformance.v1.Everything",
);
const pbControl = await protobufjsRoot("krepis.proto");
const pbRequest = pbControl.lookupType("krepis.v1.Request");
const pbResponse = pbControl.lookupType("krepis.v1.Response");

/**
 * A message as protobufjs wants it: plain fields at their default left out
 * (protobufjs writes every property that is present), 64-bit numbers as
 * decimal strings, the oneof's discriminator dropped.
 */
function forProtobufjs(value: unknown, oneofNames: string[] = ["choice", "kind"]): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v) => forProtobufjs(v));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    const oneofMembers = new Set(
      Object.keys(value).filter((k) => k.startsWith("choice") || oneofNames.includes(k)),
    );
    for (const [key, v] of Object.entries(value)) {
      if (oneofNames.includes(key) || v === undefined) continue;
      const isOneofMember = oneofMembers.has(key) && key !== "choice";
      if (!isOneofMember && isDefault(v)) continue;
      out[key] = forProtobufjs(v);
    }
    return out;
  }
  return value;
}

function isDefault(v: unknown): boolean {
  return v === 0 || v === 0n || v === "" || v === false ||
    (v instanceof Uint8Array && v.length === 0) || (Array.isArray(v) && v.length === 0);
}

/** protobufjs's decoded object in our shape (for comparing decoders). */
function fromProtobufjs(type: protobuf.Type, bytes: Uint8Array): unknown {
  const object = type.toObject(type.decode(bytes), {
    longs: String,
    bytes: Array,
    defaults: true,
    arrays: true,
    oneofs: true,
  });
  return normalize(object);
}

/** Both sides' objects made comparable: 64-bit as strings, bytes as arrays, absent dropped. */
function normalize(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) {
      if (v === undefined || v === null) continue;
      out[key] = normalize(v);
    }
    return out;
  }
  return value;
}

// --- prost, through the kernel's example binary.

let prostBinary: Promise<string> | undefined;
async function buildProst(): Promise<string> {
  const output = await outputWithin(
    new Deno.Command("cargo", {
      args: [
        "build",
        "--locked",
        "-p",
        "krepis-kernel",
        "--example",
        "proto_roundtrip",
        "--message-format=json-render-diagnostics",
      ],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }),
    20 * 60_000,
  );
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    if (!line.startsWith("{")) continue;
    const message = JSON.parse(line);
    if (message.reason === "compiler-artifact" && message.target?.name === "proto_roundtrip") {
      return message.executable;
    }
  }
  throw new Error("Cannot find the proto_roundtrip example cargo built");
}

/** Runs prost's decode → encode on each message; a string is prost's refusal. */
async function prost(messages: { kind: 0 | 1 | 2; bytes: Uint8Array }[]) {
  prostBinary ??= buildProst();
  const frames = messages.map(({ kind, bytes }) => {
    const header = new Uint8Array(5);
    header[0] = kind;
    new DataView(header.buffer).setUint32(1, bytes.length, true);
    return concat(header, bytes);
  });
  const child = new Deno.Command(await prostBinary, {
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(concat(...frames));
  await writer.close();
  const output = await child.output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const results: (Uint8Array | string)[] = [];
  const view = new DataView(output.stdout.buffer);
  for (let at = 0; at < output.stdout.length;) {
    const status = output.stdout[at];
    const length = view.getUint32(at + 1, true);
    const body = output.stdout.slice(at + 5, at + 5 + length);
    results.push(status === 0 ? body : new TextDecoder().decode(body));
    at += 5 + length;
  }
  assert.equal(results.length, messages.length);
  return results;
}

const hex = (bytes: Uint8Array) =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 200);

Deno.test(`Everything: ${COUNT} random messages agree byte for byte with protobufjs and prost (seed ${SEED})`, async () => {
  const r = rng(SEED);
  const cases = Array.from({ length: COUNT }, () => randomEverything(r));
  const encoded = cases.map((m) => encodeEverything(m));
  const withUnknown = encoded.map((bytes) => concat(unknownFields(r), bytes, unknownFields(r)));
  for (const [i, m] of cases.entries()) {
    const where = `case ${i}, seed ${SEED}`;
    const ours = encoded[i];
    const theirs = pbConformance.encode(forProtobufjs(m) as Record<string, unknown>).finish();
    assert.equal(hex(ours), hex(theirs), `${where}: encodings differ`);
    assert.deepEqual(normalize(decodeEverything(ours)), normalize(m), `${where}: our decode`);
    assert.deepEqual(
      fromProtobufjs(pbConformance, ours),
      normalize({ ...m, choice: m.choice }),
      `${where}: protobufjs decodes what we wrote`,
    );
    // Unknown fields are skipped: re-encoding gives the known fields only.
    assert.equal(hex(encodeEverything(decodeEverything(withUnknown[i]))), hex(ours), where);
    assert.equal(
      hex(pbConformance.encode(pbConformance.decode(withUnknown[i])).finish()),
      hex(ours),
      `${where}: protobufjs skips the unknown fields the same way`,
    );
  }
  const fromProst = await prost([
    ...encoded.map((bytes) => ({ kind: 0 as const, bytes })),
    ...withUnknown.map((bytes) => ({ kind: 0 as const, bytes })),
  ]);
  for (const [i, result] of fromProst.entries()) {
    assert.ok(result instanceof Uint8Array, `prost refused case ${i % COUNT}: ${result}`);
    assert.equal(hex(result), hex(encoded[i % COUNT]), `case ${i % COUNT}, seed ${SEED}: prost`);
  }
});

Deno.test(`the control plane: random Requests and Responses agree with protobufjs and prost (seed ${SEED})`, async () => {
  const r = rng(SEED + 1);
  const requests: RequestInit[] = [
    {},
    { buildInfo: {} },
    { echo: {} },
    { echo: { payload: new Uint8Array(0) } },
    { fail: { message: "", panic: false } },
  ];
  const responses: ResponseInit[] = [{}, { echo: {} }, { buildInfo: {} }];
  for (let i = 0; i < 100; i++) {
    requests.push(
      r.pick<RequestInit>([
        { buildInfo: {} },
        { echo: { payload: r.bytes() } },
        { fail: { message: r.text(), panic: r.chance(0.5) } },
      ]),
    );
    responses.push(
      r.pick<ResponseInit>([
        { echo: { payload: r.bytes() } },
        {
          buildInfo: {
            version: r.text(),
            target: r.text(),
            profile: r.pick(["release", "dev", ""]),
            rustc: r.text(),
            gitCommit: r.text(),
            features: randomList(r, r.text),
          },
        },
      ]),
    );
  }
  const ours = [
    ...requests.map((m) => ({ kind: 1 as const, bytes: encodeRequest(m) })),
    ...responses.map((m) => ({ kind: 2 as const, bytes: encodeResponse(m) })),
  ];
  for (const [i, m] of requests.entries()) {
    const theirs = pbRequest.encode(forProtobufjs(m) as Record<string, unknown>).finish();
    assert.equal(hex(ours[i].bytes), hex(theirs), `request ${i}, seed ${SEED}`);
    assert.equal(hex(encodeRequest(decodeRequest(ours[i].bytes))), hex(ours[i].bytes));
  }
  for (const [i, m] of responses.entries()) {
    const bytes = ours[requests.length + i].bytes;
    const theirs = pbResponse.encode(forProtobufjs(m) as Record<string, unknown>).finish();
    assert.equal(hex(bytes), hex(theirs), `response ${i}, seed ${SEED}`);
    assert.equal(hex(encodeResponse(decodeResponse(bytes))), hex(bytes));
  }
  const fromProst = await prost(ours);
  for (const [i, result] of fromProst.entries()) {
    assert.ok(result instanceof Uint8Array, `prost refused message ${i}: ${result}`);
    assert.equal(hex(result), hex(ours[i].bytes), `message ${i}, seed ${SEED}: prost`);
  }
});

Deno.test("a large bytes field (8 MiB) round-trips through all three", async () => {
  const payload = new Uint8Array(8 << 20);
  for (let i = 0; i < payload.length; i += 4093) payload[i] = i & 0xff;
  const bytes = encodeRequest({ echo: { payload } });
  const decoded = decodeRequest(bytes);
  assert.equal(decoded.kind, "echo");
  assert.deepEqual(decoded.echo?.payload, payload);
  assert.equal(
    hex(pbRequest.encode({ echo: { payload } }).finish()),
    hex(bytes),
  );
  const [fromProst] = await prost([{ kind: 1, bytes }]);
  assert.ok(fromProst instanceof Uint8Array);
  assert.equal(fromProst.length, bytes.length);
  assert.deepEqual(fromProst, bytes);
});

Deno.test("malformed bytes: every truncation and corruption is a WireError, as prost refuses them", async () => {
  const r = rng(SEED + 2);
  const samples = Array.from({ length: 20 }, () => encodeEverything(randomEverything(r)));
  const broken: Uint8Array[] = [];
  for (const bytes of samples) {
    if (bytes.length < 2) continue;
    broken.push(bytes.subarray(0, 1 + r.int(bytes.length - 1)));
  }
  broken.push(
    Uint8Array.of(0x08), // a key with no value
    Uint8Array.of(0x0a, 0x05, 0x61), // a length past the end
    Uint8Array.of(0x00, 0x00), // field number 0
    Uint8Array.of(0x0b), // a group (wire type 3)
    Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // an 11-byte varint
    Uint8Array.of(0x62, 0x02, 0xc3, 0x28), // text (field 12) that is not UTF-8
    Uint8Array.of(0x09, 0, 0, 0, 0, 0, 0, 0, 0), // field 1 (int32) as a fixed64
  );
  const verdicts = await prost(broken.map((bytes) => ({ kind: 0 as const, bytes })));
  for (const [i, bytes] of broken.entries()) {
    let ours: unknown = null;
    try {
      decodeEverything(bytes);
    } catch (error) {
      ours = error;
    }
    // A cut at a field boundary is a valid, shorter message: then prost accepts it too.
    if (ours === null) {
      assert.ok(verdicts[i] instanceof Uint8Array, `case ${i}: we accept what prost refuses`);
      continue;
    }
    assert.ok(ours instanceof WireError, `case ${i}: ${ours}`);
    assert.equal(typeof verdicts[i], "string", `case ${i} (${hex(bytes)}): prost accepts it`);
  }
});

Deno.test("Reader reads what Writer writes at the edges of every integer kind", () => {
  const w = new Writer(1);
  const ints = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)];
  const bigs = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)];
  for (const v of ints) (w.int32(v), w.sint32(v), w.sfixed32(v));
  for (const v of [0, 1, 2 ** 32 - 1]) (w.uint32(v), w.fixed32(v));
  for (const v of bigs) (w.int64(v), w.sint64(v), w.sfixed64(v));
  for (const v of [0n, 2n ** 64n - 1n]) (w.uint64(v), w.fixed64(v));
  const r = new Reader(w.finish());
  for (const v of ints) assert.deepEqual([r.int32(), r.sint32(), r.sfixed32()], [v, v, v]);
  for (const v of [0, 1, 2 ** 32 - 1]) assert.deepEqual([r.uint32(), r.fixed32()], [v, v]);
  for (const v of bigs) assert.deepEqual([r.int64(), r.sint64(), r.sfixed64()], [v, v, v]);
  for (const v of [0n, 2n ** 64n - 1n]) assert.deepEqual([r.uint64(), r.fixed64()], [v, v]);
  assert.equal(r.pos, r.buf.length);
});

// The encoder's input type accepts every decoded message.
const _typeCheck: (m: Everything) => EverythingInit = (m) => m;
void _typeCheck;
