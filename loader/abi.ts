/**
 * The ABI this loader was generated against.
 *
 * @module
 */

import { ABI_FINGERPRINT, ABI_MAJOR, ABI_MINOR } from "./_gen/ffi.ts";

/** An ABI version and the fingerprint of the exported surface. */
export interface AbiInfo {
  /** Incompatible changes bump the major. */
  major: number;
  /** Additions bump the minor. */
  minor: number;
  /** SHA-256 (hex) of the normalized declarations of krepis.h. */
  fingerprint: string;
}

/**
 * The ABI this loader needs: a kernel must have the same major, at least
 * this minor, and (at this minor) the same fingerprint.
 *
 * @example Printing the ABI the loader expects
 * ```ts
 * import assert from "node:assert/strict";
 * import { LOADER_ABI } from "@krepis/loader";
 *
 * console.log(`ABI ${LOADER_ABI.major}.${LOADER_ABI.minor}`);
 * assert.match(LOADER_ABI.fingerprint, /^[0-9a-f]{64}$/);
 * ```
 */
export const LOADER_ABI: Readonly<AbiInfo> = Object.freeze({
  major: ABI_MAJOR,
  minor: ABI_MINOR,
  fingerprint: ABI_FINGERPRINT,
});
