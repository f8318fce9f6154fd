/**
 * The publish step end to end: builds in dist/ → signed release on a host →
 * pinned checksums → JSR, in that order, with a failure at the host stopping
 * everything after it. Hosts: the GitHub stand-in (real octokit) and a
 * mirror directory that `krepis init` then installs from.
 */

import assert from "node:assert/strict";
import { resolveTarget, VERSION } from "../loader/mod.ts";
import type { Fragment } from "../matrix/build.ts";
import { REPO_ROOT } from "../tools/cargo_build.ts";
import { writeDist } from "../tests/_dist.ts";
import { GitHubApi } from "../tests/_github_api.ts";
import { runCli } from "../tests/_cli.ts";
import { generateSigningKey, publicKeyBase64, publicKeyFile } from "./minisign_sign.ts";
import { publish } from "./publish.ts";
import { ReleaseHost } from "./serve_dir.ts";
import { exportSigningKey } from "./signing_key.ts";

const host = resolveTarget();

interface Workspace extends AsyncDisposable {
  dist: string;
  loaderDir: string;
  out: string;
  fragment: Fragment;
}

/** The GitHub host on the stand-in: no retries or pacing, so tests run fast. */
function githubHost(api: GitHubApi) {
  return {
    kind: "github" as const,
    repository: "krepis/krepis",
    token: "t",
    apiUrl: api.url,
    retries: 0,
    throttle: false,
  };
}

/** dist/ with this machine's build, a scratch copy of the loader, an output dir. */
async function workspace(): Promise<Workspace> {
  const root = await Deno.makeTempDir({ prefix: "krepis-publish-" });
  const dist = `${root}/dist`;
  const fragment = await writeDist(dist);
  const loaderDir = `${root}/loader`;
  const cp = await new Deno.Command("cp", { args: ["-R", `${REPO_ROOT}/loader`, loaderDir] })
    .output();
  assert.ok(cp.success);
  return {
    dist,
    loaderDir,
    out: `${root}/out`,
    fragment,
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("publish(): GitHub host, then pinned checksums, then JSR; a failed upload stops both, a re-run completes", async () => {
  await using w = await workspace();
  const api = new GitHubApi();
  const steps: string[] = [];
  const pinnedBefore = await Deno.readTextFile(`${w.loaderDir}/_pinned.ts`);
  const options = {
    dist: w.dist,
    key: await generateSigningKey(),
    host: githubHost(api),
    targets: [host.triple],
    loaderDir: w.loaderDir,
    publishJsr: async (dir: string) => {
      steps.push(
        `jsr after pin: ${
          (await Deno.readTextFile(`${dir}/_pinned.ts`)).includes(w.fragment.target.sha256)
        }`,
      );
    },
    log: (line: string) => steps.push(line.split(":")[0]),
  };
  try {
    api.failUpload = { from: 3, status: 500 };
    await assert.rejects(publish(options), /^Error: Cannot upload .*: GitHub answered 500/);
    assert.equal(
      await Deno.readTextFile(`${w.loaderDir}/_pinned.ts`),
      pinnedBefore,
      "nothing pinned after a failed upload",
    );
    assert.ok(!steps.some((s) => s.startsWith("jsr")), "JSR never ran");
    api.failUpload = null;
    steps.length = 0;
    await publish(options);
    const names = api.releases.get(`v${VERSION}`)!.assets.map((a) => a.name).sort();
    assert.deepEqual(
      names,
      [
        host.file,
        `${host.file}.gz`,
        `${host.file}.zst`,
        "SHA256SUMS",
        "manifest.json",
        "manifest.json.minisig",
      ].sort(),
    );
    assert.equal(new Set(names).size, names.length, "no duplicates");
    assert.deepEqual(steps.filter((s) => s === "plan" || s === "pin" || s.startsWith("jsr")), [
      "plan",
      "pin",
      "jsr after pin: true",
      "jsr",
    ]);
    assert.deepEqual(api.violations, []);
  } finally {
    await api.close();
  }
});

Deno.test("deno task release publish --to-dir: a mirror that minisign, sha256sum and krepis init accept", async () => {
  await using w = await workspace();
  const key = await generateSigningKey();
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "release",
      "publish",
      "--dist",
      w.dist,
      "--targets",
      host.triple,
      "--to-dir",
      w.out,
      "--loader-dir",
      w.loaderDir,
      "--jsr-dry-run",
    ],
    cwd: REPO_ROOT,
    env: { KREPIS_SIGNING_KEY: await exportSigningKey(key) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
  assert.ok(run.success, text);
  assert.match(text, /pin: wrote the checksums of 1 target\(s\)/);
  assert.match(
    await Deno.readTextFile(`${w.loaderDir}/_pinned.ts`),
    new RegExp(w.fragment.target.sha256),
  );
  const dir = `${w.out}/v${VERSION}`;
  await Deno.writeTextFile(`${w.out}/key.pub`, publicKeyFile(key));
  const check = async (cmd: string, args: string[]) =>
    (await new Deno.Command(cmd, { args, cwd: dir, stdout: "null", stderr: "null" }).output())
      .success;
  assert.ok(await check("sha256sum", ["--strict", "-c", "SHA256SUMS"]));
  assert.ok(await check("minisign", ["-Vm", "manifest.json", "-p", `${w.out}/key.pub`]));
  const server = ReleaseHost.start(w.out);
  const cache = await Deno.makeTempDir();
  try {
    const init = await runCli(["init"], {
      KREPIS_MIRROR: server.url,
      KREPIS_CACHE_DIR: cache,
      KREPIS_TRUSTED_KEY: publicKeyBase64(key),
    });
    assert.equal(init.code, 0, init.stderr);
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("deno task release publish refuses a missing target, and a missing signing key", async () => {
  await using w = await workspace();
  const run = async (env: Record<string, string>, extra: string[] = []) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "release",
        "publish",
        "--dist",
        w.dist,
        "--to-dir",
        w.out,
        "--loader-dir",
        w.loaderDir,
        "--jsr-dry-run",
        ...extra,
      ],
      cwd: REPO_ROOT,
      env: { KREPIS_SIGNING_KEY: "", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const noKey = await run({});
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /Cannot sign the release: KREPIS_SIGNING_KEY is not set\nHint: /);
  const missing = await run({
    KREPIS_SIGNING_KEY: await exportSigningKey(await generateSigningKey()),
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot plan the release: no build for /);
  assert.ok(!(await Deno.stat(w.out).then(() => true, () => false)), "nothing was published");
});

Deno.test("publish() refuses builds whose version is not the loader's, and re-publishing uploads nothing", async () => {
  await using w = await workspace();
  const api = new GitHubApi();
  try {
    const options = {
      dist: w.dist,
      key: await generateSigningKey(),
      host: githubHost(api),
      targets: [host.triple],
      loaderDir: w.loaderDir,
      publishJsr: async () => {},
      log: () => {},
    };
    await publish(options);
    const uploads = api.uploads;
    await publish(options); // same key, same builds: the signature bytes are the same too
    assert.equal(api.uploads, uploads, "a second publish replaces nothing");
    const config = JSON.parse(await Deno.readTextFile(`${w.loaderDir}/deno.json`));
    await Deno.writeTextFile(
      `${w.loaderDir}/deno.json`,
      JSON.stringify({ ...config, version: "9.9.9" }),
    );
    await assert.rejects(
      publish(options),
      /^Error: Cannot publish: the builds are .* but .*deno\.json is 9\.9\.9/,
    );
  } finally {
    await api.close();
  }
});
