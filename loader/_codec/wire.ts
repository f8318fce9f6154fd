/**
 * The protobuf wire format (proto3), for the encoders and decoders that
 * `tools/gen_codec.ts` generates from `proto/krepis.proto` into
 * `loader/_gen/messages.ts`. No dependencies: the loader's run-time path imports
 * nothing from npm.
 *
 * 64-bit integers are `bigint`; 32-bit ones and floating point are
 * `number`. Malformed input throws a `WireError`.
 *
 * @module
 */

import { allocate } from "./pool.ts";

/** Wire types. */
export const VARINT = 0;
/** 64-bit little-endian. */
export const I64 = 1;
/** Length-delimited. */
export const LEN = 2;
/** 32-bit little-endian. */
export const I32 = 5;

/** Malformed protobuf bytes. */
export class WireError extends Error {
  /** @param message What is wrong and where. */
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Appends protobuf values to a growing buffer. Nested messages and packed
 * fields are written in place ({@linkcode Writer.fork}/{@linkcode Writer.join}),
 * so one encode allocates only its result.
 */
export class Writer {
  #buf: Uint8Array;
  #view: DataView | null = null;
  #pos = 0;

  /** @param size Initial capacity in bytes. */
  constructor(size = 256) {
    this.#buf = new Uint8Array(size);
  }

  /** Starts over, keeping the buffer. */
  reset(): this {
    this.#pos = 0;
    return this;
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = null;
  }

  #dataView(): DataView {
    return this.#view ??= new DataView(this.#buf.buffer);
  }

  /**
   * Starts a length-delimited value written in place: reserves one byte for
   * its length. Pass the result to {@linkcode Writer.join} when it is written.
   */
  fork(): number {
    this.#reserve(1);
    return this.#pos++;
  }

  /** Ends a value started by {@linkcode Writer.fork}: writes its length before it. */
  join(start: number): void {
    const length = this.#pos - start - 1;
    if (length < 0x80) {
      this.#buf[start] = length;
      return;
    }
    let size = 1;
    for (let v = length >>> 7; v > 0; v >>>= 7) size++;
    this.#reserve(size - 1);
    this.#buf.copyWithin(start + size, start + 1, this.#pos);
    this.#pos += size - 1;
    let v = length;
    for (let i = 0; i < size - 1; i++, v >>>= 7) this.#buf[start + i] = (v & 0x7f) | 0x80;
    this.#buf[start + size - 1] = v;
  }

  /** A field's key: number and wire type. */
  tag(field: number, wireType: number): void {
    this.uint32(((field << 3) | wireType) >>> 0);
  }

  /** An unsigned 32-bit varint. */
  uint32(value: number): void {
    this.#reserve(5);
    let v = value >>> 0;
    while (v > 0x7f) {
      this.#buf[this.#pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[this.#pos++] = v;
  }

  /** A signed 32-bit varint: negative values take ten bytes, as in every implementation. */
  int32(value: number): void {
    if (value >= 0) this.uint32(value);
    else this.uint64(BigInt.asUintN(64, BigInt(value | 0)));
  }

  /** A zigzag-encoded 32-bit varint. */
  sint32(value: number): void {
    this.uint32(((value << 1) ^ (value >> 31)) >>> 0);
  }

  /** An unsigned 64-bit varint. */
  uint64(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    if (v <= 0xffffffffn) return this.uint32(Number(v));
    this.#reserve(10);
    while (v > 0x7fn) {
      this.#buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#pos++] = Number(v);
  }

  /** A signed 64-bit varint (two's complement). */
  int64(value: bigint): void {
    this.uint64(BigInt.asUintN(64, value));
  }

  /** A zigzag-encoded 64-bit varint. */
  sint64(value: bigint): void {
    const v = BigInt.asIntN(64, value);
    this.uint64(BigInt.asUintN(64, (v << 1n) ^ (v >> 63n)));
  }

  /** A bool (one byte). */
  bool(value: boolean): void {
    this.#reserve(1);
    this.#buf[this.#pos++] = value ? 1 : 0;
  }

  /** An unsigned fixed 32-bit value. */
  fixed32(value: number): void {
    this.#reserve(4);
    this.#dataView().setUint32(this.#pos, value >>> 0, true);
    this.#pos += 4;
  }

  /** A signed fixed 32-bit value. */
  sfixed32(value: number): void {
    this.#reserve(4);
    this.#dataView().setInt32(this.#pos, value | 0, true);
    this.#pos += 4;
  }

  /** An unsigned fixed 64-bit value. */
  fixed64(value: bigint): void {
    this.#reserve(8);
    this.#dataView().setBigUint64(this.#pos, BigInt.asUintN(64, value), true);
    this.#pos += 8;
  }

  /** A signed fixed 64-bit value. */
  sfixed64(value: bigint): void {
    this.#reserve(8);
    this.#dataView().setBigInt64(this.#pos, BigInt.asIntN(64, value), true);
    this.#pos += 8;
  }

  /** A 32-bit float. */
  float(value: number): void {
    this.#reserve(4);
    this.#dataView().setFloat32(this.#pos, value, true);
    this.#pos += 4;
  }

  /** A 64-bit float. */
  double(value: number): void {
    this.#reserve(8);
    this.#dataView().setFloat64(this.#pos, value, true);
    this.#pos += 8;
  }

  /** Length-prefixed bytes. */
  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.#reserve(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  /** A length-prefixed UTF-8 string. */
  string(value: string): void {
    // Short ASCII strings are the common case: write them directly, and
    // start over with the UTF-8 encoder at the first other character.
    if (value.length < 128) {
      this.#reserve(1 + value.length);
      const start = this.#pos;
      this.#buf[this.#pos++] = value.length;
      let i = 0;
      for (; i < value.length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        this.#buf[this.#pos++] = code;
      }
      if (i === value.length) return;
      this.#pos = start;
    }
    this.bytes(encoder.encode(value));
  }

  /**
   * Bytes written so far, copied into a region of their own (small ones are
   * carved from a shared slab: see `pool.ts`).
   */
  finish(): Uint8Array {
    const out = allocate(this.#pos);
    out.set(this.#buf.subarray(0, this.#pos));
    return out;
  }
}

/** A fresh empty byte array (a view: allocating an ArrayBuffer costs far more). */
export function emptyBytes(): Uint8Array {
  return allocate(0);
}

const shared = new Writer(1024);

/**
 * The module's one scratch writer, reset: encoders use it and copy the
 * result out, so encoding allocates nothing else. Not for nesting: finish
 * one encode before starting the next.
 */
export function scratchWriter(): Writer {
  return shared.reset();
}

/** Reads protobuf values from bytes. */
export class Reader {
  /** The bytes. */
  readonly buf: Uint8Array;
  /** The next byte to read. */
  pos: number;
  #view: DataView | null = null;

  /** @param buf The bytes to read. */
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.pos = 0;
  }

  #dataView(): DataView {
    return this.#view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  #need(n: number, end: number): void {
    if (this.pos + n > end) throw new WireError(`truncated at byte ${this.pos}`);
  }

  /** A varint as an unsigned 64-bit bigint (at most ten bytes). */
  varint64(end = this.buf.length): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      this.#need(1, end);
      const byte = this.buf[this.pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, result);
    }
    throw new WireError(`varint longer than ten bytes at byte ${this.pos}`);
  }

  /** A varint's low 32 bits, unsigned. */
  uint32(end = this.buf.length): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      this.#need(1, end);
      const byte = this.buf[this.pos++];
      result |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) return result >>> 0;
    }
    // Up to five more bytes carry bits above 32, which a 32-bit field drops.
    for (let i = 0; i < 5; i++) {
      this.#need(1, end);
      if (this.buf[this.pos++] < 0x80) return result >>> 0;
    }
    throw new WireError(`varint longer than ten bytes at byte ${this.pos}`);
  }

  /** A varint's low 32 bits, signed. */
  int32(end = this.buf.length): number {
    return this.uint32(end) | 0;
  }

  /** A zigzag 32-bit varint. */
  sint32(end = this.buf.length): number {
    const v = this.uint32(end);
    return (v >>> 1) ^ -(v & 1);
  }

  /** An unsigned 64-bit varint. */
  uint64(end = this.buf.length): bigint {
    return this.varint64(end);
  }

  /** A signed 64-bit varint. */
  int64(end = this.buf.length): bigint {
    return BigInt.asIntN(64, this.varint64(end));
  }

  /** A zigzag 64-bit varint. */
  sint64(end = this.buf.length): bigint {
    const v = this.varint64(end);
    return BigInt.asIntN(64, (v >> 1n) ^ -(v & 1n));
  }

  /** A bool: any non-zero varint is true. */
  bool(end = this.buf.length): boolean {
    return this.varint64(end) !== 0n;
  }

  /** An unsigned fixed 32-bit value. */
  fixed32(end = this.buf.length): number {
    this.#need(4, end);
    const v = this.#dataView().getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A signed fixed 32-bit value. */
  sfixed32(end = this.buf.length): number {
    this.#need(4, end);
    const v = this.#dataView().getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An unsigned fixed 64-bit value. */
  fixed64(end = this.buf.length): bigint {
    this.#need(8, end);
    const v = this.#dataView().getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A signed fixed 64-bit value. */
  sfixed64(end = this.buf.length): bigint {
    this.#need(8, end);
    const v = this.#dataView().getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A 32-bit float. */
  float(end = this.buf.length): number {
    this.#need(4, end);
    const v = this.#dataView().getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A 64-bit float. */
  double(end = this.buf.length): number {
    this.#need(8, end);
    const v = this.#dataView().getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** The end offset of a length-delimited value that starts here. */
  delimited(end = this.buf.length): number {
    const length = this.uint32(end);
    this.#need(length, end);
    return this.pos + length;
  }

  /** Length-prefixed bytes, as a view into the input (an empty value is a fresh empty array). */
  bytes(end = this.buf.length): Uint8Array {
    const stop = this.delimited(end);
    const value = stop === this.pos ? allocate(0) : this.buf.subarray(this.pos, stop);
    this.pos = stop;
    return value;
  }

  /** A length-prefixed UTF-8 string. */
  string(end = this.buf.length): string {
    const stop = this.delimited(end);
    let value: string;
    try {
      value = decoder.decode(this.buf.subarray(this.pos, stop));
    } catch {
      throw new WireError(`invalid UTF-8 in a string at byte ${this.pos}`);
    }
    this.pos = stop;
    return value;
  }

  /** Skips a field of the given wire type (an unknown field). */
  skip(wireType: number, end = this.buf.length): void {
    switch (wireType) {
      case VARINT:
        this.varint64(end);
        return;
      case I64:
        this.#need(8, end);
        this.pos += 8;
        return;
      case LEN:
        this.pos = this.delimited(end);
        return;
      case I32:
        this.#need(4, end);
        this.pos += 4;
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType} at byte ${this.pos}`);
    }
  }

  /**
   * Reads repeated values of a packed field, or one value of an unpacked
   * one, whichever the wire type says (parsers must accept both).
   */
  repeated<T>(wireType: number, end: number, read: (end: number) => T, out: T[]): void {
    if (wireType === LEN) {
      const stop = this.delimited(end);
      while (this.pos < stop) out.push(read(stop));
      return;
    }
    out.push(read(end));
  }
}
