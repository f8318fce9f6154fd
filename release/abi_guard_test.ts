/**
 * The ABI guard on real builds: abidiff (abigail-tools) on the kernel and a
 * variant with an extra export, and the header comparison's rules.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { kernelPath } from "../tests/_kernel.ts";
import { buildVariant, SURFACE_PATCH } from "../tests/_variant.ts";
import { checkAbidiff, diffAbi, guardAbi, runAbidiff } from "./abi_guard.ts";
import { parseHeader } from "../lib/header.ts";
import { skipIf, without } from "../tests/_tools.ts";
import { LOADER_ABI } from "../loader/mod.ts";

// The committed header's minor, and the next one an addition would announce.
const MINOR = LOADER_ABI.minor;

const header = await Deno.readTextFile(
  join(REPO_ROOT, "crates", "krepis-kernel", "include", "krepis.h"),
);
const proto = await Deno.readTextFile(join(REPO_ROOT, "proto", "krepis.proto"));

Deno.test(
  skipIf(
    "abidiff finds the removed export, and the guard demands a major bump for it",
    without("abidiff", "abidiff (libabigail) is not installed; it reads Linux ELF libraries only"),
  ),
  async () => {
    const current = await kernelPath();
    const withExtra = await buildVariant("krepis-kernel-abi-surface", SURFACE_PATCH);
    const same = await runAbidiff(current, current);
    assert.ok(same.ran, "abidiff is installed (deno task setup)");
    assert.deepEqual([same.changed, same.incompatible], [false, false]);
    const removed = await runAbidiff(withExtra, current);
    assert.deepEqual([removed.changed, removed.incompatible], [true, true]);
    assert.match(removed.report, /krepis_variant_extra/);
    assert.throws(
      () => checkAbidiff(removed, { major: 1, minor: 0 }, { major: 1, minor: 1 }),
      /incompatible ABI change .*\n[\s\S]*krepis_variant_extra[\s\S]*\nHint: bump KREPIS_ABI_MAJOR/,
    );
    checkAbidiff(removed, { major: 1, minor: 0 }, { major: 2, minor: 0 });
    const added = await runAbidiff(current, withExtra);
    assert.deepEqual([added.changed, added.incompatible], [true, false]);
    assert.throws(
      () => checkAbidiff(added, { major: 1, minor: 0 }, { major: 1, minor: 0 }),
      /Hint: bump KREPIS_ABI_MINOR/,
    );
    checkAbidiff(added, { major: 1, minor: 0 }, { major: 1, minor: 1 });
  },
);

Deno.test("guardAbi() accepts an unchanged surface and an announced addition", async () => {
  assert.deepEqual(await guardAbi({ header, proto }, { header, proto }), {
    added: [],
    removed: [],
    changed: [],
  });
  const grown = header.replace(
    "const char *krepis_last_error(void);",
    "const char *krepis_last_error(void);\n\nuint32_t krepis_extra(void);",
  )
    .replace(`#define KREPIS_ABI_MINOR ${MINOR}`, `#define KREPIS_ABI_MINOR ${MINOR + 1}`);
  assert.deepEqual((await guardAbi({ header, proto }, { header: grown, proto })).added, [
    "krepis_extra",
  ]);
  const renumbered = proto.replace("bytes payload = 1;", "bytes payload = 9;");
  await assert.rejects(
    guardAbi({ header, proto }, { header, proto: renumbered }),
    /the fingerprint changed \(types or schema\)/,
  );
  assert.deepEqual(
    diffAbi(await parseHeader(header, proto), await parseHeader(grown, proto)).added,
    ["krepis_extra"],
  );
});
