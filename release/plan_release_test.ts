/**
 * Merging per-target build fragments into a signed release directory, and
 * what makes it refuse. The output is checked in TypeScript everywhere, with
 * the real tools (sha256sum, minisign) where they are installed, and
 * installed from loopback with `krepis init`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveTarget } from "../loader/mod.ts";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import { loadTargetTable } from "../matrix/targets.ts";
import { writeDist } from "../tests/_dist.ts";
import { runCli } from "../tests/_cli.ts";
import { copyDir } from "../tests/_fs.ts";
import { checkSha256Sums } from "../tests/_sha256sums.ts";
import { NO_MINISIGN, NO_SHA256SUM } from "../tests/_release_tools.ts";
import { skipIf } from "../tests/_tools.ts";
import {
  generateSigningKey,
  publicKeyBase64,
  publicKeyFile,
  type SigningKey,
} from "./minisign_sign.ts";
import { readFragments } from "../matrix/fragment.ts";
import { planRelease } from "./plan_release.ts";
import { ReleaseHost } from "./serve_dir.ts";
import { writeSignedDir } from "./signed_dir.ts";

const rows = await loadTargetTable();
const host = resolveTarget();
/** A target of the table that is not this machine's. */
const other = rows.find((row) => row.triple !== host.triple)!.triple;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

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
        new RegExp(
          `^Cannot plan the release: no build for .*${escapeRegExp(other)}.* \\(found ${
            escapeRegExp(host.triple)
          }\\)\\nHint: .*--targets`,
        ),
      );
      assert.doesNotMatch(
        e.message,
        new RegExp(`no build for .*${escapeRegExp(host.triple)}.* \\(`),
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
    const dir = join(root, `kernel-${host.triple}`);
    await Deno.mkdir(join(root, "other"));
    const fragment = JSON.parse(await Deno.readTextFile(join(dir, "fragment.json")));
    fragment.version = "9.9.9";
    fragment.target.triple = other;
    await Deno.writeTextFile(join(root, "other", "fragment.json"), JSON.stringify(fragment));
    await assert.rejects(
      planRelease(await readFragments(root), rows, [host.triple, other]),
      /the builds disagree/,
    );
    await assert.rejects(
      planRelease(await readFragments(root), rows, ["riscv64gc-unknown-linux-gnu"]),
      /is not in matrix\/targets.json/,
    );
    const gz = join(dir, `${host.file}.gz`);
    const bytes = await Deno.readFile(gz);
    bytes[20] ^= 1;
    await Deno.writeFile(gz, bytes);
    await assert.rejects(
      planRelease(await readFragments(root), rows, [host.triple]),
      /the file changed after the build/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

interface SignedRelease extends AsyncDisposable {
  /** Mirror root: `<out>/v<version>/…` and `<out>/key.pub`. */
  out: string;
  /** `<out>/v<version>`. */
  dir: string;
  key: SigningKey;
}

/** A signed release of this machine's build, planned from a fresh dist/. */
async function signedRelease(): Promise<SignedRelease> {
  const root = await dist();
  const out = await Deno.makeTempDir({ prefix: "krepis-mirror-" });
  const key = await generateSigningKey();
  const dispose = async () => {
    for (const d of [root, out]) await Deno.remove(d, { recursive: true });
  };
  try {
    const plan = await planRelease(await readFragments(root), rows, [host.triple]);
    assert.deepEqual(plan.manifest.targets.map((t) => t.triple), [host.triple]);
    const dir = await writeSignedDir(out, plan.manifest, plan.files, key);
    await Deno.writeTextFile(join(out, "key.pub"), publicKeyFile(key));
    return { out, dir, key, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

Deno.test("a release of the targets given is signed, its checksums hold, and it is installable", async () => {
  await using release = await signedRelease();
  const sums = await checkSha256Sums(release.dir);
  assert.deepEqual(
    sums.ok.toSorted(),
    [
      host.file,
      `${host.file}.gz`,
      `${host.file}.zst`,
      "manifest.json",
    ].toSorted(),
  );
  assert.deepEqual([sums.failed, sums.malformed], [[], []]);
  await verifyMinisign(
    await Deno.readFile(join(release.dir, "manifest.json")),
    await Deno.readTextFile(join(release.dir, "manifest.json.minisig")),
    [parseMinisignPublicKey(await Deno.readTextFile(join(release.out, "key.pub")))],
    "manifest.json",
  );
  const cache = await Deno.makeTempDir({ prefix: "krepis-cache-" });
  const server = ReleaseHost.start(release.out);
  try {
    const env = {
      KREPIS_MIRROR: server.url,
      KREPIS_CACHE_DIR: cache,
      KREPIS_TRUSTED_KEY: publicKeyBase64(release.key),
    };
    const init = await runCli(["init"], env);
    assert.equal(init.code, 0, init.stderr);
    const left = await runCli(["init", "--target", other], env);
    assert.equal(left.code, 3, "a target left out of the release is refused clearly");
    assert.match(left.stderr, /does not include it/);
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test(
  skipIf("sha256sum --strict -c accepts the SHA256SUMS of a planned release", NO_SHA256SUM),
  async () => {
    await using release = await signedRelease();
    const check = await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], release.dir);
    assert.equal(check.code, 0, check.text);
  },
);

Deno.test(
  skipIf("minisign -V accepts the manifest signature of a planned release", NO_MINISIGN),
  async () => {
    await using release = await signedRelease();
    const check = await run(
      "minisign",
      ["-Vm", "manifest.json", "-p", join(release.out, "key.pub")],
      release.dir,
    );
    assert.equal(check.code, 0, check.text);
  },
);

Deno.test("planRelease() refuses two builds of one target and an empty target list", async () => {
  const root = await dist();
  try {
    await copyDir(join(root, `kernel-${host.triple}`), join(root, host.triple));
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
