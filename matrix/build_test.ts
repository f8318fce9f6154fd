/**
 * Here, for real: the host target is built with the tool the table names
 * (cargo-zigbuild with the glibc floor on Linux), passes every post-build
 * check, is packed into dist/<triple>/, and passes the smoke test.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { REPO_ROOT } from "../tools/cargo_build.ts";
import { cargoCommand } from "./build.ts";
import { runDeno } from "../tests/_cli.ts";
import { loadTargetTable, targetRow } from "./targets.ts";

const rows = await loadTargetTable();
const host = targetRow(rows, resolveTarget().triple);

function task(args: string[], env: Record<string, string> = {}) {
  return runDeno(["task", ...args], env);
}

Deno.test("cargoCommand() picks the table's tool, with the glibc floor for Linux gnu", () => {
  assert.deepEqual(cargoCommand(targetRow(rows, "aarch64-unknown-linux-gnu"), "release"), [
    "cargo",
    "zigbuild",
    "--locked",
    "-p",
    "krepis-kernel",
    "--release",
    "--target",
    "aarch64-unknown-linux-gnu.2.17",
  ]);
  assert.deepEqual(cargoCommand(targetRow(rows, "aarch64-pc-windows-msvc"), "dev"), [
    "cargo",
    "build",
    "--locked",
    "-p",
    "krepis-kernel",
    "--target",
    "aarch64-pc-windows-msvc",
  ]);
});

Deno.test(`deno task build builds ${host.triple} with ${host.tool}, checks it and writes dist/`, async () => {
  const build = await task(["build", "--target", host.triple, "--profile", "release"]);
  assert.equal(build.code, 0, build.stderr);
  assert.match(
    build.stdout,
    /format {7}elf, x86_64, shared library|format {7}\w+, \w+, shared library/,
  );
  assert.doesNotMatch(build.stdout, /FAIL/);
  const dir = `${REPO_ROOT}/dist/${host.triple}`;
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(
    names,
    [host.file, `${host.file}.gz`, `${host.file}.zst`, "fragment.json"].sort(),
  );
  const fragment = JSON.parse(await Deno.readTextFile(`${dir}/fragment.json`));
  assert.equal(fragment.version, VERSION);
  assert.deepEqual(fragment.abi, { ...LOADER_ABI });
  const library = await Deno.readFile(`${dir}/${host.file}`);
  assert.equal(fragment.target.size, library.length);
  assert.equal(fragment.target.sha256, createHash("sha256").update(library).digest("hex"));
  assert.equal(
    fragment.target.compressed.zstd.size,
    (await Deno.stat(`${dir}/${host.file}.zst`)).size,
  );

  const smoke = await task(["smoke", `${dir}/${host.file}`]);
  assert.equal(smoke.code, 0, smoke.stdout + smoke.stderr);
  assert.match(smoke.stdout, /smoke: \d+ passed, 0 failed\n$/);
  assert.match(smoke.stdout, /ok {3}every export called: 7 exports/);
});

Deno.test("deno task smoke fails on a library with another ABI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/k.c`,
      'unsigned krepis_abi_version(void) { return 9u << 16; }\nconst char *krepis_abi_fingerprint(void) { return "x"; }\n',
    );
    const cc = await new Deno.Command("cc", {
      args: ["-shared", "-fPIC", "-o", `${dir}/k.so`, `${dir}/k.c`],
    }).output();
    assert.ok(cc.success);
    const smoke = await task(["smoke", `${dir}/k.so`]);
    assert.equal(smoke.code, 1);
    assert.match(
      smoke.stdout,
      /^FAIL load\(\) with the ABI check: Cannot load kernel .*: its ABI major 9 is not 1;/m,
    );
    assert.match(smoke.stderr, /Cannot accept .*k\.so: load\(\) with the ABI check failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
