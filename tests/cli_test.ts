/**
 * The `krepis` CLI as a user runs it (a child process) against a signed
 * release on loopback: every command, the exit code of every failure class,
 * and the process-level faults (concurrent installers, a killed installer,
 * a full disk, an https → http redirect, proxies).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { LOADER_ABI, resolveTarget, supportedTriples, VERSION } from "../loader/mod.ts";
import { TARGETS } from "../loader/_gen/targets.ts";
import { TAG_FILE, TAG_TEXT } from "../loader/_install/cache_layout.ts";
import { generateSigningKey, publicKeyBase64 } from "../release/minisign_sign.ts";
import { writeRelease } from "../release/write_release.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import { kernelFeatures, kernelPath } from "./_kernel.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { EXIT_CODES } from "../loader/cli.ts";
import { partialBody } from "./_partial_body.ts";
import { copyDir, snapshotTree } from "./_fs.ts";
import { CLI, cliEnv, runCli, spawnCli } from "./_cli.ts";
import { hostedRelease } from "./_hosted_release.ts";
import { NO_TMPFS, unshare } from "./_tmpfs.ts";
import { skipIf, when, WINDOWS, without } from "./_tools.ts";

const target = resolveTarget();
const zst = `${target.file}.zst`;

const setup = hostedRelease;

function assertCannot(stderr: string) {
  assert.match(stderr, /^error: Cannot [^\n]+\n(Hint: [^\n]+\n)?$/, stderr);
}

Deno.test("krepis init, info, verify and cache ls|prune|clean work end to end", async () => {
  await using t = await setup();
  const init = await runCli(["init"], t.env);
  assert.equal(init.code, 0, init.stderr);
  assert.match(
    init.stderr,
    new RegExp(`^downloading ${zst} \\(.*\\)\\ndownloaded ${zst} \\(.*\\)\\n$`),
  );
  assert.match(
    init.stdout,
    new RegExp(
      `^installed ${target.triple} ${VERSION} \\(.*sha256 ${t.fixture.entry.sha256}, signature by key`,
    ),
  );

  const again = await runCli(["init", "--json"], t.env);
  const report = JSON.parse(again.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.installed[0].downloaded, false);

  const info = JSON.parse((await runCli(["info", "--json"], t.env)).stdout);
  assert.equal(info.target, target.triple);
  // One shape of `target` in every --json document: the triple.
  assert.equal(report.installed[0].target, target.triple);
  assert.equal(info.cacheRoot, t.cacheDir);
  assert.deepEqual(info.kernel.abi, info.loaderAbi);
  const capabilities = ["view", ...((await kernelFeatures()) ?? ["journal", "server"])];
  assert.deepEqual(info.kernel.capabilities, capabilities);
  assert.equal(info.cached.length, 1);
  const plainInfo = await runCli(["info"], t.env);
  assert.match(plainInfo.stdout, /\nkernel {7}ABI \d+\.\d+ verified \(/);
  assert.ok(
    plainInfo.stdout.includes(`\ncapabilities ${capabilities.join(", ")}\n`),
    plainInfo.stdout,
  );

  assert.match((await runCli(["verify"], t.env)).stdout, /verified 1 file\(s\), 0 damaged\n$/);
  assert.match(
    (await runCli(["cache", "ls"], t.env)).stdout,
    new RegExp(`${VERSION}  ${target.triple}`),
  );

  // A damaged file with its stamp intact: verify finds it (exit 4) and removes it.
  const path = join(t.entryDir, target.file);
  const stat = await Deno.stat(path);
  await Deno.chmod(path, 0o644); // installed read-only (on Windows: the attribute)
  const bytes = await Deno.readFile(path);
  bytes[100] ^= 1;
  await Deno.writeFile(path, bytes);
  await Deno.utime(path, stat.atime!, stat.mtime!);
  const damaged = await runCli(["verify"], t.env);
  assert.equal(damaged.code, EXIT_CODES.integrity);
  assert.match(damaged.stdout, /DAMAGED .* \(removed; run `krepis init`\)/);
  assert.equal((await runCli(["init"], t.env)).code, 0);

  await Deno.mkdir(join(t.cacheDir, "0.0.1"));
  assert.match((await runCli(["cache", "prune"], t.env)).stdout, /^removed 0\.0\.1 from /);
  assert.match(
    (await runCli(["cache", "clean"], t.env)).stdout,
    new RegExp(`^removed ${VERSION.replaceAll(".", "\\.")} from `),
  );
  assert.deepEqual(JSON.parse((await runCli(["cache", "ls", "--json"], t.env)).stdout).entries, []);
});

Deno.test("pointed at a home directory, no krepis command deletes or writes anything", async () => {
  const home = await Deno.makeTempDir();
  try {
    // A user's files at every depth, some shaped exactly like a cache entry.
    const entry = join(home, VERSION, target.triple, "ab".repeat(32));
    await Deno.mkdir(entry, { recursive: true });
    await Deno.writeTextFile(join(entry, target.file), "a user's file, damaged by any hash");
    await Deno.writeTextFile(join(home, VERSION, "manifest.json"), "{}");
    await Deno.mkdir(join(home, "0.0.1", "project"), { recursive: true });
    await Deno.writeTextFile(join(home, "0.0.1", "project", "main.ts"), "code");
    await Deno.mkdir(join(home, ".ssh"));
    await Deno.writeTextFile(join(home, ".ssh", "id_ed25519"), "secret");
    const before = await snapshotTree(home);
    const runs: [string[], number][] = [
      [["verify"], EXIT_CODES.cache],
      [["cache", "prune"], EXIT_CODES.cache],
      [["cache", "clean"], EXIT_CODES.cache],
      [["init", "--offline"], EXIT_CODES.cache],
      [["cache", "ls"], EXIT_CODES.ok],
    ];
    for (const [args, code] of runs) {
      for (const how of ["flag", "env"] as const) {
        const run = how === "flag"
          ? await runCli([...args, "--cache-dir", home], {})
          : await runCli(args, { KREPIS_CACHE_DIR: home });
        assert.equal(run.code, code, `${args.join(" ")} (${how}): ${run.stderr}`);
        if (code !== EXIT_CODES.ok) {
          assert.match(
            run.stderr,
            /^error: Cannot \w+ .*: it (is not a Krepis cache|holds files Krepis did not make)/,
          );
          assert.match(run.stderr, /\nHint: /);
        }
        assert.deepEqual(
          await snapshotTree(home),
          before,
          `${args.join(" ")} (${how}) changed nothing`,
        );
      }
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("two targets of one version install side by side, round after round", async () => {
  const other = TARGETS.find((t) => t.triple !== target.triple)!;
  const dir = await Deno.makeTempDir({ prefix: "krepis-release-" });
  const key = await generateSigningKey();
  const library = await kernelPath();
  // Any bytes will do for the other target: only the host's is loaded.
  await writeRelease({
    outDir: dir,
    version: VERSION,
    abi: { ...LOADER_ABI },
    artifacts: [{ triple: target.triple, library }, { triple: other.triple, library }],
    key,
  });
  const host = ReleaseHost.start(dir);
  try {
    for (let round = 0; round < 6; round++) {
      const cache = await Deno.makeTempDir({ prefix: "krepis-cache-" });
      const env = {
        KREPIS_MIRROR: host.url,
        KREPIS_CACHE_DIR: cache,
        KREPIS_TRUSTED_KEY: publicKeyBase64(key),
      };
      const runs = await Promise.all(
        [target.triple, other.triple].map((triple) => runCli(["init", "--target", triple], env)),
      );
      for (const run of runs) assert.equal(run.code, 0, `round ${round}: ${run.stderr}`);
      const ls = JSON.parse((await runCli(["cache", "ls", "--json"], env)).stdout);
      assert.deepEqual(
        ls.entries.map((e: { target: string }) => e.target).sort(),
        [target.triple, other.triple].sort(),
      );
      assert.deepEqual(ls.foreign, []);
      await Deno.remove(cache, { recursive: true });
    }
  } finally {
    await host.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('--cache-dir "" is a usage error for every command, and makes no cache anywhere', async () => {
  for (const args of [["init"], ["info"], ["verify"], ["cache", "ls"], ["cache", "clean"]]) {
    const run = await runCli([...args, "--cache-dir", ""], {});
    assert.equal(run.code, EXIT_CODES.usage, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, /^error: Cannot run krepis \w+: --cache-dir is empty\nHint: /);
  }
  assert.equal(await Deno.stat(join(REPO_ROOT, VERSION)).then(() => true, () => false), false);
});

Deno.test(
  skipIf(
    "a cache the OS will not let krepis change is exit 8 with a hint, not an unexpected failure",
    when(
      WINDOWS || Deno.uid() === 0,
      "needs POSIX modes that bind this user (root writes anywhere)",
    ),
  ),
  async () => {
    await using t = await setup();
    assert.equal((await runCli(["init"], t.env)).code, 0);
    const versionDir = join(t.cacheDir, VERSION);
    await Deno.chmod(versionDir, 0o500); // read-only for this user
    try {
      const run = await runCli(["cache", "clean"], t.env);
      assert.equal(run.code, EXIT_CODES.cache, run.stderr);
      assert.match(
        run.stderr,
        /^error: Cannot run krepis cache clean: .*Permission denied.*\nHint: /s,
      );
    } finally {
      await Deno.chmod(versionDir, 0o700);
    }
  },
);

Deno.test("krepis exits with the documented code for each failure class", async () => {
  await using t = await setup();
  const cases: [string, string[], Record<string, string>, number][] = [
    ["usage", ["frobnicate"], {}, EXIT_CODES.usage],
    [
      "unsupported target",
      ["init", "--target", "riscv64gc-unknown-linux-gnu"],
      {},
      EXIT_CODES.unsupported,
    ],
    ["integrity (untrusted key)", ["init"], { KREPIS_TRUSTED_KEY: "" }, EXIT_CODES.integrity],
    ["offline miss", ["init", "--offline"], {}, EXIT_CODES.offline],
    [
      "network (nothing listening)",
      ["init"],
      { KREPIS_MIRROR: "http://127.0.0.1:9" },
      EXIT_CODES.network,
    ],
  ];
  for (const [what, args, env, code] of cases) {
    const run = await runCli(args, { ...t.env, ...env });
    assert.equal(run.code, code, `${what}: ${run.stderr}`);
    if (code !== EXIT_CODES.usage) assertCannot(run.stderr);
  }
});

Deno.test(
  skipIf(
    "krepis exits with the cache code for a cache directory writable by other users",
    when(WINDOWS, "Windows has no POSIX mode bits; the loader checks them only on Linux and macOS"),
  ),
  async () => {
    await using t = await setup();
    await Deno.chmod(t.cacheDir, 0o777);
    const unsafe = await runCli(["init"], t.env);
    assert.equal(unsafe.code, EXIT_CODES.cache, unsafe.stderr);
    assertCannot(unsafe.stderr);
  },
);

Deno.test("krepis init --all installs every target the release ships and names the rest", async () => {
  await using t = await setup();
  // The fixture release ships only this machine's target.
  const others = supportedTriples().filter((triple) => triple !== resolveTarget().triple);
  const run = await runCli(["init", "--all", "--json"], t.env);
  assert.equal(run.code, EXIT_CODES.ok, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.ok, true);
  assert.deepEqual(report.installed.map((r: { sha256: string }) => r.sha256), [
    t.fixture.entry.sha256,
  ]);
  assert.deepEqual(report.notInRelease, others);
  assert.deepEqual(report.summary, {
    targets: others.length + 1,
    installed: 1,
    downloaded: 1,
    cached: 0,
    failed: 0,
    notInRelease: others.length,
  });
  const text = await runCli(["init", "--all"], t.env);
  assert.equal(text.code, EXIT_CODES.ok, text.stderr);
  assert.match(text.stdout, new RegExp(`^cached ${resolveTarget().triple} `));
  assert.ok(
    text.stdout.endsWith(
      `\n1 of ${
        others.length + 1
      } targets ready (0 downloaded, 1 already cached), 0 failed, ${others.length} not in this release\n`,
    ),
    text.stdout,
  );
  assert.equal(text.stderr, `not in this release (skipped): ${others.join(", ")}\n`);
});

Deno.test("krepis init --all fails when the release ships none of the table's targets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-release-" });
  const key = await generateSigningKey();
  await writeRelease({ outDir: dir, version: VERSION, abi: { ...LOADER_ABI }, artifacts: [], key });
  const host = ReleaseHost.start(dir);
  const cache = await Deno.makeTempDir({ prefix: "krepis-cache-" });
  try {
    const env = {
      KREPIS_MIRROR: host.url,
      KREPIS_CACHE_DIR: cache,
      KREPIS_TRUSTED_KEY: publicKeyBase64(key),
    };
    const run = await runCli(["init", "--all"], env);
    assert.equal(run.code, EXIT_CODES.unsupported, run.stderr);
    assert.match(run.stderr, /^error: Cannot install any kernel: the release ships none of /m);
    assert.match(run.stderr, /\nHint: /);
    const json = await runCli(["init", "--all", "--json"], env);
    assert.equal(json.code, EXIT_CODES.unsupported);
    const report = JSON.parse(json.stdout);
    assert.deepEqual([report.ok, report.installed], [false, []]);
    assert.deepEqual(report.notInRelease, supportedTriples());
  } finally {
    await host.close();
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("8 processes installing at once on a cold cache download once and agree", async () => {
  await using t = await setup();
  const children = Array.from({ length: 8 }, () => spawnCli(["init", "--json"], t.env));
  const runs = await Promise.all(children.map((child) => child.output()));
  const paths = runs.map((run) => {
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    return JSON.parse(new TextDecoder().decode(run.stdout)).installed[0].path;
  });
  assert.equal(new Set(paths).size, 1);
  assert.equal(t.host.requestsFor(zst).length, 1, "the library was downloaded once");
  assert.equal(
    t.host.bytesSent -
      (await manifestBytes(t.fixture.versionDir)) * t.host.requestsFor("manifest.json").length,
    t.fixture.entry.compressed.zstd!.size,
  );
});

async function manifestBytes(dir: string) {
  return (await Deno.stat(join(dir, "manifest.json"))).size +
    (await Deno.stat(join(dir, "manifest.json.minisig"))).size;
}

Deno.test("an installer killed mid-download leaves nothing half-written; the next run resumes", async () => {
  await using t = await setup();
  const release = new AbortController();
  const half = Math.floor(t.fixture.entry.compressed.zstd!.size / 2);
  t.host.fault = ({ file, body, count }) =>
    file === zst && count === 0
      ? new Response(partialBody(body!.slice(0, half), "stall", release.signal))
      : undefined;
  const child = spawnCli(["init"], t.env);
  const partial = join(
    t.entryDir,
    `${target.file}.${t.fixture.entry.compressed.zstd!.sha256.slice(0, 16)}.partial`,
  );
  for (let i = 0; i < 200; i++) {
    const size = await Deno.stat(partial).then((s) => s.size, () => 0);
    if (size === half) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill("SIGKILL");
  const killed = await child.output();
  release.abort();
  assert.notEqual(killed.code, 0);
  assert.equal((await Deno.stat(partial)).size, half);
  assert.ok(!(await exists(join(t.entryDir, target.file))), "no file at the final path");

  const next = await runCli(["init", "--json"], t.env);
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(t.host.requestsFor(zst).map((r) => r.range), [null, `bytes=${half}-`]);
  const names = [...Deno.readDirSync(t.entryDir)].map((e) => e.name).sort();
  assert.deepEqual(names, [target.file, `${target.file}.stamp.json`]);
});

Deno.test(
  skipIf("a disk that fills up: clear error, temp file removed, no retry loop", NO_TMPFS),
  async () => {
    await using t = await setup();
    const zstdSize = t.fixture.entry.compressed.zstd!.size;
    // Room for the compressed download, not for the library it unpacks to.
    const sizeKiB = Math.ceil((zstdSize + 256 * 1024) / 1024);
    assert.ok(sizeKiB * 1024 < zstdSize + t.fixture.entry.size);
    const mount = await Deno.makeTempDir({ prefix: "krepis-tmpfs-" });
    const cache = join(mount, "cache");
    const env = cliEnv({ ...t.env, KREPIS_CACHE_DIR: cache });
    const script = [
      `mount -t tmpfs -o size=${sizeKiB}k,mode=0700 tmpfs '${mount}'`,
      `${CLI.map((a) => `'${a}'`).join(" ")} init; echo "exit=$?"`,
      `find '${cache}' -type f | sort`,
    ].join(" && ");
    // A private mount namespace: the tmpfs vanishes with the shell.
    const output = await new Deno.Command("unshare", {
      args: [...unshare!, "--propagation", "private", "sh", "-c", script],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    await Deno.remove(mount, { recursive: true });
    assert.ok(output.success, `unshare ${unshare!.join(" ")} / mount failed: ${stderr}`);
    assert.match(stdout, new RegExp(`exit=${EXIT_CODES.cache}\\n`));
    assert.match(
      stderr,
      /^error: Cannot write to .*: the disk is full\nHint: free some space or point KREPIS_CACHE_DIR/m,
    );
    const files = stdout.split("\n").filter((l) => l.startsWith("/"));
    assert.deepEqual(
      files.filter((f) => f.endsWith(".tmp") || f.endsWith(target.file) || f.endsWith(".partial")),
      [],
      files.join("\n"),
    );
    assert.equal(t.host.requestsFor(zst).length, 1, "a full disk is not retried");
  },
);

Deno.test(
  skipIf(
    "a redirect from https to http is refused (real TLS on loopback)",
    without("openssl", "openssl is not installed (it makes the test certificates)"),
  ),
  async () => {
    await using t = await setup();
    const dir = await Deno.makeTempDir();
    try {
      // A CA and a leaf certificate for 127.0.0.1 (rustls refuses a CA as end entity).
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      await Deno.writeTextFile(
        join(dir, "leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
      );
      for (
        const args of [
          [
            "req",
            "-x509",
            ...ec,
            "-days",
            "1",
            "-subj",
            "/CN=krepis test CA",
            "-keyout",
            join(dir, "ca.key"),
            "-out",
            join(dir, "ca.pem"),
          ],
          [
            "req",
            ...ec,
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            join(dir, "key.pem"),
            "-out",
            join(dir, "leaf.csr"),
          ],
          [
            "x509",
            "-req",
            "-in",
            join(dir, "leaf.csr"),
            "-CA",
            join(dir, "ca.pem"),
            "-CAkey",
            join(dir, "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            join(dir, "leaf.ext"),
            "-out",
            join(dir, "cert.pem"),
          ],
        ]
      ) {
        const openssl = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
          .output();
        assert.ok(openssl.success, new TextDecoder().decode(openssl.stderr));
      }
      const tls = Deno.serve(
        {
          hostname: "127.0.0.1",
          port: 0,
          cert: Deno.readTextFileSync(join(dir, "cert.pem")),
          key: Deno.readTextFileSync(join(dir, "key.pem")),
          onListen: () => {},
        },
        async (request) => {
          const path = new URL(request.url).pathname;
          if (path.endsWith(".zst")) return Response.redirect(`${t.host.url}${path}`, 302);
          return await fetch(`${t.host.url}${path}`);
        },
      );
      try {
        const https = `https://127.0.0.1:${tls.addr.port}`;
        const refused = await runCli(["init"], {
          ...t.env,
          KREPIS_MIRROR: https,
          DENO_CERT: join(dir, "ca.pem"),
        });
        assert.equal(refused.code, EXIT_CODES.network, refused.stderr);
        assert.match(
          refused.stderr,
          /^error: Cannot download https:\/\/127\.0\.0\.1:\d+\/.*\.zst: it redirects from https to http:/,
        );
        assert.equal(t.host.requestsFor(zst).length, 0, "the http target was never contacted");
      } finally {
        await tls.shutdown();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("HTTP_PROXY is used for the release host, and NO_PROXY bypasses it", async () => {
  await using t = await setup();
  const proxied: string[] = [];
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      proxied.push(request.url);
      return await fetch(request.url, { headers: request.headers });
    },
  );
  try {
    const viaProxy = { ...t.env, HTTP_PROXY: `http://127.0.0.1:${proxy.addr.port}`, NO_PROXY: "" };
    const run = await runCli(["init"], viaProxy);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(
      proxied.some((url) => url.endsWith(`/${zst}`)),
      `the proxy saw: ${proxied.join(", ")}`,
    );
    await Deno.remove(t.cacheDir, { recursive: true });
    proxied.length = 0;
    const bypass = await runCli(["init"], { ...viaProxy, NO_PROXY: "127.0.0.1" });
    assert.equal(bypass.code, 0, bypass.stderr);
    assert.deepEqual(proxied, []);
  } finally {
    await proxy.shutdown();
  }
});

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("deno install -g of the CLI from a copy of loader/ needs no config, and the installed krepis runs", async () => {
  // As from the published package: the loader's files alone, outside the repository.
  const dir = await Deno.makeTempDir({ prefix: "krepis-install-g-" });
  try {
    const copy = join(dir, "loader");
    await copyDir(join(REPO_ROOT, "loader"), copy);
    const root = join(dir, "root");
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["install", "-g", "-A", "--root", root, "-n", "krepis", join(copy, "cli.ts")],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
    const shim = [...Deno.readDirSync(join(root, "bin"))].find((e) => e.name.startsWith("krepis"));
    assert.ok(shim, "deno install wrote no krepis command");
    const cmd = join(root, "bin", shim.name);
    const args = ["cache", "ls", "--json"];
    const env = { KREPIS_CACHE_DIR: join(dir, "cache") };
    // A .cmd shim on Windows runs through cmd.
    const [program, ...rest] = WINDOWS ? ["cmd", "/c", cmd, ...args] : [cmd, ...args];
    const output = await new Deno.Command(program, {
      args: rest,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert.equal(output.code, 0, decoder.decode(output.stderr));
    const listing = JSON.parse(decoder.decode(output.stdout));
    assert.equal(listing.root, env.KREPIS_CACHE_DIR);
    assert.deepEqual(listing.entries, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("krepis cache prune and clean say nothing was removed when a version folder holds only a foreign file", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-cache-foreign-" });
  try {
    await Deno.writeTextFile(join(root, TAG_FILE), TAG_TEXT);
    await Deno.mkdir(join(root, "0.0.9"));
    await Deno.writeTextFile(join(root, "0.0.9", "notes.txt"), "someone's");
    for (const sub of ["prune", "clean", "prune"]) {
      const run = await runCli(["cache", sub, "--cache-dir", root], {});
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `nothing to remove in ${root}\n`, sub);
      assert.match(run.stderr, /^left alone, not made by Krepis \(1\):\n {2}.*notes\.txt\n$/, sub);
    }
    assert.equal(await Deno.readTextFile(join(root, "0.0.9", "notes.txt")), "someone's");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
