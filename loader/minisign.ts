/**
 * Verifies minisign signatures with WebCrypto's Ed25519.
 *
 * Only minisign's non-prehashed algorithm (`Ed`) is accepted, because it is
 * plain Ed25519 over the file, which WebCrypto can verify; the prehashed
 * `ED` algorithm needs BLAKE2b, which WebCrypto lacks. `minisign -V`
 * verifies both.
 *
 * Formats (base64 of the bytes shown):
 * - public key: `"Ed" ‖ key id (8) ‖ Ed25519 public key (32)`;
 * - signature file: an untrusted comment line, `"Ed" ‖ key id ‖ signature
 *   (64)`, a `trusted comment: …` line, and a global signature (64) over
 *   `signature ‖ trusted comment`.
 *
 * @module
 */

import { IntegrityError } from "./errors.ts";

/** A minisign public key. */
export interface MinisignPublicKey {
  /** The 8-byte key id, as minisign prints it (16 uppercase hex digits). */
  keyId: string;
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/** What a verified signature says. */
export interface VerifiedSignature {
  /** The id of the key that signed. */
  keyId: string;
  /** The signed trusted comment (e.g. timestamp and file name). */
  trustedComment: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Reads a minisign public key: the base64 line alone (as in
 * `KREPIS_TRUSTED_KEY`) or a whole `.pub` file.
 *
 * @param text The key.
 * @returns The key id and the raw public key.
 * @throws {IntegrityError} When the text is not a minisign Ed25519 public key.
 *
 * @example Reading a public key
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMinisignPublicKey } from "@krepis/loader/release";
 *
 * const key = parseMinisignPublicKey("RWQBAgMEBQYHCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
 * assert.ok(key.keyId === "0807060504030201");
 * ```
 */
export function parseMinisignPublicKey(text: string): MinisignPublicKey {
  const line =
    text.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
      l && !l.startsWith("untrusted comment:")
    )[0] ??
      "";
  const bytes = decodeBase64(line);
  if (!bytes || bytes.length !== 42 || bytes[0] !== 0x45 || bytes[1] !== 0x64) {
    throw new IntegrityError(
      // Never echoed whole: a secret key pasted by mistake must not reach a log.
      `Cannot read the public key (${line.length} characters, starting ${
        JSON.stringify(line.slice(0, 4))
      }): it is not a minisign Ed25519 public key`,
      { hint: "give the second line of a minisign .pub file (it starts with RW)" },
    );
  }
  return { keyId: keyIdHex(bytes.subarray(2, 10)), publicKey: bytes.slice(10) };
}

/** What {@linkcode verifyMinisign} checks a signature against. */
export interface VerifyMinisignOptions {
  /** The trusted public keys; the signature must be made by one of them. */
  keys: readonly MinisignPublicKey[];
  /** The signed file's name, for messages, e.g. `"manifest.json"`. */
  what: string;
}

/**
 * Verifies a minisign signature of `message` against trusted keys.
 *
 * @param message The signed bytes.
 * @param signature The text of the `.minisig` file.
 * @param options The trusted public keys and what was signed, for messages
 *   (e.g. `"manifest.json"`).
 * @returns The signing key's id and the trusted comment.
 * @throws {IntegrityError} When the signature file is malformed, uses the
 *   prehashed algorithm, names a key that is not trusted, or does not verify.
 *
 * @example Refusing a malformed signature
 * ```ts
 * import assert from "node:assert/strict";
 * import { IntegrityError } from "@krepis/loader";
 * import { verifyMinisign } from "@krepis/loader/release";
 *
 * const ok = await verifyMinisign(new Uint8Array(), "garbage", { keys: [], what: "x" }).then(() => true, (e) => !(e instanceof IntegrityError));
 * assert.ok(!ok);
 * ```
 */
export async function verifyMinisign(
  message: Uint8Array,
  signature: string,
  options: VerifyMinisignOptions,
): Promise<VerifiedSignature>;
/**
 * The positional form of {@linkcode verifyMinisign}, kept for existing
 * callers: `verifyMinisign(message, signature, keys, what)`.
 *
 * @param message The signed bytes.
 * @param signature The `.minisig` file's text.
 * @param keys The trusted public keys.
 * @param what The signed file's name, for messages.
 * @returns The verified signature.
 */
export async function verifyMinisign(
  message: Uint8Array,
  signature: string,
  keys: readonly MinisignPublicKey[],
  what: string,
): Promise<VerifiedSignature>;
export async function verifyMinisign(
  message: Uint8Array,
  signature: string,
  keysOrOptions: readonly MinisignPublicKey[] | VerifyMinisignOptions,
  whatGiven?: string,
): Promise<VerifiedSignature> {
  const { keys, what } = isKeyList(keysOrOptions)
    ? { keys: keysOrOptions, what: whatGiven ?? "the file" }
    : keysOrOptions;
  const fail = (state: string, hint = "the file may be damaged or not from this release") =>
    new IntegrityError(`Cannot verify the signature of ${what}: ${state}`, { hint: hint });
  const lines = signature.split(/\r?\n/);
  const sigBytes = decodeBase64(lines[1]?.trim() ?? "");
  const trustedLine = lines[2] ?? "";
  const globalBytes = decodeBase64(lines[3]?.trim() ?? "");
  if (
    !lines[0]?.startsWith("untrusted comment:") || !sigBytes || sigBytes.length !== 74 ||
    !trustedLine.startsWith("trusted comment: ") || !globalBytes || globalBytes.length !== 64
  ) {
    throw fail("it is not a minisign signature file");
  }
  const algorithm = String.fromCharCode(sigBytes[0], sigBytes[1]);
  if (algorithm !== "Ed") {
    throw fail(
      `it uses algorithm ${JSON.stringify(algorithm)}, not the non-prehashed "Ed"`,
      "sign with the non-prehashed (legacy) algorithm, e.g. `minisign -S -l`",
    );
  }
  const keyId = keyIdHex(sigBytes.subarray(2, 10));
  const key = keys.find((k) => k.keyId === keyId);
  if (!key) {
    throw fail(
      `it was made with key ${keyId}, which is not trusted${
        keys.length
          ? ` (trusted: ${keys.map((k) => k.keyId).join(", ")})`
          : " (no keys are trusted)"
      }`,
      "set KREPIS_TRUSTED_KEY to the release host's public key",
    );
  }
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key.publicKey as Uint8Array<ArrayBuffer>,
    "Ed25519",
    false,
    [
      "verify",
    ],
  );
  const sig = sigBytes.slice(10);
  if (!await crypto.subtle.verify("Ed25519", cryptoKey, sig, message as Uint8Array<ArrayBuffer>)) {
    throw fail(`the signature by key ${keyId} does not match its contents`);
  }
  const trustedComment = trustedLine.slice("trusted comment: ".length);
  const signedComment = new Uint8Array([...sig, ...new TextEncoder().encode(trustedComment)]);
  if (!await crypto.subtle.verify("Ed25519", cryptoKey, globalBytes, signedComment)) {
    throw fail(`the trusted comment signed by key ${keyId} was altered`);
  }
  return { keyId, trustedComment };
}

/** minisign prints the little-endian 64-bit key id as hex. */
function keyIdHex(bytes: Uint8Array): string {
  return Array.from(bytes).reverse().map((b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (!BASE64.test(text) || text.length % 4 !== 0) return null;
  // Uint8Array.fromBase64 where the runtime has it: the first atob() call
  // costs over a millisecond of start-up, on the warm path.
  const fromBase64 = (Uint8Array as { fromBase64?: (text: string) => Uint8Array<ArrayBuffer> })
    .fromBase64;
  if (fromBase64) {
    try {
      return fromBase64(text);
    } catch {
      return null;
    }
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function isKeyList(
  value: readonly MinisignPublicKey[] | VerifyMinisignOptions,
): value is readonly MinisignPublicKey[] {
  return Array.isArray(value);
}
