/**
 * Builds real kernel variants from a patched copy of the workspace and checks
 * that the loader refuses each: one with another ABI major, one with the same
 * ABI number but another exported surface (so another fingerprint); and
 * one without the cargo features a target may leave out.
 */

import assert from "node:assert/strict";
import {
  AbiMismatchError,
  JournalError,
  KernelError,
  load,
  LOADER_ABI,
  ServerError,
} from "../loader/mod.ts";
import { freePort } from "./_net.ts";
import { buildVariant, DEFAULT_FEATURES, SURFACE_PATCH } from "./_variant.ts";

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

Deno.test("load() refuses a real kernel with an older ABI minor than the loader needs", async () => {
  assert.ok(LOADER_ABI.minor >= 1, "this loader needs ABI minor 1 (views, journal)");
  const path = await buildVariant("krepis-kernel-abi-older", (source) =>
    source.replace(
      `KREPIS_ABI_MINOR: u16 = ${LOADER_ABI.minor};`,
      `KREPIS_ABI_MINOR: u16 = ${LOADER_ABI.minor - 1};`,
    ));
  await assert.rejects(() => load({ path }), (error: unknown) => {
    assert.ok(error instanceof AbiMismatchError);
    assert.equal(error.found?.minor, LOADER_ABI.minor - 1);
    assert.match(
      error.message,
      new RegExp(`: its ABI minor ${LOADER_ABI.minor - 1} is older than ${LOADER_ABI.minor};`),
    );
    return true;
  });
});

Deno.test("a real kernel built without the journal and the server says so instead of failing", async () => {
  const path = await buildVariant(
    "krepis-kernel-no-journal",
    // Same ABI, same surface: the journal and the server are cargo
    // features, not exports (a target row may leave them out).
    (source) => `${source}\n// built without the journal and server features\n`,
    undefined,
    (toml) => {
      const patched = toml.replace(DEFAULT_FEATURES, "default = []");
      assert.notEqual(patched, toml, "the kernel's default features changed: update this test");
      return patched;
    },
  );
  using kernel = await load({ path });
  assert.deepEqual(kernel.buildInfo().capabilities, ["view"]);
  const root = await Deno.makeTempDir({ prefix: "krepis-no-journal-" });
  assert.throws(() => kernel.journal.open(root), (error: unknown) => {
    assert.ok(error instanceof JournalError);
    assert.equal(error.reason, "UNSUPPORTED");
    assert.match(
      error.message,
      new RegExp(
        `^Cannot open a journal: not available on ${kernel.buildInfo().target} \\(this kernel lacks the "journal" capability; it has: view\\)`,
      ),
    );
    assert.ok(error.cause instanceof KernelError);
    return true;
  });
  assert.deepEqual([...Deno.readDirSync(root)], [], "nothing was created");
  // The kernel itself refuses too, for callers that skip the loader's check.
  // krepis.v1.Request { journal_open: {} }
  assert.throws(() => kernel.callRaw(new Uint8Array([0x2a, 0x00])), (error: unknown) => {
    assert.ok(error instanceof KernelError);
    assert.equal(error.codeName, "UNSUPPORTED");
    assert.match(
      error.message,
      /^Cannot use the journal: not available on .* \(this kernel was built without it; capabilities: view\)/,
    );
    return true;
  });
  await Deno.remove(root);

  // The server engine: refused before any socket is opened.
  const port = freePort();
  assert.throws(
    () => kernel.server.start({ listen: `127.0.0.1:${port}`, upstreams: ["127.0.0.1:9"] }),
    (error: unknown) => {
      assert.ok(error instanceof ServerError);
      assert.equal(error.reason, "UNSUPPORTED");
      assert.match(
        error.message,
        new RegExp(`^Cannot start a server: not available on ${kernel.buildInfo().target} `),
      );
      return true;
    },
  );
  Deno.listen({ hostname: "127.0.0.1", port }).close(); // the port was never bound
  // krepis.v1.Request { server_start: {} }
  assert.throws(() => kernel.callRaw(new Uint8Array([0x72, 0x00])), (error: unknown) => {
    assert.ok(error instanceof KernelError);
    assert.equal(error.codeName, "UNSUPPORTED");
    assert.match(error.message, /^Cannot use the server engine: not available on /);
    return true;
  });
});
