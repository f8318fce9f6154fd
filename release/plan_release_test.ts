/**
 * Merging per-target build fragments into a signed release directory, and
 * what makes it refuse. The output is checked with the real tools and
 * installed from loopback with `krepis init`.
 */

import assert from "node:assert/strict";
import { resolveTarget } from "../loader/mod.ts";
import { loadTargetTable } from "../matrix/targets.ts";
import { writeDist } from "../tests/_dist.ts";
import { runCli } from "../tests/_cli.ts";
import { generateSigningKey, publicKeyBase64, publicKeyFile } from "./minisign_sign.ts";
import { planRelease, readFragments } from "./plan_release.ts";
import { ReleaseHost } from "./serve_dir.ts";
import { writeSignedDir } from "./signed_dir.ts";

const rows = await loadTargetTable();
const host = resolveTarget();

/** A dist/ with this machine's build as `deno task build` lays it out. */
async function dist(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "krepis-dist-" });
  await writeDist(root);
  return root;
}

async function run(cmd: string, args: string[], cwd: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test("planRelease() refuses to publish while a target in the table has no build", async () => {
  const root = await dist();
  try {
    await assert.rejects(planRelease(await readFragments(root), rows), (e: Error) => {
      assert.match(
        e.message,
        /^Cannot plan the release: no build for .*aarch64-apple-darwin.* \(found x86_64-unknown-linux-gnu\)\nHint: .*--targets/,
      );
      return true;
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("planRelease() refuses fragments that disagree, files that changed, and unknown targets", async () => {
  const root = await dist();
  try {
    const dir = `${root}/kernel-${host.triple}`;
    await Deno.mkdir(`${root}/other`);
    const other = JSON.parse(await Deno.readTextFile(`${dir}/fragment.json`));
    other.version = "9.9.9";
    other.target.triple = "aarch64-apple-darwin";
    await Deno.writeTextFile(`${root}/other/fragment.json`, JSON.stringify(other));
    await assert.rejects(
      planRelease(await readFragments(root), rows, [host.triple, "aarch64-apple-darwin"]),
      /the builds disagree/,
    );
    await assert.rejects(
      planRelease(await readFragments(root), rows, ["riscv64gc-unknown-linux-gnu"]),
      /is not in matrix\/targets.json/,
    );
    const bytes = await Deno.readFile(`${dir}/${host.file}.gz`);
    bytes[20] ^= 1;
    await Deno.writeFile(`${dir}/${host.file}.gz`, bytes);
    await assert.rejects(
      planRelease(await readFragments(root), rows, [host.triple]),
      /the file changed after the build/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a release of the targets given is signed, checked by sha256sum and minisign, and installable", async () => {
  const root = await dist();
  const out = await Deno.makeTempDir({ prefix: "krepis-mirror-" });
  const cache = await Deno.makeTempDir({ prefix: "krepis-cache-" });
  const key = await generateSigningKey();
  try {
    const plan = await planRelease(await readFragments(root), rows, [host.triple]);
    assert.deepEqual(plan.manifest.targets.map((t) => t.triple), [host.triple]);
    const dir = await writeSignedDir(out, plan.manifest, plan.files, key);
    await Deno.writeTextFile(`${out}/key.pub`, publicKeyFile(key));
    assert.equal((await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], dir)).code, 0);
    assert.equal(
      (await run("minisign", ["-Vm", "manifest.json", "-p", `${out}/key.pub`], dir)).code,
      0,
    );
    const server = ReleaseHost.start(out);
    try {
      const env = {
        KREPIS_MIRROR: server.url,
        KREPIS_CACHE_DIR: cache,
        KREPIS_TRUSTED_KEY: publicKeyBase64(key),
      };
      const init = await runCli(["init"], env);
      assert.equal(init.code, 0, init.stderr);
      const other = await runCli(["init", "--target", "aarch64-apple-darwin"], env);
      assert.equal(other.code, 3, "a target left out of the release is refused clearly");
      assert.match(other.stderr, /does not include it/);
    } finally {
      await server.close();
    }
  } finally {
    for (const d of [root, out, cache]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("planRelease() refuses two builds of one target and an empty target list", async () => {
  const root = await dist();
  try {
    const cp = await new Deno.Command("cp", {
      args: ["-R", `${root}/kernel-${host.triple}`, `${root}/${host.triple}`],
    }).output();
    assert.ok(cp.success);
    await assert.rejects(
      planRelease(await readFragments(root), rows, [host.triple]),
      /: two builds of .* \(.* and .*\)\nHint: remove the stale one/,
    );
    await assert.rejects(
      planRelease([], rows, []),
      /^Error: Cannot plan the release: no targets were named/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
