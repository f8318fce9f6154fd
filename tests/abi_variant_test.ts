/**
 * Builds real kernel variants from a patched copy of the workspace and checks
 * that the loader refuses each: one with another ABI major, one with the same
 * ABI number but another exported surface (so another fingerprint).
 */

import assert from "node:assert/strict";
import { AbiMismatchError, load, LOADER_ABI } from "../loader/mod.ts";
import { buildVariant, SURFACE_PATCH } from "./_variant.ts";

Deno.test("load() refuses a real kernel built with another ABI major", async () => {
  const path = await buildVariant("krepis-kernel-abi-major", (source) =>
    source.replace(
      `KREPIS_ABI_MAJOR: u16 = ${LOADER_ABI.major};`,
      `KREPIS_ABI_MAJOR: u16 = ${LOADER_ABI.major + 1};`,
    ));
  await assert.rejects(() => load({ path }), (error: unknown) => {
    assert.ok(error instanceof AbiMismatchError);
    assert.equal(error.found?.major, LOADER_ABI.major + 1);
    assert.match(
      error.message,
      new RegExp(
        `^Cannot load kernel .*: its ABI major ${LOADER_ABI.major + 1} is not ${LOADER_ABI.major};`,
      ),
    );
    assert.match(error.message, /\nHint: /);
    return true;
  });
});

Deno.test("load() refuses a real kernel with the same ABI number but another surface", async () => {
  const path = await buildVariant("krepis-kernel-abi-surface", SURFACE_PATCH);
  await assert.rejects(() => load({ path }), (error: unknown) => {
    assert.ok(error instanceof AbiMismatchError);
    assert.deepEqual([error.found?.major, error.found?.minor], [
      LOADER_ABI.major,
      LOADER_ABI.minor,
    ]);
    assert.notEqual(error.found?.fingerprint, LOADER_ABI.fingerprint);
    assert.match(error.message, /: its ABI fingerprint [0-9a-f]{64} is not [0-9a-f]{64};/);
    return true;
  });
});
