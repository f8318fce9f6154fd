import assert from "node:assert/strict";
import { AbiMismatchError, IntegrityError } from "../errors.ts";
import { LOADER_ABI } from "../abi.ts";
import { parseMinisignPublicKey } from "../minisign.ts";
import { DEFAULT_MIRROR, krepisMirror, refuseAbi, trustedKeys } from "./krepis_release.ts";
import { generateSigningKey, publicKeyBase64, publicKeyFile } from "../../release/minisign_sign.ts";

const VERSION = "1.2.3";
const hex = (c: string) => c.repeat(64);

/** Runs `body` with KREPIS_TRUSTED_KEY set to `value` (or unset), then restores it. */
async function withTrustedKeyEnv<T>(value: string | undefined, body: () => T | Promise<T>) {
  const before = Deno.env.get("KREPIS_TRUSTED_KEY");
  if (value === undefined) Deno.env.delete("KREPIS_TRUSTED_KEY");
  else Deno.env.set("KREPIS_TRUSTED_KEY", value);
  try {
    return await body();
  } finally {
    if (before === undefined) Deno.env.delete("KREPIS_TRUSTED_KEY");
    else Deno.env.set("KREPIS_TRUSTED_KEY", before);
  }
}

Deno.test("trustedKeys: KREPIS_TRUSTED_KEY joins the project's keys unless a list is given", async () => {
  const fromEnv = await generateSigningKey();
  const given = await generateSigningKey();
  await withTrustedKeyEnv(publicKeyBase64(fromEnv), () => {
    const ids = (keys: { keyId: string }[]) => keys.map((k) => k.keyId);
    assert.ok(
      ids(trustedKeys(undefined)).includes(parseMinisignPublicKey(publicKeyBase64(fromEnv)).keyId),
    );
    // An explicit list is the whole list (besides the project's own keys).
    const explicit = ids(trustedKeys([publicKeyFile(given)]));
    assert.ok(explicit.includes(parseMinisignPublicKey(publicKeyBase64(given)).keyId));
    assert.ok(!explicit.includes(parseMinisignPublicKey(publicKeyBase64(fromEnv)).keyId));
  });
  await withTrustedKeyEnv("not a key", () => {
    assert.throws(() => trustedKeys(undefined), IntegrityError);
  });
});

Deno.test("refuseAbi: the loader's major with its minor or newer passes, anything else is AbiMismatchError", () => {
  const { major, minor, fingerprint } = LOADER_ABI;
  refuseAbi({ major, minor, fingerprint }, VERSION);
  refuseAbi({ major, minor: minor + 1, fingerprint: hex("f") }, VERSION);
  for (
    const abi of [{ major: major + 1, minor }, { major: major - 1, minor }, {
      major,
      minor: minor - 1,
    }]
  ) {
    if (abi.minor < 0) continue;
    assert.throws(() => refuseAbi({ ...abi, fingerprint }, VERSION), (e: Error) => {
      assert.ok(e instanceof AbiMismatchError);
      assert.match(e.message, new RegExp(`its ABI ${abi.major}\\.${abi.minor} does not fit`));
      assert.match(e.message, /\nHint: /);
      return true;
    });
  }
});

Deno.test("krepisMirror: the option, else KREPIS_MIRROR, else the project's releases", () => {
  const before = Deno.env.get("KREPIS_MIRROR");
  try {
    Deno.env.set("KREPIS_MIRROR", "https://mirror.example/krepis//");
    assert.equal(krepisMirror(undefined), "https://mirror.example/krepis//");
    assert.equal(krepisMirror("http://127.0.0.1:8/r/"), "http://127.0.0.1:8/r/");
    Deno.env.delete("KREPIS_MIRROR");
    assert.equal(krepisMirror(undefined), DEFAULT_MIRROR);
    assert.match(DEFAULT_MIRROR, /^https:\/\//);
  } finally {
    if (before === undefined) Deno.env.delete("KREPIS_MIRROR");
    else Deno.env.set("KREPIS_MIRROR", before);
  }
});
