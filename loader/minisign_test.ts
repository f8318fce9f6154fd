/** minisign verification on real signatures, made by the release step's signer (WebCrypto Ed25519). */

import assert from "node:assert/strict";
import { IntegrityError } from "./errors.ts";
import { parseMinisignPublicKey, verifyMinisign } from "./minisign.ts";
import {
  generateSigningKey,
  keyId,
  publicKeyBase64,
  publicKeyFile,
  signMinisign,
} from "../release/minisign_sign.ts";

const bytes = new TextEncoder().encode("the signed file\n");

Deno.test("verifyMinisign accepts a trusted key's signature, in the options form and the positional one", async () => {
  const key = await generateSigningKey();
  const signature = await signMinisign(key, bytes, "file:x.json");
  const keys = [parseMinisignPublicKey(publicKeyBase64(key))];
  const byOptions = await verifyMinisign(bytes, signature, { keys, what: "x.json" });
  assert.deepEqual(byOptions, { keyId: keyId(key), trustedComment: "file:x.json" });
  assert.deepEqual(await verifyMinisign(bytes, signature, keys, "x.json"), byOptions);
});

Deno.test("verifyMinisign refuses another key, changed bytes, a changed trusted comment and garbage, naming the file", async () => {
  const key = await generateSigningKey();
  const other = await generateSigningKey();
  const signature = await signMinisign(key, bytes, "file:x.json");
  const keys = [parseMinisignPublicKey(publicKeyBase64(key))];
  const refused = async (
    message: Uint8Array,
    text: string,
    trusted: typeof keys,
    pattern: RegExp,
  ) => {
    await assert.rejects(verifyMinisign(message, text, { keys: trusted, what: "x.json" }), (e) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.match(e.message, /^Cannot verify the signature of x\.json: /);
      assert.match(e.message, pattern);
      assert.ok(e.hint, "a hint is given");
      return true;
    });
  };
  await refused(bytes, signature, [parseMinisignPublicKey(publicKeyBase64(other))], /not trusted/);
  await refused(bytes, signature, [], /no keys are trusted/);
  await refused(new TextEncoder().encode("the signed file!\n"), signature, keys, /./);
  const lines = signature.split("\n");
  lines[2] = "trusted comment: file:other.json";
  await refused(bytes, lines.join("\n"), keys, /./);
  await refused(bytes, "garbage", keys, /not a minisign signature file/);
});

Deno.test("parseMinisignPublicKey reads the key line or a whole .pub file, and refuses anything else", async () => {
  const key = await generateSigningKey();
  const fromLine = parseMinisignPublicKey(publicKeyBase64(key));
  assert.equal(fromLine.keyId, keyId(key));
  assert.deepEqual(parseMinisignPublicKey(publicKeyFile(key)), fromLine);
  for (const text of ["", "RW", "not a key", "untrusted comment: x\n"]) {
    assert.throws(() => parseMinisignPublicKey(text), IntegrityError, JSON.stringify(text));
  }
});
