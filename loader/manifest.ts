/**
 * The release manifest (`manifest.json`): what a release contains and the
 * checksums that make its bytes trustworthy once its signature verifies.
 *
 * Schema version 1:
 *
 * ```jsonc
 * {
 *   "schema": 1,                 // this format; other values are refused
 *   "version": "0.1.0",          // the lock-step version (tag v0.1.0)
 *   "abi": { "major": 1, "minor": 0, "fingerprint": "<64 hex>" },
 *   "targets": [{
 *     "triple": "x86_64-unknown-linux-gnu",
 *     "os": "linux", "arch": "x86_64", "libc": "gnu",   // libc null off Linux
 *     "file": "libkrepis_kernel-x86_64-unknown-linux-gnu.so",
 *     "size": 123456,             // bytes of the library
 *     "sha256": "<64 hex>",       // of the library
 *     "compressed": {             // optional copies; default {}
 *       "zstd": { "file": "<file>.zst", "size": 45678, "sha256": "<64 hex>" },
 *       "gzip": { "file": "<file>.gz", "size": 56789, "sha256": "<64 hex>" }
 *     }
 *   }]
 * }
 * ```
 *
 * @module
 */

import { IntegrityError } from "./errors.ts";

/** The manifest format this loader reads and writes. */
export const MANIFEST_SCHEMA_VERSION = 1;

/** The largest manifest the loader reads, in bytes. */
export const MAX_MANIFEST_SIZE: number = 1024 * 1024;

/** A compressed copy of a target's library. */
export interface CompressedCopy {
  /** Asset file name: the library's name plus `.zst` or `.gz`. */
  file: string;
  /** Bytes of the compressed file. */
  size: number;
  /** SHA-256 (lowercase hex) of the compressed file. */
  sha256: string;
}

/** The compressions a release may carry, in the loader's order of preference. */
export const COMPRESSIONS: readonly ["zstd", "gzip"] = ["zstd", "gzip"];

/** One compression format. */
export type Compression = (typeof COMPRESSIONS)[number];

/** One target's library in a release. */
export interface ManifestTarget {
  /** Rust target triple. */
  triple: string;
  /** `Deno.build.os` it runs on. */
  os: string;
  /** `Deno.build.arch` it runs on. */
  arch: string;
  /** `"gnu"`/`"musl"` on Linux, `null` elsewhere. */
  libc: string | null;
  /** Asset file name of the library. */
  file: string;
  /** Bytes of the library. */
  size: number;
  /** SHA-256 (lowercase hex) of the library. */
  sha256: string;
  /** Compressed copies of the library. @default {{}} */
  compressed: Partial<Record<Compression, CompressedCopy>>;
}

/** A release manifest. */
export interface Manifest {
  /** Always {@linkcode MANIFEST_SCHEMA_VERSION}. */
  schema: number;
  /** The lock-step version. */
  version: string;
  /** The kernel ABI every target implements. */
  abi: { major: number; minor: number; fingerprint: string };
  /** One entry per target in the release. */
  targets: ManifestTarget[];
}

const SHA256 = /^[0-9a-f]{64}$/;
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/**
 * Parses and checks `manifest.json`.
 *
 * @param text The manifest's text.
 * @returns The manifest, with defaults filled in.
 * @throws {IntegrityError} For malformed JSON, an unknown schema version or
 *   a malformed field; the message names the field.
 *
 * @example Parsing a manifest
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifest } from "@krepis/loader/release";
 *
 * const manifest = parseManifest(JSON.stringify({
 *   schema: 1,
 *   version: "0.1.0",
 *   abi: { major: 1, minor: 0, fingerprint: "0".repeat(64) },
 *   targets: [],
 * }));
 * assert.ok(manifest.version === "0.1.0");
 * ```
 */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw malformed("the manifest", `is not JSON (${(error as Error).message})`);
  }
  const root = object(raw, "the manifest");
  if (root.schema !== MANIFEST_SCHEMA_VERSION) {
    throw new IntegrityError(
      `Cannot read the release manifest: schema ${
        JSON.stringify(root.schema)
      } is not the supported schema ${MANIFEST_SCHEMA_VERSION}`,
      { hint: `use the @krepis/loader release that matches this manifest` },
    );
  }
  const abi = object(root.abi, "abi");
  return {
    schema: MANIFEST_SCHEMA_VERSION,
    version: string(root.version, "version", SEMVER, "a semantic version"),
    abi: {
      major: integer(abi.major, "abi.major"),
      minor: integer(abi.minor, "abi.minor"),
      fingerprint: string(abi.fingerprint, "abi.fingerprint", SHA256, "64 lowercase hex digits"),
    },
    targets: unique(
      array(root.targets, "targets").map((value, i) => parseTarget(value, `targets[${i}]`)),
    ),
  };
}

/** Refuses a manifest that lists a target twice: which entry would be trusted is not for a loader to guess. */
function unique(targets: ManifestTarget[]): ManifestTarget[] {
  const seen = new Set<string>();
  for (const [i, t] of targets.entries()) {
    if (seen.has(t.triple)) {
      throw malformed(`targets[${i}].triple`, `lists ${t.triple} a second time`);
    }
    seen.add(t.triple);
  }
  return targets;
}

/**
 * The trusted comment a release signs `manifest.json` with: the file's name
 * and the release's version, so that a signature cannot be moved to another
 * file or another release. No timestamp: the same manifest always gets the
 * same signature bytes (Ed25519 is deterministic), so re-publishing finds
 * the asset unchanged.
 *
 * @param version The release's version.
 * @returns The comment, e.g. `file:manifest.json\tversion:0.1.0`.
 *
 * @example The comment for a release
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifestTrustedComment } from "@krepis/loader/release";
 *
 * assert.equal(manifestTrustedComment("0.1.0"), "file:manifest.json\tversion:0.1.0");
 * ```
 */
export function manifestTrustedComment(version: string): string {
  return `file:manifest.json\tversion:${version}`;
}

function parseTarget(value: unknown, at: string): ManifestTarget {
  const target = object(value, at);
  const libc = target.libc ?? null;
  if (libc !== null && libc !== "gnu" && libc !== "musl") {
    throw malformed(`${at}.libc`, `is ${JSON.stringify(libc)}, not "gnu", "musl" or null`);
  }
  const compressed: Partial<Record<Compression, CompressedCopy>> = {};
  const copies = object(target.compressed ?? {}, `${at}.compressed`);
  for (const [name, copy] of Object.entries(copies)) {
    if (!(COMPRESSIONS as readonly string[]).includes(name)) {
      throw malformed(`${at}.compressed.${name}`, `is not one of ${COMPRESSIONS.join(", ")}`);
    }
    const c = object(copy, `${at}.compressed.${name}`);
    compressed[name as Compression] = {
      file: string(c.file, `${at}.compressed.${name}.file`, PLAIN_NAME, "a plain file name"),
      size: integer(c.size, `${at}.compressed.${name}.size`),
      sha256: string(
        c.sha256,
        `${at}.compressed.${name}.sha256`,
        SHA256,
        "64 lowercase hex digits",
      ),
    };
  }
  return {
    triple: string(target.triple, `${at}.triple`, PLAIN_NAME, "a target triple"),
    os: string(target.os, `${at}.os`, PLAIN_NAME, "an OS name"),
    arch: string(target.arch, `${at}.arch`, PLAIN_NAME, "a CPU name"),
    libc,
    file: string(target.file, `${at}.file`, PLAIN_NAME, "a plain file name"),
    size: integer(target.size, `${at}.size`),
    sha256: string(target.sha256, `${at}.sha256`, SHA256, "64 lowercase hex digits"),
    compressed,
  };
}

/**
 * Renders a manifest as `manifest.json` text: two-space JSON, fields in
 * schema order, a final newline.
 *
 * @param manifest The manifest.
 * @returns The file's text.
 *
 * @example Round-tripping a manifest
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatManifest, parseManifest } from "@krepis/loader/release";
 *
 * const text = formatManifest({ schema: 1, version: "0.1.0", abi: { major: 1, minor: 0, fingerprint: "0".repeat(64) }, targets: [] });
 * assert.ok(formatManifest(parseManifest(text)) === text);
 * ```
 */
export function formatManifest(manifest: Manifest): string {
  const ordered = {
    schema: manifest.schema,
    version: manifest.version,
    abi: {
      major: manifest.abi.major,
      minor: manifest.abi.minor,
      fingerprint: manifest.abi.fingerprint,
    },
    targets: manifest.targets.map((t) => ({
      triple: t.triple,
      os: t.os,
      arch: t.arch,
      libc: t.libc,
      file: t.file,
      size: t.size,
      sha256: t.sha256,
      compressed: Object.fromEntries(
        COMPRESSIONS.filter((name) => t.compressed[name]).map((name) => {
          const c = t.compressed[name]!;
          return [name, { file: c.file, size: c.size, sha256: c.sha256 }];
        }),
      ),
    })),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function malformed(field: string, problem: string): IntegrityError {
  return new IntegrityError(
    `Cannot read the release manifest: ${field} ${problem}`,
    { hint: `the release host serves a damaged or foreign manifest; check KREPIS_MIRROR` },
  );
}

function object(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed(at, "is not an object");
  }
  return value as Record<string, unknown>;
}

function array(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw malformed(at, "is not an array");
  return value;
}

function string(value: unknown, at: string, pattern: RegExp, what: string): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw malformed(at, `is ${JSON.stringify(value) ?? "missing"}, not ${what}`);
  }
  return value;
}

function integer(value: unknown, at: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw malformed(at, `is ${JSON.stringify(value) ?? "missing"}, not a non-negative integer`);
  }
  return value;
}
