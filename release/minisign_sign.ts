/**
 * Creates minisign-compatible Ed25519 keys and signatures with WebCrypto.
 * Signatures use minisign's non-prehashed algorithm (`Ed`), which
 * `minisign -V` and the loader's `verifyMinisign()` both verify.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** A signing key pair and its minisign key id. */
export interface SigningKey {
  /** 8 random bytes identifying the key (minisign stores them little-endian). */
  keyIdBytes: Uint8Array;
  /** The Ed25519 key pair (private key extractable only if generated so). */
  keyPair: CryptoKeyPair;
  /** The raw 32-byte public key. */
  publicKeyRaw: Uint8Array;
}

/**
 * Generates a new signing key (for throwaway releases: demos and tests).
 *
 * @returns The key.
 */
export async function generateSigningKey(): Promise<SigningKey> {
  const keyPair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  return { keyIdBytes: crypto.getRandomValues(new Uint8Array(8)), keyPair, publicKeyRaw };
}

/**
 * The key id as minisign prints it.
 *
 * @param key The key.
 * @returns 16 uppercase hex digits.
 */
export function keyId(key: SigningKey): string {
  return Array.from(key.keyIdBytes).reverse().map((b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

/**
 * The public key in minisign's base64 form (the value for
 * `KREPIS_TRUSTED_KEY`).
 *
 * @param key The key.
 * @returns Base64 of `"Ed" ‖ key id ‖ public key`.
 */
export function publicKeyBase64(key: SigningKey): string {
  return Buffer.from([0x45, 0x64, ...key.keyIdBytes, ...key.publicKeyRaw]).toString("base64");
}

/**
 * The public key as a minisign `.pub` file.
 *
 * @param key The key.
 * @returns The file's text.
 */
export function publicKeyFile(key: SigningKey): string {
  return `untrusted comment: minisign public key ${keyId(key)}\n${publicKeyBase64(key)}\n`;
}

/**
 * Signs `message`, producing a `.minisig` file.
 *
 * @param key The signing key.
 * @param message The bytes to sign.
 * @param trustedComment Signed metadata, e.g. `timestamp:… file:manifest.json`.
 * @returns The signature file's text.
 */
export async function signMinisign(
  key: SigningKey,
  message: Uint8Array,
  trustedComment: string,
): Promise<string> {
  const sign = async (bytes: Uint8Array) =>
    new Uint8Array(
      await crypto.subtle.sign("Ed25519", key.keyPair.privateKey, bytes as Uint8Array<ArrayBuffer>),
    );
  const signature = await sign(message);
  const global = await sign(
    new Uint8Array([...signature, ...new TextEncoder().encode(trustedComment)]),
  );
  const sigLine = Buffer.from([0x45, 0x64, ...key.keyIdBytes, ...signature]).toString("base64");
  return `untrusted comment: signature from krepis release key ${
    keyId(key)
  }\n${sigLine}\ntrusted comment: ${trustedComment}\n${Buffer.from(global).toString("base64")}\n`;
}
