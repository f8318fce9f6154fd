/**
 * Verifies a Mach-O file's embedded code signature from its bytes, as the
 * macOS kernel does when it maps the file: the `LC_CODE_SIGNATURE` blob's
 * CodeDirectory holds one hash per page of the file up to the signature,
 * and each must equal the hash of that page. Apple Silicon refuses to map
 * code whose signature is missing or does not match, so a rewrite after the
 * link (`strip`, `install_name_tool`) that does not sign again breaks the
 * library; this finds that on any OS, without `codesign`.
 *
 * Only the page hashes and the special slots of blobs present in the
 * signature (requirements, entitlements) are checked; an ad hoc signature
 * has no certificate chain to check.
 *
 * @module
 */

import { createHash } from "node:crypto";

const LC_CODE_SIGNATURE = 0x1d;
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSSLOT_CODEDIRECTORY = 0;
const CS_ADHOC = 0x2;
const CS_LINKER_SIGNED = 0x20000;
const HASH_TYPES: Record<number, { name: string; algorithm: string; size: number }> = {
  1: { name: "SHA-1", algorithm: "sha1", size: 20 },
  2: { name: "SHA-256", algorithm: "sha256", size: 32 },
  3: { name: "SHA-256 (truncated)", algorithm: "sha256", size: 20 },
  4: { name: "SHA-384", algorithm: "sha384", size: 48 },
};

/** What {@linkcode verifyCodeSignature} found. */
export type CodeSignatureInfo =
  | { signed: false }
  | {
    signed: true;
    /** Signed without an identity (`CS_ADHOC`). */
    adhoc: boolean;
    /** Signed by the linker (`CS_LINKER_SIGNED`). */
    linkerSigned: boolean;
    /** The page hash algorithm. */
    hash: string;
    /** Pages whose hash was checked. */
    pages: number;
    /** Why the signature does not verify, or null when every hash matched. */
    problem: string | null;
  };

/**
 * Reads and checks a thin 64-bit Mach-O file's code signature.
 *
 * @param bytes The file.
 * @returns `signed: false` without `LC_CODE_SIGNATURE`; otherwise what the
 *   signature says and whether every page hash matched.
 */
export function verifyCodeSignature(bytes: Uint8Array): CodeSignatureInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const inFile = (offset: number, size: number) => offset >= 0 && offset + size <= bytes.length;
  if (!inFile(0, 32) || view.getUint32(0, true) !== 0xfeedfacf) return { signed: false };
  const ncmds = view.getUint32(16, true);
  let at = 32;
  let blob: { offset: number; size: number } | null = null;
  for (let i = 0; i < ncmds && inFile(at, 8); i++) {
    const cmd = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (cmd === LC_CODE_SIGNATURE && inFile(at, 16)) {
      blob = { offset: view.getUint32(at + 8, true), size: view.getUint32(at + 12, true) };
    }
    if (size === 0) break;
    at += size;
  }
  if (!blob) return { signed: false };
  const broken = (problem: string): CodeSignatureInfo => ({
    signed: true,
    adhoc: false,
    linkerSigned: false,
    hash: "unknown",
    pages: 0,
    problem,
  });
  if (!inFile(blob.offset, blob.size) || blob.size < 12) {
    return broken(`its signature blob (${blob.size} bytes at ${blob.offset}) is outside the file`);
  }
  const be = (offset: number) => view.getUint32(offset, false);
  if (be(blob.offset) !== CSMAGIC_EMBEDDED_SIGNATURE) {
    return broken(`its signature blob has magic 0x${be(blob.offset).toString(16)}`);
  }
  const count = be(blob.offset + 8);
  const slots = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const entry = blob.offset + 12 + i * 8;
    if (entry + 8 > blob.offset + blob.size) return broken("its signature index is truncated");
    slots.set(be(entry), blob.offset + be(entry + 4));
  }
  const cd = slots.get(CSSLOT_CODEDIRECTORY);
  if (cd === undefined || !inFile(cd, 44) || be(cd) !== CSMAGIC_CODEDIRECTORY) {
    return broken("its signature has no CodeDirectory");
  }
  const cdLength = be(cd + 4);
  const flags = be(cd + 12);
  const hashOffset = be(cd + 16);
  const nSpecialSlots = be(cd + 24);
  const nCodeSlots = be(cd + 28);
  const codeLimit = be(cd + 32);
  const hashSize = view.getUint8(cd + 36);
  const hashType = HASH_TYPES[view.getUint8(cd + 37)];
  const pageSize = 2 ** view.getUint8(cd + 39);
  const info = {
    signed: true as const,
    adhoc: (flags & CS_ADHOC) !== 0,
    linkerSigned: (flags & CS_LINKER_SIGNED) !== 0,
    hash: hashType?.name ?? `type ${view.getUint8(cd + 37)}`,
    pages: 0,
  };
  if (!hashType || hashType.size !== hashSize) {
    return { ...info, problem: `its CodeDirectory uses hash ${info.hash} of ${hashSize} bytes` };
  }
  if (!inFile(cd, cdLength) || hashOffset + nCodeSlots * hashSize > cdLength) {
    return { ...info, problem: "its CodeDirectory is truncated" };
  }
  if (codeLimit !== blob.offset) {
    return {
      ...info,
      problem: `it covers ${codeLimit} bytes, but the signature starts at byte ${blob.offset}`,
    };
  }
  if (nCodeSlots !== Math.ceil(codeLimit / pageSize)) {
    return {
      ...info,
      problem: `it has ${nCodeSlots} page hashes for ${codeLimit} bytes of ${pageSize}-byte pages`,
    };
  }
  const digest = (data: Uint8Array) =>
    new Uint8Array(createHash(hashType.algorithm).update(data).digest()).subarray(0, hashSize);
  const same = (a: Uint8Array, b: Uint8Array) => a.every((x, i) => x === b[i]);
  const bad: number[] = [];
  for (let page = 0; page < nCodeSlots; page++) {
    const start = page * pageSize;
    const want = bytes.subarray(
      cd + hashOffset + page * hashSize,
      cd + hashOffset + (page + 1) * hashSize,
    );
    if (!same(digest(bytes.subarray(start, Math.min(start + pageSize, codeLimit))), want)) {
      bad.push(page);
    }
  }
  // Special slots sit before hashOffset, slot -n at hashOffset - n * hashSize.
  for (let n = 1; n <= nSpecialSlots; n++) {
    const want = bytes.subarray(
      cd + hashOffset - n * hashSize,
      cd + hashOffset - (n - 1) * hashSize,
    );
    const at = slots.get(n);
    if (at === undefined) {
      if (want.some((x) => x !== 0)) {
        return { ...info, pages: nCodeSlots, problem: `special slot -${n} names a blob it lacks` };
      }
      continue;
    }
    if (!inFile(at, 8)) {
      return { ...info, pages: nCodeSlots, problem: `special slot -${n} points outside the file` };
    }
    const length = be(at + 4);
    if (!inFile(at, length) || !same(digest(bytes.subarray(at, at + length)), want)) {
      return { ...info, pages: nCodeSlots, problem: `special slot -${n}'s hash does not match` };
    }
  }
  return {
    ...info,
    pages: nCodeSlots,
    problem: bad.length
      ? `${bad.length} of ${nCodeSlots} page hashes do not match (first: page ${bad[0]}, bytes ${
        bad[0] * pageSize
      }…)`
      : null,
  };
}
