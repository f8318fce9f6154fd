/**
 * Generated files must match what their sources render today: the loader's
 * symbol table and fingerprint (from krepis.h), the protobuf codecs (from
 * krepis.proto and conformance.proto) and the target table. The header itself is checked by `cargo test`
 * (crates/krepis-kernel/tests/header.rs).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { cargoBuild, REPO_ROOT } from "../lib/cargo_build.ts";
import { hostFeatures } from "../matrix/targets.ts";
import { GENERATED, renderAll } from "../tools/gen.ts";
import { abiFingerprint, parseHeader } from "../lib/header.ts";
import { renderFfiModule } from "../tools/gen_ffi.ts";

Deno.test("every generated file (FFI table, protobuf codecs, target table) is not stale", async () => {
  const { outDir } = await cargoBuild({ verbose: false, features: await hostFeatures() });
  const files = await renderAll(await Deno.readTextFile(join(outDir, "krepis.h")));
  for (const [path, expected] of files) {
    const committed = await Deno.readTextFile(join(REPO_ROOT, path));
    assert.ok(
      committed === expected,
      `${path} is stale: run \`deno task gen\` and commit the result`,
    );
  }
});

const proto = await Deno.readTextFile(join(REPO_ROOT, GENERATED.proto));

Deno.test("the symbol table follows the header: an added export appears with its Deno types", async () => {
  const header = await Deno.readTextFile(join(REPO_ROOT, GENERATED.header));
  const changed = header.replace(
    "const char *krepis_last_error(void);",
    "const char *krepis_last_error(void);\n\nint64_t krepis_extra(const uint8_t *data, size_t len);",
  );
  assert.notEqual(changed, header);
  const abi = await parseHeader(changed, proto);
  assert.deepEqual(abi.functions.find((f) => f.name === "krepis_extra"), {
    name: "krepis_extra",
    returns: "int64_t",
    params: [{ type: "const uint8_t *", name: "data" }, { type: "size_t", name: "len" }],
  });
  assert.match(
    await renderFfiModule(changed, proto),
    /krepis_extra: \{ parameters: \["buffer", "usize"\], result: "i64" \}/,
  );
});

Deno.test("the fingerprint ignores comments and defines but not signatures", async () => {
  const header = await Deno.readTextFile(join(REPO_ROOT, GENERATED.header));
  const base = await abiFingerprint(header, proto);
  const recommented = header.replaceAll("// ", "//  changed: ").replace(
    /#define KREPIS_ABI_MINOR \d+/,
    "#define KREPIS_ABI_MINOR 99",
  );
  assert.notEqual(recommented, header);
  assert.equal(await abiFingerprint(recommented, proto), base);
  const resigned = header.replace(
    "uint32_t krepis_abi_version(void);",
    "uint64_t krepis_abi_version(void);",
  );
  assert.notEqual(resigned, header);
  assert.notEqual(await abiFingerprint(resigned, proto), base);
});

Deno.test("the fingerprint covers the control-plane schema: a renumbered field changes it", async () => {
  const header = await Deno.readTextFile(join(REPO_ROOT, GENERATED.header));
  const renumbered = proto.replace("bytes payload = 1;", "bytes payload = 7;");
  assert.notEqual(renumbered, proto);
  assert.notEqual(await abiFingerprint(header, renumbered), await abiFingerprint(header, proto));
  const recommented = proto.replaceAll("// ", "// reworded: ");
  assert.equal(await abiFingerprint(header, recommented), await abiFingerprint(header, proto));
});
