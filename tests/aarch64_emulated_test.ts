/**
 * The aarch64 Linux kernel for real, on an x86_64 Linux machine: built by
 * the project's own build task (cargo-zigbuild, glibc floor, post-build
 * checks), published with the x86_64 kernel in one signed release on
 * loopback, and then fetched, verified, cached, loaded and called by the
 * real loader and CLI running on arm64 Deno under qemu-user. A flipped byte
 * and a kernel with another ABI major are refused there too, and the
 * matrix's smoke step runs on the aarch64 artifact.
 *
 * Skipped, with the reason, where a part cannot exist (not x86_64 Linux, no
 * aarch64 std, no qemu, no arm64 Deno); `deno task setup` installs every
 * part on x86_64 Linux. When every part is there but they do not run
 * together, the tests fail.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { LOADER_ABI, resolveTarget, supportedTriples, VERSION } from "../loader/mod.ts";
import { EXIT_CODES } from "../loader/cli.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import type { Fragment } from "../matrix/fragment.ts";
import { checkArtifact } from "../matrix/check_artifact.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { type Aarch64Emulator, aarch64Emulator, emulatedDeno } from "../tools/aarch64_emulator.ts";
import { rustcFor } from "../lib/toolchain.ts";
import { type CliRun, runCli, runDeno, runIn } from "./_cli.ts";
import { kernelPath } from "./_kernel.ts";
import { copyRelease, makeRelease, type ReleaseFixture } from "./_release_fixture.ts";
import { buildVariant } from "./_variant.ts";
import { skipIf } from "./_tools.ts";

const AARCH64 = "aarch64-unknown-linux-gnu";
const row = targetRow(await loadTargetTable(), AARCH64);
const HOST = resolveTarget().triple;

/** Why the aarch64 kernel cannot be built here, or null. */
const buildSkip = HOST !== "x86_64-unknown-linux-gnu"
  ? "builds aarch64 Linux from x86_64 Linux only"
  : (await rustcFor(AARCH64)) === null
  ? "no Rust std for aarch64 Linux here (deno task setup installs one)"
  : null;
const probe = await aarch64Emulator();
/** Why arm64 Deno cannot run here, or null (a broken emulator is not a reason: it fails). */
const emulationSkip = buildSkip ?? ("missing" in probe ? probe.missing : null);

function emulator(): Aarch64Emulator {
  if ("broken" in probe) assert.fail(probe.broken);
  assert.ok("emulator" in probe);
  return probe.emulator;
}

/** Runs `deno <args>` for arm64 under qemu, in the repository, with the CLI environment. */
async function emulated(args: string[], env: Record<string, string>): Promise<CliRun> {
  const [cmd, ...rest] = emulatedDeno(emulator(), args);
  // Minutes, not seconds: a cold start under emulation is slow, but it must end.
  const { signal, ...run } = await runIn(cmd, rest, env, 300_000);
  assert.equal(signal, null, `killed after 300 s under qemu: ${args.join(" ")}`);
  return run;
}

/** A cold release build of the kernel takes a minute or two here; it must end. */
const BUILD_LIMIT_MS = 20 * 60_000;

/** What this file made in the temp directory, removed when the test process ends. */
const made: string[] = [];
addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  }
});

const CLI = ["run", "--quiet", "--allow-all", join("loader", "cli.ts")];
const LOAD_AND_CALL = [
  "run",
  "--quiet",
  "--allow-all",
  join("tests", "emulated", "load_and_call.ts"),
];

/** What `deno task build --target aarch64-unknown-linux-gnu` printed and wrote. */
interface Aarch64Build {
  /** Its output. */
  stdout: string;
  /** A copy of `dist/<triple>/<file>` (a later build may rewrite dist/). */
  library: string;
  /** `dist/<triple>/fragment.json`. */
  fragment: Fragment;
}

let aarch64Build: Promise<Aarch64Build> | undefined;
/** The aarch64 kernel, built once by `deno task build --target aarch64-unknown-linux-gnu`. */
function aarch64Kernel(): Promise<Aarch64Build> {
  aarch64Build ??= (async () => {
    const run = await runDeno(["task", "build", "--target", AARCH64], {}, BUILD_LIMIT_MS);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const dist = join(REPO_ROOT, "dist", AARCH64);
    const dir = await Deno.makeTempDir({ prefix: "krepis-aarch64-" });
    made.push(dir);
    const copy = join(dir, row.file);
    await Deno.copyFile(join(dist, row.file), copy);
    const fragment = JSON.parse(await Deno.readTextFile(join(dist, "fragment.json")));
    return { stdout: run.stdout, library: copy, fragment };
  })();
  return aarch64Build;
}

let release: Promise<ReleaseFixture> | undefined;
/** One signed release with this machine's kernel and the aarch64 one. */
function bothLinux(): Promise<ReleaseFixture> {
  release ??= (async () => {
    const fixture = await makeRelease([
      { triple: HOST, library: await kernelPath() },
      { triple: AARCH64, library: (await aarch64Kernel()).library },
    ]);
    made.push(fixture.dir);
    return fixture;
  })();
  return release;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Every file name under `dir`, recursively. */
async function fileNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) names.push(...await fileNames(join(dir, entry.name)));
    else names.push(entry.name);
  }
  return names;
}

/** Serves `dir` (signed by `publicKey`), makes a fresh cache, runs `fn`, cleans up. */
async function served(
  publicKey: string,
  dir: string,
  fn: (env: Record<string, string>, host: ReleaseHost, cache: string) => Promise<void>,
) {
  const host = ReleaseHost.start(dir);
  const cache = await Deno.makeTempDir({ prefix: "krepis-cache-" });
  try {
    await fn(
      { KREPIS_MIRROR: host.url, KREPIS_CACHE_DIR: cache, KREPIS_TRUSTED_KEY: publicKey },
      host,
      cache,
    );
  } finally {
    await host.close();
    await Deno.remove(cache, { recursive: true });
  }
}

Deno.test(
  skipIf(
    "deno task build --target aarch64-unknown-linux-gnu passes the post-build checks",
    buildSkip,
  ),
  async () => {
    const built = await aarch64Kernel();
    assert.match(built.stdout, new RegExp(`^build: ${AARCH64} with rustc \\d+\\.\\d+`, "m"));
    assert.match(built.stdout, /^ +glibc +needs GLIBC_2\.17 \(floor 2\.17\)$/m);
    assert.match(built.stdout, new RegExp(`^wrote .*${AARCH64}`, "m"));
    // Checked again here, on the bytes that were written.
    const bytes = await Deno.readFile(built.library);
    const report = checkArtifact(bytes, row);
    assert.deepEqual(report.problems, []);
    assert.equal(report.info.format, "elf");
    assert.equal(report.info.arch, "aarch64");
    assert.equal(report.glibcMax, `GLIBC_${row.glibcFloor}`);
    assert.equal(built.fragment.target.sha256, sha256(bytes));
    assert.deepEqual(built.fragment.abi, { ...LOADER_ABI });
  },
);

Deno.test(
  skipIf(
    "deno task demo --target aarch64-unknown-linux-gnu publishes both Linux targets; krepis init --all installs both",
    buildSkip,
  ),
  async () => {
    const out = await Deno.makeTempDir({ prefix: "krepis-demo-both-" });
    try {
      const demo = await runDeno(
        ["task", "demo", "--target", AARCH64, "--out", out],
        {},
        BUILD_LIMIT_MS,
      );
      assert.equal(demo.code, 0, demo.stdout + demo.stderr);
      assert.match(demo.stdout, /> krepis init --all\n/);
      assert.match(demo.stdout, new RegExp(`released +${HOST}, ${AARCH64}\\n`));
      const manifest = JSON.parse(
        await Deno.readTextFile(join(out, `v${VERSION}`, "manifest.json")),
      );
      assert.deepEqual(manifest.targets.map((t: { triple: string }) => t.triple), [HOST, AARCH64]);
      // The same kernel `krepis init --all` then installs, from the kept release, on this machine.
      await served(await publicKeyOf(out), out, async (env, _host, cache) => {
        const run = await runCli(["init", "--all", "--json"], env);
        assert.equal(run.code, EXIT_CODES.ok, run.stderr);
        const report = JSON.parse(run.stdout);
        assert.deepEqual(
          report.installed.map((i: { target: string }) => i.target),
          [HOST, AARCH64],
        );
        for (const installed of report.installed) {
          const entry = manifest.targets.find((t: { triple: string }) =>
            t.triple === installed.target
          );
          assert.equal(sha256(await Deno.readFile(installed.path)), entry.sha256);
          assert.ok(installed.path.startsWith(cache));
        }
        assert.deepEqual(
          report.notInRelease,
          supportedTriples().filter((t) => t !== HOST && t !== AARCH64),
        );
      });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);

/** The base64 public key in a demo's `key.pub` (its second line). */
async function publicKeyOf(dir: string): Promise<string> {
  return (await Deno.readTextFile(join(dir, "key.pub"))).split("\n")[1].trim();
}

Deno.test(
  skipIf(
    "arm64 Deno under qemu: krepis init picks aarch64 by itself, verifies and caches; load() checks the ABI and calls the kernel",
    emulationSkip,
  ),
  async () => {
    const fixture = await bothLinux();
    const entry = fixture.manifest.targets.find((t) => t.triple === AARCH64)!;
    await served(fixture.publicKey, fixture.dir, async (env, host, cache) => {
      const init = await emulated([...CLI, "init", "--json"], env);
      assert.equal(init.code, EXIT_CODES.ok, init.stderr);
      const [installed] = JSON.parse(init.stdout).installed;
      assert.equal(installed.target, AARCH64);
      assert.equal(installed.sha256, entry.sha256);
      assert.equal(installed.downloaded, true);
      assert.match(installed.trust, /^signature by key [0-9A-F]{16}$/);
      assert.equal(installed.path, join(cache, VERSION, AARCH64, entry.sha256, row.file));
      assert.equal(sha256(await Deno.readFile(installed.path)), entry.sha256);
      // Only the aarch64 kernel was fetched, never this machine's.
      assert.deepEqual(host.served.map((s) => s.path.split("/").pop()), [
        "manifest.json",
        "manifest.json.minisig",
        `${row.file}.zst`,
      ]);

      // From the cache alone: offline, so a download cannot hide a miss.
      const load = await emulated(LOAD_AND_CALL, { ...env, KREPIS_OFFLINE: "1" });
      assert.equal(load.code, 0, load.stderr);
      const result = JSON.parse(load.stdout);
      assert.equal(result.ok, true, load.stdout);
      assert.equal(result.deno.arch, "aarch64");
      assert.equal(result.deno.target, AARCH64);
      assert.equal(result.path, installed.path);
      assert.deepEqual(result.abi, { ...LOADER_ABI });
      assert.equal(result.version, VERSION);
      assert.deepEqual(result.buildInfo, { target: AARCH64, profile: "release" });
      assert.equal(result.echoed, "hello from aarch64");
      // The arm64 kernel's data plane, its sled journal and its server
      // engine (the table's features for aarch64 Linux), on arm64.
      assert.deepEqual(result.capabilities, ["view", ...row.features]);
      assert.equal(result.viewed, "before");
      assert.deepEqual(result.journal, { undone: ["notes.txt"], after: "before" });
      assert.deepEqual(
        result.server,
        row.features.includes("server")
          ? { status: 200, body: "upstream on aarch64", requests: 1 }
          : null,
      );
      assert.equal(host.served.length, 3, "load() made no request");
    });
  },
);

Deno.test(
  skipIf("arm64 Deno under qemu refuses an aarch64 artifact with one flipped byte", emulationSkip),
  async () => {
    const fixture = await bothLinux();
    const mirror = await copyRelease(fixture);
    try {
      // Whichever copy the loader fetches (raw, zstd, gzip) is damaged.
      for (const name of [row.file, `${row.file}.zst`, `${row.file}.gz`]) {
        const path = join(mirror, `v${VERSION}`, name);
        const bytes = await Deno.readFile(path);
        bytes[bytes.length >> 1] ^= 0x01;
        await Deno.writeFile(path, bytes);
      }
      await served(fixture.publicKey, mirror, async (env, _host, cache) => {
        const init = await emulated([...CLI, "init"], env);
        assert.equal(init.code, EXIT_CODES.integrity, init.stderr);
        assert.match(
          init.stderr,
          new RegExp(
            `^error: Cannot verify ${row.file}\\S*: its SHA-256 [0-9a-f]{64} is not `,
            "m",
          ),
        );
        assert.match(init.stderr, /\nHint: /);
        assert.ok(!(await fileNames(cache)).includes(row.file), "nothing was cached");
        const load = JSON.parse((await emulated(LOAD_AND_CALL, env)).stdout);
        assert.equal(load.ok, false);
        assert.equal(load.code, "INTEGRITY", load.message);
        assert.ok(!(await fileNames(cache)).includes(row.file), "nothing was cached");
      });
    } finally {
      await Deno.remove(mirror, { recursive: true });
    }
  },
);

Deno.test(
  skipIf(
    "arm64 Deno under qemu refuses a real aarch64 kernel built with another ABI major",
    emulationSkip,
  ),
  async () => {
    const variant = await buildVariant("krepis-kernel-abi-major", (source) =>
      source.replace(
        `KREPIS_ABI_MAJOR: u16 = ${LOADER_ABI.major};`,
        `KREPIS_ABI_MAJOR: u16 = ${LOADER_ABI.major + 1};`,
      ), row);
    // The manifest claims the loader's ABI; only the kernel itself says otherwise.
    const fixture = await makeRelease([{ triple: AARCH64, library: variant }]);
    try {
      await served(fixture.publicKey, fixture.dir, async (env) => {
        const init = await emulated([...CLI, "init"], env);
        assert.equal(init.code, EXIT_CODES.ok, init.stderr);
        const load = await emulated(LOAD_AND_CALL, { ...env, KREPIS_OFFLINE: "1" });
        const result = JSON.parse(load.stdout);
        assert.equal(result.ok, false, load.stdout);
        assert.equal(result.name, "AbiMismatchError");
        assert.equal(result.code, "ABI_MISMATCH");
        assert.match(
          result.message,
          new RegExp(`: its ABI major ${LOADER_ABI.major + 1} is not ${LOADER_ABI.major};`),
        );
        assert.match(result.message, /\nHint: /);
      });
    } finally {
      await Deno.remove(fixture.dir, { recursive: true });
    }
  },
);

Deno.test(
  skipIf("the matrix's smoke step passes on the aarch64 artifact under qemu", emulationSkip),
  async () => {
    const built = await aarch64Kernel();
    // `deno task smoke` is `deno run …`: run that command line itself, since
    // a task would start `deno` again as a child, which qemu-user does not follow.
    const tasks = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))).tasks;
    const command = (tasks.smoke.command as string).split(" ");
    assert.deepEqual(command.slice(0, 2), ["deno", "run"]);
    const smoke = await emulated([...command.slice(1), built.library], {});
    assert.equal(smoke.code, 0, smoke.stdout + smoke.stderr);
    assert.match(
      smoke.stdout,
      /buildInfo\(\) through the loader: aarch64-unknown-linux-gnu release/,
    );
    assert.match(smoke.stdout, /^ok +every export called: \d+ exports$/m);
    assert.match(smoke.stdout, /^smoke: \d+ passed, 0 failed$/m);
  },
);
