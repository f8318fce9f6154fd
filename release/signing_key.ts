/**
 * The release signing key as text, for `KREPIS_SIGNING_KEY`: base64 of
 * `"KRSK" ‖ key id (8) ‖ Ed25519 seed (32)`, the secret counterpart of a
 * minisign public key (`"Ed" ‖ key id ‖ public key`). The distinct magic
 * keeps a public key from ever being taken for a secret one.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { SigningKey } from "./minisign_sign.ts";

const MAGIC = [0x4b, 0x52, 0x53, 0x4b]; // "KRSK"
const PKCS8_ED25519_PREFIX = [
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
];

/**
 * Renders a signing key for `KREPIS_SIGNING_KEY` (keep it secret).
 *
 * @param key A key generated with `generateSigningKey()` (extractable).
 * @returns The base64 text.
 */
export async function exportSigningKey(key: SigningKey): Promise<string> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key.keyPair.privateKey));
  const seed = pkcs8.slice(PKCS8_ED25519_PREFIX.length);
  return Buffer.from([...MAGIC, ...key.keyIdBytes, ...seed]).toString("base64");
}

/**
 * Reads a signing key from its `KREPIS_SIGNING_KEY` text.
 *
 * @param text The base64 text.
 * @returns The key, ready to sign.
 * @throws {Error} When the text is not a Krepis signing key.
 */
export async function importSigningKey(text: string): Promise<SigningKey> {
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text.trim())
    ? new Uint8Array(Buffer.from(text.trim(), "base64"))
    : null;
  if (!bytes || bytes.length !== 44 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(
      "Cannot read the signing key: it is not a Krepis Ed25519 signing key\nHint: set KREPIS_SIGNING_KEY to the secret `deno task release keygen` printed (the whole line)",
    );
  }
  const pkcs8 = new Uint8Array([...PKCS8_ED25519_PREFIX, ...bytes.subarray(12)]);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x: jwk.x },
    "Ed25519",
    true,
    [
      "verify",
    ],
  );
  const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
  return { keyIdBytes: bytes.slice(4, 12), keyPair: { privateKey, publicKey }, publicKeyRaw };
}
