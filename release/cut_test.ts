/**
 * Cutting a release in a real git repository (a copy of this one) with a
 * bare repository as `origin`: the dry run prints the plan, runs no gate
 * unless asked, survives an unreachable origin and changes nothing;
 * preflight refuses a dirty tree, another branch, a failing gate and an
 * unannounced ABI change; `--execute` prints the plan, runs the gate, bumps
 * every version (Cargo.toml, Cargo.lock, each deno.json), checks the built kernel, commits, tags
 * with grouped notes, pushes and says what the tag starts and where.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { buildVariant, SURFACE_PATCH } from "../tests/_variant.ts";
import { skipIf, without } from "../tests/_tools.ts";
import { addToChangelog, CHANGELOG_HEADER, githubActionsUrl } from "./cut.ts";
import { LOADER_ABI } from "../loader/mod.ts";
import { generateSigningKey } from "./minisign_sign.ts";
import { exportSigningKey } from "./signing_key.ts";
import { ReleaseHost } from "./serve_dir.ts";

// The committed header's ABI, as the release step prints it.
const ABI = `${LOADER_ABI.major}\\.${LOADER_ABI.minor}`;
const NEXT_MINOR = `${LOADER_ABI.major}\\.${LOADER_ABI.minor + 1}`;

async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  assert.ok(out.success, `git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** Where the cut's builds go: shared by these tests (a cache cargo keeps correct). */
const CARGO_TARGET_DIR = join(REPO_ROOT, "target", "release-cut");

interface Repo extends AsyncDisposable {
  /** The temp dir holding the others. */
  root: string;
  dir: string;
  origin: string;
}

/** A copy of HEAD in a fresh repository with history, a v0.1.0 tag, and a bare origin. */
async function repo(): Promise<Repo> {
  const root = await Deno.makeTempDir({ prefix: "krepis-cut-" });
  const dir = join(root, "work");
  const origin = join(root, "origin.git");
  // HEAD's files, checked out by git itself (line endings, modes), then a new
  // history in place of this repository's.
  await git(root, "clone", "-q", "--depth", "1", pathToFileURL(REPO_ROOT).href, dir);
  await Deno.remove(join(dir, ".git"), { recursive: true });
  await git(dir, "init", "-q", "-b", "main");
  await git(dir, "config", "user.email", "release@krepis.test");
  await git(dir, "config", "user.name", "Krepis release test");
  await git(dir, "add", "-A");
  await git(dir, "commit", "-qm", "feat: the first kernel");
  await git(dir, "tag", "-a", "v0.1.0", "-m", "v0.1.0");
  await Deno.writeTextFile(join(dir, "NOTES.md"), "more\n");
  await git(dir, "add", "NOTES.md");
  await git(dir, "commit", "-qm", "fix(loader): a fix after 0.1.0");
  await git(root, "init", "-q", "--bare", origin);
  await git(dir, "remote", "add", "origin", origin);
  await git(dir, "push", "-q", "origin", "main", "v0.1.0");
  return {
    root,
    dir,
    origin,
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true });
    },
  };
}

async function release(dir: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    // --quiet: Deno's own diagnostics (a `Download …` line when its cache
    // lacks something) are not the release step's output, which is tested.
    args: [
      "run",
      "--quiet",
      "--allow-all",
      join(REPO_ROOT, "release", "main.ts"),
      ...args,
      "--root",
      dir,
    ],
    cwd: REPO_ROOT,
    env: { CARGO_TARGET_DIR },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function snapshot(r: Repo) {
  return {
    head: await git(r.dir, "rev-parse", "HEAD"),
    status: await git(r.dir, "status", "--porcelain"),
    tags: await git(r.dir, "tag", "--list"),
    origin: await git(r.dir, "ls-remote", r.origin),
    cargo: await Deno.readTextFile(join(r.dir, "Cargo.toml")),
  };
}

/**
 * Makes the copy's `deno task test` (the default gate) a quick one that
 * leaves a mark outside the tree, committed so the tree stays clean.
 *
 * @returns The file the gate writes when it runs.
 */
async function markingGate(r: Repo): Promise<string> {
  const path = join(r.dir, "deno.json");
  const config = JSON.parse(await Deno.readTextFile(path));
  config.tasks.test = "echo the default gate ran >> ../gate-ran";
  await Deno.writeTextFile(path, `${JSON.stringify(config, null, 2)}\n`);
  await git(r.dir, "commit", "-qam", "chore: a quick gate");
  return join(r.root, "gate-ran");
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Asserts the lines matching each pattern come in this order. */
function assertOrder(text: string, ...patterns: RegExp[]) {
  const at = patterns.map((p) => {
    const index = text.search(p);
    assert.ok(index >= 0, `${p} in:\n${text}`);
    return index;
  });
  assert.deepEqual(at, at.toSorted((a, b) => a - b), `in the order ${patterns.join(", ")}`);
}

Deno.test("deno task release minor (dry run) prints the whole plan, runs no gate and changes nothing", async () => {
  await using r = await repo();
  const marker = await markingGate(r);
  const before = await snapshot(r);
  const run = await release(r.dir, "minor");
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /release 0\.1\.0 → 0\.2\.0 \(dry run/);
  assert.match(
    run.stdout,
    /plan edit {4}Cargo\.toml: \[workspace\.package\] version "0\.1\.0" → "0\.2\.0", then cargo update --workspace \(Cargo\.lock\)/,
  );
  assert.match(run.stdout, /plan edit {4}loader\/deno\.json: "version": "0\.1\.0" → "0\.2\.0"/);
  assert.match(run.stdout, /plan push {4}git push --atomic origin main v0\.2\.0/);
  assert.match(run.stdout, /### Fixes\n\n- \*\*loader:\*\* a fix after 0\.1\.0/);
  assertOrder(
    run.stdout,
    /^plan push/m,
    /^gate: not run in a dry run; --execute runs `deno task test` first, or pass --gate <cmd> to run one now$/m,
    /^notes for v0\.2\.0:/m,
  );
  assert.equal(await exists(marker), false, "the default gate did not run");
  assert.deepEqual(await snapshot(r), before);
});

Deno.test("deno task release minor --gate <cmd> (dry run) runs that gate after the plan, saying so", async () => {
  await using r = await repo();
  const marker = await markingGate(r);
  const before = await snapshot(r);
  const run = await release(r.dir, "minor", "--gate", "echo the named gate ran");
  assert.equal(run.code, 0, run.stderr);
  assertOrder(
    run.stdout,
    /^plan push/m,
    /^gate: running `echo the named gate ran` \(--gate asks for it; the dry run still changes nothing\)$/m,
    /^the named gate ran$/m,
    /^gate: `echo the named gate ran` passed$/m,
    /^notes for v0\.2\.0:/m,
  );
  assert.equal(await exists(marker), false, "only the named gate ran");
  assert.deepEqual(await snapshot(r), before);
});

Deno.test("deno task release minor: an unreachable origin is reported in a dry run and refused by --execute", async () => {
  await using r = await repo();
  const missing = join(r.root, "moved-away.git");
  await git(r.dir, "remote", "set-url", "origin", missing);
  const before = await snapshot(r);
  const dry = await release(r.dir, "minor");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(
    dry.stdout,
    /^origin: unreachable \(.*moved-away\.git.*\); --execute will refuse until it is reachable$/m,
  );
  assert.match(dry.stdout, /^plan push {4}git push --atomic origin main v0\.2\.0/m);
  const executed = await release(r.dir, "minor", "--execute", "--gate", "true");
  assert.equal(executed.code, 1, executed.stdout);
  assert.match(
    executed.stderr,
    /^error: Cannot release: origin is unreachable \(.*moved-away\.git.*\)\nHint: .*git remote get-url origin/,
  );
  assert.doesNotMatch(executed.stdout, /^do /m, "nothing was done");
  assert.deepEqual(await snapshot(r), before);
});

Deno.test("deno task release refuses a dirty tree, another branch, an existing tag and a failing gate", async () => {
  await using r = await repo();
  await Deno.writeTextFile(join(r.dir, "NOTES.md"), "dirty\n");
  assert.match(
    (await release(r.dir, "patch")).stderr,
    /^error: Cannot release: the working tree has uncommitted changes/,
  );
  await git(r.dir, "checkout", "-q", "--", "NOTES.md");
  await git(r.dir, "switch", "-q", "-c", "topic");
  assert.match(
    (await release(r.dir, "patch")).stderr,
    /^error: Cannot release from topic: releases are cut on main/,
  );
  await git(r.dir, "switch", "-q", "main");
  assert.match(
    (await release(r.dir, "0.1.0")).stderr,
    /^error: Cannot release 0\.1\.0: it is not a version above 0\.1\.0/,
  );
  await git(r.dir, "tag", "v0.1.1");
  assert.match(
    (await release(r.dir, "patch")).stderr,
    /^error: Cannot release v0\.1\.1: the tag already exists/,
  );
  const failing = await release(r.dir, "minor", "--gate", "false");
  assert.equal(failing.code, 1);
  assert.match(
    failing.stderr,
    /^error: Cannot release: the test gate `false` failed\nHint: run `false` and fix what it reports/,
  );
});

Deno.test("deno task release refuses an ABI change without an ABI version bump, naming the symbol", async () => {
  await using r = await repo();
  const header = join(r.dir, "crates", "krepis-kernel", "include", "krepis.h");
  const text = await Deno.readTextFile(header);
  await Deno.writeTextFile(
    header,
    text.replace(
      "const char *krepis_last_error(void);",
      "const char *krepis_last_error(void);\n\nuint32_t krepis_extra(void);",
    ),
  );
  await git(r.dir, "commit", "-qam", "feat: krepis_extra");
  const added = await release(r.dir, "minor");
  assert.equal(added.code, 1);
  assert.match(
    added.stderr,
    new RegExp(
      `^error: Cannot release: the ABI changed \\(added krepis_extra\\) but its version stayed ${ABI} → ${ABI}\nHint: bump KREPIS_ABI_MINOR`,
    ),
  );
  await Deno.writeTextFile(
    header,
    text.replace("uint32_t krepis_abi_version(void);", "uint64_t krepis_abi_version(void);")
      .replace(
        `#define KREPIS_ABI_MINOR ${LOADER_ABI.minor}`,
        `#define KREPIS_ABI_MINOR ${LOADER_ABI.minor + 1}`,
      ),
  );
  await git(r.dir, "commit", "-qam", "feat!: a wider ABI version");
  const changed = await release(r.dir, "minor");
  assert.match(
    changed.stderr,
    new RegExp(
      `^error: Cannot release: the ABI changed incompatibly \\(changed krepis_abi_version\\) but its version stayed ${ABI} → ${NEXT_MINOR}\nHint: bump KREPIS_ABI_MAJOR`,
    ),
  );
});

Deno.test(
  skipIf(
    "deno task release --previous-lib runs abidiff and refuses what it finds unannounced",
    without("abidiff", "abidiff (libabigail) is not installed; it reads Linux ELF libraries only"),
  ),
  async () => {
    await using r = await repo();
    // The "previous release" had one export more: this tree removed it.
    const previous = await buildVariant("krepis-kernel-abi-surface", SURFACE_PATCH);
    const run = await release(r.dir, "minor", "--previous-lib", previous);
    assert.equal(run.code, 1, run.stdout);
    assert.match(
      run.stderr,
      new RegExp(
        `^error: Cannot release: abidiff finds an incompatible ABI change but the ABI version stayed ${ABI} → ${ABI}\n[\\s\\S]*krepis_variant_extra`,
      ),
    );
  },
);

Deno.test("deno task release minor --execute: the plan, the gate, then bump, check, commit, tag, push, and what the tag starts", async () => {
  await using r = await repo();
  const marker = await markingGate(r);
  // origin as a GitHub URL, which git sends to the bare repository.
  const github = "https://github.com/krepis-test/krepis.git";
  await git(r.dir, "remote", "set-url", "origin", github);
  await git(r.dir, "config", `url.${r.origin}.insteadOf`, github);
  const run = await release(r.dir, "minor", "--execute");
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assertOrder(
    run.stdout,
    /^release 0\.1\.0 → 0\.2\.0$/m,
    /^plan push {4}git push --atomic origin main v0\.2\.0/m,
    /^gate: running `deno task test` before anything is changed \(--execute\)$/m,
    /^gate: `deno task test` passed$/m,
    /^do {3}edit {4}Cargo\.toml: \[workspace\.package\] version "0\.1\.0" → "0\.2\.0"/m,
    /^do {3}push {4}git push --atomic origin main v0\.2\.0/m,
    /^next: the tag v0\.2\.0 starts \.github\/workflows\/release\.yml, which$/m,
    /GitHub Release v0\.2\.0/,
    /publishes to JSR as @krepis\/loader 0\.2\.0/,
    /^follow it at https:\/\/github\.com\/krepis-test\/krepis\/actions$/m,
  );
  assert.equal(await Deno.readTextFile(marker), "the default gate ran\n", "the gate ran once");
  assert.match(await Deno.readTextFile(join(r.dir, "Cargo.toml")), /\nversion = "0\.2\.0"\n/);
  assert.equal(
    await git(r.dir, "diff", "--numstat", "v0.1.0", "HEAD", "--", "Cargo.toml", "Cargo.lock"),
    "1\t1\tCargo.lock\n1\t1\tCargo.toml",
    "one line each: the workspace version and the kernel's lock entry",
  );
  assert.match(
    await Deno.readTextFile(join(r.dir, "Cargo.lock")),
    /name = "krepis-kernel"\nversion = "0\.2\.0"/,
  );
  assert.equal(
    JSON.parse(await Deno.readTextFile(join(r.dir, "loader", "deno.json"))).version,
    "0.2.0",
  );
  assert.equal(await git(r.dir, "log", "-1", "--format=%s"), "release: v0.2.0");
  assert.equal(await git(r.dir, "cat-file", "-t", "v0.2.0"), "tag", "an annotated tag");
  assert.match(
    await git(r.dir, "tag", "-l", "--format=%(contents)", "v0.2.0"),
    /## v0\.2\.0\n\n### Fixes/,
  );
  const remote = await git(r.dir, "ls-remote", r.origin);
  assert.match(remote, /refs\/tags\/v0\.2\.0\n/);
  assert.equal(
    remote.match(/^(\w+)\trefs\/heads\/main$/m)?.[1],
    await git(r.dir, "rev-parse", "HEAD"),
  );
  assert.equal(await git(r.dir, "status", "--porcelain"), "");
});

Deno.test("a full release end to end: cut, build, publish to a mirror, and the new loader installs by its pinned checksums", async () => {
  await using r = await repo();
  const cut = await release(r.dir, "minor", "--execute", "--gate", "true");
  assert.equal(cut.code, 0, cut.stderr);
  assert.match(
    cut.stdout,
    /^follow it in the Actions tab of the repository \(origin is not a GitHub URL\)$/m,
  );
  const task = async (args: string[], env: Record<string, string> = {}) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: r.dir,
      env: { CARGO_TARGET_DIR, KREPIS_KERNEL_PATH: "", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `${args.join(" ")}:\n${text}`);
    return text;
  };
  const host = (await import("../loader/mod.ts")).resolveTarget();
  // The release tree builds its own kernel (version 0.2.0) with the table's tool.
  await task([
    "run",
    "--allow-all",
    "matrix/build.ts",
    "--target",
    host.triple,
    "--profile",
    "dev",
  ]);
  const key = await generateSigningKey();
  const mirror = join(r.root, "mirror");
  await task(
    [
      "run",
      "--allow-all",
      "release/main.ts",
      "publish",
      "--dist",
      "dist",
      "--targets",
      host.triple,
      "--to-dir",
      mirror,
      "--jsr-dry-run",
    ],
    { KREPIS_SIGNING_KEY: await exportSigningKey(key) },
  );
  assert.match(
    await Deno.readTextFile(join(r.dir, "loader", "_gen", "pinned.ts")),
    /"version": "0\.2\.0"/,
  );
  const server = ReleaseHost.start(mirror);
  try {
    // No trusted key at all: the new loader trusts the checksums pinned in it.
    const init = await task(["run", "--allow-all", "loader/cli.ts", "init", "--json"], {
      KREPIS_MIRROR: server.url,
      KREPIS_CACHE_DIR: join(r.root, "cache"),
      KREPIS_TRUSTED_KEY: "",
    });
    const report = JSON.parse(init.slice(init.indexOf("{")));
    assert.equal(report.installed[0].version, "0.2.0");
    assert.equal(report.installed[0].trust, "pinned");
  } finally {
    await server.close();
  }
});

Deno.test("githubActionsUrl() finds the Actions page of a GitHub remote, and none elsewhere", () => {
  const actions = "https://github.com/krepis/krepis/actions";
  for (
    const remote of [
      "https://github.com/krepis/krepis.git",
      "https://github.com/krepis/krepis",
      "https://token@github.com/krepis/krepis.git",
      "git@github.com:krepis/krepis.git",
      "ssh://git@github.com/krepis/krepis.git",
    ]
  ) {
    assert.equal(githubActionsUrl(remote), actions, remote);
  }
  for (const remote of ["/srv/git/krepis.git", "https://gitlab.com/krepis/krepis.git", ""]) {
    assert.equal(githubActionsUrl(remote), null, remote);
  }
});

Deno.test("addToChangelog puts a release's notes on top, once", () => {
  const first = addToChangelog(CHANGELOG_HEADER, "## v0.2.0\n\n### Fixes\n\n- a\n");
  assert.equal(first, `${CHANGELOG_HEADER}\n## v0.2.0\n\n### Fixes\n\n- a\n`);
  const second = addToChangelog(first, "## v0.3.0\n\n### Features\n\n- b\n");
  assert.ok(second.indexOf("## v0.3.0") < second.indexOf("## v0.2.0"), second);
  assert.ok(second.startsWith(CHANGELOG_HEADER));
  assert.equal(addToChangelog(second, "## v0.3.0\n\nNo changes.\n"), second);
});
