/**
 * Turns a built library into what a release ships for its target: the
 * library under its table name, zstd and gzip copies, and the manifest entry
 * describing all three. Used by `deno task build` (per-target fragments) and
 * by the release directory writer.
 *
 * @module
 */

import { createHash } from "node:crypto";
import zlib from "node:zlib";
import type { ManifestTarget } from "../loader/release.ts";
import type { TargetInfo } from "../loader/mod.ts";

/** A file to publish. */
export interface PackedFile {
  name: string;
  bytes: Uint8Array;
}

/** A packed library: its manifest entry and its files. */
export interface PackedArtifact {
  entry: ManifestTarget;
  files: PackedFile[];
}

/** SHA-256 (hex) of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Packs a library for `target`: names it from the target table, compresses it
 * (zstd level 19, gzip level 9) and describes the three files.
 *
 * @param library The built library's bytes.
 * @param target The target it was built for.
 * @returns The manifest entry and the files.
 */
export function packArtifact(library: Uint8Array, target: TargetInfo): PackedArtifact {
  const zstd = zlib.zstdCompressSync(library, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: 19 },
  });
  const gzip = zlib.gzipSync(library, { level: 9 });
  const files = [
    { name: target.file, bytes: library },
    { name: `${target.file}.zst`, bytes: new Uint8Array(zstd) },
    { name: `${target.file}.gz`, bytes: new Uint8Array(gzip) },
  ];
  const describe = (file: PackedFile) => ({
    file: file.name,
    size: file.bytes.length,
    sha256: sha256Hex(file.bytes),
  });
  const raw = describe(files[0]);
  return {
    entry: {
      triple: target.triple,
      os: target.os,
      arch: target.arch,
      libc: target.libc,
      file: raw.file,
      size: raw.size,
      sha256: raw.sha256,
      compressed: { zstd: describe(files[1]), gzip: describe(files[2]) },
    },
    files,
  };
}
