/**
 * `@krepis/loader/release`: the release format the loader verifies, for the
 * tools that write releases (the repository's `release/` step) and anyone
 * checking one by hand: the signed manifest (`parseManifest`,
 * `formatManifest`, the trusted comment it is signed with) and minisign
 * signatures (`parseMinisignPublicKey`, `verifyMinisign`).
 *
 * ```ts
 * import { formatManifest, parseManifest } from "@krepis/loader/release";
 *
 * const manifest = parseManifest(formatManifest({
 *   schema: 1,
 *   version: "0.1.0",
 *   abi: { major: 1, minor: 0, fingerprint: "0".repeat(64) },
 *   targets: [],
 * }));
 * console.log(manifest.version);
 * ```
 *
 * @module
 */

export {
  type CompressedCopy,
  type Compression,
  COMPRESSIONS,
  formatManifest,
  type Manifest,
  MANIFEST_SCHEMA_VERSION,
  type ManifestTarget,
  manifestTrustedComment,
  MAX_MANIFEST_SIZE,
  parseManifest,
} from "./manifest.ts";
export {
  type MinisignPublicKey,
  parseMinisignPublicKey,
  type VerifiedSignature,
  verifyMinisign,
  type VerifyMinisignOptions,
} from "./minisign.ts";
export { targetByTriple } from "./platform.ts";
