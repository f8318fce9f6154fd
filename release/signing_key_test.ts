import assert from "node:assert/strict";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import { generateSigningKey, keyId, publicKeyBase64, signMinisign } from "./minisign_sign.ts";
import { exportSigningKey, importSigningKey } from "./signing_key.ts";

Deno.test("a signing key survives KREPIS_SIGNING_KEY text and still signs for its public key", async () => {
  const key = await generateSigningKey();
  const text = await exportSigningKey(key);
  const again = await importSigningKey(text);
  assert.equal(keyId(again), keyId(key));
  assert.deepEqual(again.publicKeyRaw, key.publicKeyRaw);
  const message = new TextEncoder().encode("manifest");
  const signature = await signMinisign(again, message, "file:manifest.json");
  const verified = await verifyMinisign(message, signature, [
    parseMinisignPublicKey(publicKeyBase64(key)),
  ], "m");
  assert.equal(verified.keyId, keyId(key));
});

Deno.test("importSigningKey() refuses text that is not a signing key", async () => {
  const key = await generateSigningKey();
  for (const bad of ["", "not base64!", publicKeyBase64(key)]) {
    await assert.rejects(
      importSigningKey(bad),
      /^Error: Cannot read the signing key: it is not a Krepis Ed25519 signing key\nHint: set KREPIS_SIGNING_KEY to the secret `deno task release keygen` printed \(the whole line\)$/,
    );
  }
});
