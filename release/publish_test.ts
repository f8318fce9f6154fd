/**
 * The publish step end to end: builds in dist/ → signed release on a host →
 * pinned checksums → JSR, in that order, with a failure at the host stopping
 * everything after it. Hosts: the GitHub stand-in (real octokit), a closed
 * port (no network), and a mirror directory that `krepis init` then installs
 * from (without the JSR step unless asked for).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveTarget, VERSION } from "../loader/mod.ts";
import { parseMinisignPublicKey, verifyMinisign } from "../loader/release.ts";
import type { Fragment } from "../matrix/fragment.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { writeDist } from "../tests/_dist.ts";
import { GitHubApi } from "./github_stand_in.ts";
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

/** Runs `deno task release publish <args>` in this repository with `env`. */
async function publishTask(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "release", "publish", ...args],
    cwd: REPO_ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** dist/ with this machine's build, a scratch copy of the loader, an output dir. */
async function workspace(): Promise<Workspace> {
  const root = await Deno.makeTempDir({ prefix: "krepis-publish-" });
  const dist = join(root, "dist");
  const fragment = await writeDist(dist);
  const loaderDir = join(root, "loader");
  await copyDir(join(REPO_ROOT, "loader"), loaderDir);
  return {
    dist,
    loaderDir,
    out: join(root, "out"),
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
  const pinnedBefore = await Deno.readTextFile(join(w.loaderDir, "_gen", "pinned.ts"));
  const options = {
    dist: w.dist,
    key: await generateSigningKey(),
    host: githubHost(api),
    targets: [host.triple],
    loaderDir: w.loaderDir,
    publishJsr: async (dir: string) => {
      steps.push(
        `jsr after pin: ${
          (await Deno.readTextFile(join(dir, "_gen", "pinned.ts"))).includes(
            w.fragment.target.sha256,
          )
        }`,
      );
    },
    log: (line: string) => steps.push(line.split(":")[0]),
  };
  try {
    api.failUpload = { from: 3, status: 500 };
    await assert.rejects(publish(options), /^Error: Cannot upload .*: GitHub answered 500/);
    assert.equal(
      await Deno.readTextFile(join(w.loaderDir, "_gen", "pinned.ts")),
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

/** The checks sha256sum and minisign make, in TypeScript: every listed hash and the signature hold. */
async function assertVerifiableMirror(out: string, key: SigningKey) {
  const dir = join(out, `v${VERSION}`);
  const sums = await checkSha256Sums(dir);
  assert.deepEqual(
    sums.ok.toSorted(),
    [host.file, `${host.file}.gz`, `${host.file}.zst`, "manifest.json"].toSorted(),
  );
  assert.deepEqual([sums.failed, sums.malformed], [[], []]);
  await verifyMinisign(
    await Deno.readFile(join(dir, "manifest.json")),
    await Deno.readTextFile(join(dir, "manifest.json.minisig")),
    [parseMinisignPublicKey(publicKeyBase64(key))],
    "manifest.json",
  );
}

/** Publishes the workspace's build to the mirror directory `w.out` in-process. */
async function publishToDir(w: Workspace, key: SigningKey): Promise<string> {
  await publish({
    dist: w.dist,
    key,
    host: { kind: "dir", path: w.out },
    targets: [host.triple],
    loaderDir: w.loaderDir,
    publishJsr: async () => {},
    log: () => {},
  });
  await Deno.writeTextFile(join(w.out, "key.pub"), publicKeyFile(key));
  return join(w.out, `v${VERSION}`);
}

Deno.test(
  skipIf("sha256sum --strict -c accepts the SHA256SUMS of a published mirror", NO_SHA256SUM),
  async () => {
    await using w = await workspace();
    const dir = await publishToDir(w, await generateSigningKey());
    const check = await new Deno.Command("sha256sum", {
      args: ["--strict", "-c", "SHA256SUMS"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(check.success, new TextDecoder().decode(check.stderr));
  },
);

Deno.test(
  skipIf("minisign -V accepts the manifest signature of a published mirror", NO_MINISIGN),
  async () => {
    await using w = await workspace();
    const dir = await publishToDir(w, await generateSigningKey());
    const check = await new Deno.Command("minisign", {
      args: ["-Vm", "manifest.json", "-p", join(w.out, "key.pub")],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(check.success, new TextDecoder().decode(check.stderr));
  },
);

Deno.test("deno task release publish --to-dir: a mirror whose checksums and signature hold, that krepis init accepts, without JSR", async () => {
  await using w = await workspace();
  const key = await generateSigningKey();
  const run = await publishTask(
    ["--dist", w.dist, "--targets", host.triple, "--to-dir", w.out, "--loader-dir", w.loaderDir],
    { KREPIS_SIGNING_KEY: await exportSigningKey(key) },
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /pin: wrote the checksums of 1 target\(s\)/);
  assert.match(
    run.stdout,
    /^jsr: skipped \(publishing to a mirror directory; pass --jsr to publish the loader too\)$/m,
  );
  assert.doesNotMatch(run.stdout + run.stderr, /JSR publish step finished/);
  assert.match(
    await Deno.readTextFile(join(w.loaderDir, "_gen", "pinned.ts")),
    new RegExp(w.fragment.target.sha256),
  );
  await assertVerifiableMirror(w.out, key);
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

Deno.test("deno task release publish --to-dir --jsr-dry-run runs the JSR step after the pins, as a rehearsal", async () => {
  await using w = await workspace();
  const run = await publishTask(
    [
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
    { KREPIS_SIGNING_KEY: await exportSigningKey(await generateSigningKey()) },
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const pinned = run.stdout.search(/^pin: wrote the checksums/m);
  const jsr = run.stdout.search(/^jsr: the JSR publish step finished$/m);
  assert.ok(pinned >= 0 && jsr > pinned, `pin, then JSR:\n${run.stdout}`);
  assert.doesNotMatch(run.stdout, /jsr: skipped/);
});

Deno.test("deno task release publish to GitHub with no network says it cannot reach the API, and pins nothing", async () => {
  await using w = await workspace();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  const pinnedBefore = await Deno.readTextFile(join(w.loaderDir, "_gen", "pinned.ts"));
  const run = await publishTask(
    [
      "--dist",
      w.dist,
      "--targets",
      host.triple,
      "--loader-dir",
      w.loaderDir,
      "--repository",
      "krepis/krepis",
      "--api-url",
      closed,
    ],
    {
      KREPIS_SIGNING_KEY: await exportSigningKey(await generateSigningKey()),
      GITHUB_TOKEN: "t",
      NO_PROXY: "127.0.0.1",
    },
  );
  assert.equal(run.code, 1, run.stdout);
  assert.match(
    run.stderr,
    new RegExp(
      `^error: Cannot reach the GitHub API at ${closed} to get the release for v${
        VERSION.replaceAll(".", "\\.")
      }: \\S.*\nHint: check the network, a proxy \\(HTTPS_PROXY\\), or --api-url\n$`,
    ),
  );
  assert.doesNotMatch(run.stderr, /GitHub answered|GITHUB_TOKEN/);
  assert.equal(await Deno.readTextFile(join(w.loaderDir, "_gen", "pinned.ts")), pinnedBefore);
});

Deno.test("deno task release publish refuses a missing target, a missing or malformed signing key, and a missing --dist or dist folder", async () => {
  await using w = await workspace();
  const run = (env: Record<string, string>, args?: string[]) =>
    publishTask(args ?? ["--dist", w.dist, "--to-dir", w.out, "--loader-dir", w.loaderDir], {
      KREPIS_SIGNING_KEY: "",
      ...env,
    });
  const noKey = await run({});
  assert.equal(noKey.code, 1);
  assert.match(
    noKey.stderr,
    /Cannot sign the release: KREPIS_SIGNING_KEY is not set\nHint: set it to the secret `deno task release keygen` printed/,
  );
  const badKey = await run({ KREPIS_SIGNING_KEY: "a public key, or half of the line" });
  assert.equal(badKey.code, 1);
  assert.match(
    badKey.stderr,
    /^error: Cannot read the signing key: it is not a Krepis Ed25519 signing key\nHint: set KREPIS_SIGNING_KEY to the secret `deno task release keygen` printed \(the whole line\)\n$/,
  );
  const missing = await run({
    KREPIS_SIGNING_KEY: await exportSigningKey(await generateSigningKey()),
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot plan the release: no build for /);
  const noDist = await run({}, ["--to-dir", w.out]);
  assert.equal(noDist.code, 2);
  assert.match(
    noDist.stderr,
    /^error: Cannot run deno task release publish: --dist <dir> is needed\n/,
  );
  const key = await exportSigningKey(await generateSigningKey());
  const gone = await run({ KREPIS_SIGNING_KEY: key }, [
    "--dist",
    join(w.dist, "nothing-here"),
    "--to-dir",
    w.out,
    "--loader-dir",
    w.loaderDir,
  ]);
  assert.equal(gone.code, 1);
  assert.match(
    gone.stderr,
    /^error: Cannot read the builds in .*nothing-here: no such directory\nHint: /,
  );
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
    const config = JSON.parse(await Deno.readTextFile(join(w.loaderDir, "deno.json")));
    await Deno.writeTextFile(
      join(w.loaderDir, "deno.json"),
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
