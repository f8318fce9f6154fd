/**
 * Distribution benchmarks, each a ratio to a baseline measured in the same
 * run (absolute times on a shared machine are noise):
 *
 * 1. warm `load()` from the cache vs a bare `Deno.dlopen` of the same file,
 *    a whole process each, importing the loader by file path with no
 *    config (as a user would); then where the difference goes, each phase
 *    timed inside the process: loading the loader's modules, the warm
 *    `install()` (reading the stamp, verifying the cached manifest's
 *    signature, of which the first Ed25519 verification is shown alone),
 *    and `dlopen` with the ABI check;
 * 2. cold `krepis init` from a loopback host vs an empty `deno run` plus
 *    `curl` + `sha256sum` of the same library (the real kernel: a Deno
 *    process's own start-up is the floor), and, for a 64 MiB synthetic
 *    library where transfer dominates, vs `curl` + `sha256sum` alone;
 * 3. the loader's SHA-256 (node:crypto, streaming) vs `openssl dgst -sha256`;
 * 4. 8 concurrent cold installs vs one (bytes served must equal one download).
 *
 * Usage: deno run -A bench/distribution.ts <kernel library>
 *
 * @module
 */

import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { sha256File } from "../loader/_install/hash.ts";
import { generateSigningKey, publicKeyBase64 } from "../release/minisign_sign.ts";
import { writeRelease } from "../release/write_release.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { installed } from "../lib/process.ts";
import { reportUncaught } from "../lib/task.ts";

// Run by `deno task bench`: a failure is written as every task writes one.
reportUncaught("deno task bench");

const library = Deno.args[0];
if (!library) {
  throw new Error(
    "Cannot run the distribution benchmarks: no kernel library given\nHint: run `deno task bench`",
  );
}
const RUNS = Number(Deno.env.get("KREPIS_BENCH_RUNS") ?? 15);
const target = resolveTarget();
const work = await Deno.makeTempDir({ prefix: "krepis-bench-" });
const rows: [string, string, string, string][] = [];

/** Median wall time (ms) of `runs` executions of `run`, after one warm-up. */
async function median(run: () => Promise<void>, runs = RUNS): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function exec(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  const output = await new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/** Per-key medians of the JSON objects `runs` executions of a command print. */
async function medians(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  runs = RUNS,
): Promise<Record<string, number>> {
  const samples: Record<string, number>[] = [];
  for (let i = 0; i <= runs; i++) {
    const output = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
      .output();
    if (!output.success) {
      throw new Error(`Cannot run ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
    }
    if (i > 0) samples.push(JSON.parse(new TextDecoder().decode(output.stdout))); // after a warm-up
  }
  const result: Record<string, number> = {};
  for (const key of Object.keys(samples[0])) {
    const values = samples.map((s) => s[key]).sort((a, b) => a - b);
    result[key] = values[Math.floor(values.length / 2)];
  }
  return result;
}

function row(name: string, ours: number, baselineName: string, baseline: number, unit = "ms") {
  rows.push([
    name,
    `${ours.toFixed(1)} ${unit}`,
    `${baselineName} ${baseline.toFixed(1)} ${unit}`,
    `${(ours / baseline).toFixed(2)}x`,
  ]);
}

async function release(dir: string, lib: string) {
  const key = await generateSigningKey();
  await writeRelease({
    outDir: dir,
    version: VERSION,
    abi: { ...LOADER_ABI },
    artifacts: [{ triple: target.triple, library: lib }],
    key,
  });
  return publicKeyBase64(key);
}

const deno = Deno.execPath();
// As a user runs it: no config (the loader needs none).
const cli = ["run", "--allow-all", "--no-config", `${REPO_ROOT}/loader/cli.ts`, "init"];

try {
  // A signed release of the real kernel, served on loopback.
  const realDir = `${work}/real`;
  const realKey = await release(realDir, library);
  const host = ReleaseHost.start(realDir);
  try {
    const env = (cache: string) => ({
      KREPIS_MIRROR: host.url,
      KREPIS_CACHE_DIR: cache,
      KREPIS_TRUSTED_KEY: realKey,
      KREPIS_KERNEL_PATH: "",
    });

    // 1. warm load() vs bare dlopen, whole process each.
    const warmCache = `${work}/warm-cache`;
    await exec(deno, cli, env(warmCache));
    const cached = [...Deno.readDirSync(`${warmCache}/${VERSION}/${target.triple}`)].find((e) =>
      e.isDirectory
    )!.name;
    const cachedPath = `${warmCache}/${VERSION}/${target.triple}/${cached}/${target.file}`;
    await Deno.writeTextFile(
      `${work}/warm_load.ts`,
      `import { load } from ${
        JSON.stringify(pathToFileURL(`${REPO_ROOT}/loader/mod.ts`).href)
      };\nusing k = await load();\nif (k.abi.major !== ${LOADER_ABI.major}) Deno.exit(1);\n`,
    );
    await Deno.writeTextFile(
      `${work}/bare_dlopen.ts`,
      `const lib = Deno.dlopen(${
        JSON.stringify(cachedPath)
      }, { krepis_abi_version: { parameters: [], result: "u32" } });\nif (lib.symbols.krepis_abi_version() >>> 16 !== ${LOADER_ABI.major}) Deno.exit(1);\nlib.close();\n`,
    );
    const warmEnv = { ...env(warmCache), KREPIS_OFFLINE: "1" };
    const warm = await median(() =>
      exec(deno, ["run", "-A", "--no-config", `${work}/warm_load.ts`], warmEnv)
    );
    const bare = await median(() =>
      exec(deno, ["run", "-A", "--no-config", `${work}/bare_dlopen.ts`])
    );
    row("warm load() from cache (process)", warm, "bare Deno.dlopen", bare);
    await Deno.writeTextFile(`${work}/empty.ts`, "");
    const empty = await median(() => exec(deno, ["run", "-A", "--no-config", `${work}/empty.ts`]));
    rows.push(["  an empty deno run, for reference", `${empty.toFixed(1)} ms`, "", ""]);

    // 1b. Where the warm load() time goes, phase by phase, medians over processes.
    const loaderUrl = JSON.stringify(pathToFileURL(`${REPO_ROOT}/loader/mod.ts`).href);
    const minisignUrl = JSON.stringify(pathToFileURL(`${REPO_ROOT}/loader/minisign.ts`).href);
    await Deno.writeTextFile(
      `${work}/phases.ts`,
      `const t0 = performance.now();
const { install, load } = await import(${loaderUrl});
const t1 = performance.now();
const installed = await install();
const t2 = performance.now();
using k = await load({ path: installed.path });
const t3 = performance.now();
console.log(JSON.stringify({ start: t0, modules: t1 - t0, install: t2 - t1, open: t3 - t2 }));
`,
    );
    await Deno.writeTextFile(
      `${work}/verify.ts`,
      `const { parseMinisignPublicKey, verifyMinisign } = await import(${minisignUrl});
const dir = ${JSON.stringify(`${warmCache}/${VERSION}`)};
const bytes = await Deno.readFile(dir + "/manifest.json");
const signature = await Deno.readTextFile(dir + "/manifest.json.minisig");
const key = parseMinisignPublicKey(${JSON.stringify(realKey)});
const t0 = performance.now();
await verifyMinisign(bytes, signature, [key], "manifest.json");
const t1 = performance.now();
await verifyMinisign(bytes, signature, [key], "manifest.json");
console.log(JSON.stringify({ first: t1 - t0, second: performance.now() - t1 }));
`,
    );
    const phases = await medians(deno, ["run", "-A", "--no-config", `${work}/phases.ts`], warmEnv);
    const verify = await medians(deno, ["run", "-A", "--no-config", `${work}/verify.ts`], warmEnv);
    for (
      const [name, value] of [
        ["Deno start-up until the script runs", phases.start],
        ["loading the loader's modules", phases.modules],
        ["warm install(): stamp, cached manifest and its signature", phases.install],
        ["  of which the first Ed25519 verification (WebCrypto start-up)", verify.first],
        ["  a second verification, for comparison", verify.second],
        ["load({ path }): dlopen, symbols, ABI check", phases.open],
      ] as const
    ) rows.push([`  ${name}`, `${value.toFixed(2)} ms`, "", ""]);

    // 2. cold krepis init vs an empty deno run + curl + sha256sum, real kernel.
    let n = 0;
    const cold = await median(() => exec(deno, cli, env(`${work}/cold-${n++}`)));
    const url = `${host.url}/v${VERSION}/${target.file}`;
    const curl = await median(() =>
      exec("sh", [
        "-c",
        `'${deno}' run --no-config '${work}/empty.ts' && curl -sf -o '${work}/curl.bin' '${url}' && sha256sum '${work}/curl.bin' >/dev/null`,
      ])
    );
    row(
      `cold krepis init, ${(Deno.statSync(library).size / 1024).toFixed(0)} KiB kernel (process)`,
      cold,
      "empty deno run + curl + sha256sum",
      curl,
    );

    // 4. 8 concurrent cold installs vs one.
    const before = host.bytesSent;
    const one = await median(() => exec(deno, cli, env(`${work}/one-${n++}`)), 5);
    const oneBytes = (host.bytesSent - before) / 6;
    const sentBefore = host.bytesSent;
    const eight = await median(async () => {
      const cache = `${work}/eight-${n++}`;
      await Promise.all(Array.from({ length: 8 }, () => exec(deno, cli, env(cache))));
    }, 5);
    const eightBytes = (host.bytesSent - sentBefore) / 6;
    row("8 concurrent cold installs (one cache)", eight, "1 install", one);
    rows.push([
      "  bytes served per round",
      `${eightBytes.toFixed(0)} B`,
      `1 install ${oneBytes.toFixed(0)} B`,
      `${(eightBytes / oneBytes).toFixed(2)}x`,
    ]);
  } finally {
    await host.close();
  }

  // 2b. the same with a 64 MiB library, where the transfer dominates.
  const big = `${work}/big.so`;
  const random = new Uint8Array(64 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 65536) {
    crypto.getRandomValues(random.subarray(i, i + 65536));
  }
  // Half random, half zeros: compresses like a binary with data sections.
  random.fill(0, random.length / 2);
  await Deno.writeFile(big, random);
  const bigDir = `${work}/big-release`;
  const bigKey = await release(bigDir, big);
  const bigHost = ReleaseHost.start(bigDir);
  try {
    let n = 0;
    const env = { KREPIS_MIRROR: bigHost.url, KREPIS_TRUSTED_KEY: bigKey, KREPIS_KERNEL_PATH: "" };
    const cold = await median(
      () => exec(deno, cli, { ...env, KREPIS_CACHE_DIR: `${work}/big-cold-${n++}` }),
      5,
    );
    const url = `${bigHost.url}/v${VERSION}/${target.file}`;
    const curl = await median(
      () =>
        exec("sh", [
          "-c",
          `curl -sf -o '${work}/curl-big.bin' '${url}' && sha256sum '${work}/curl-big.bin' >/dev/null`,
        ]),
      5,
    );
    row("cold krepis init, 64 MiB library (process)", cold, "curl + sha256sum", curl);
  } finally {
    await bigHost.close();
  }

  // 3. SHA-256 throughput on a 256 MiB file.
  const hashFile = `${work}/hash.bin`;
  const block = crypto.getRandomValues(new Uint8Array(65536));
  using f = await Deno.open(hashFile, { write: true, create: true });
  for (let i = 0; i < 4096; i++) await f.write(block);
  const ours = await median(async () => void await sha256File(hashFile), 5);
  const mib = 256;
  if (await installed("openssl", ["version"])) {
    const openssl = await median(() => exec("openssl", ["dgst", "-sha256", hashFile]), 5);
    rows.push([
      "loader SHA-256 (node:crypto), 256 MiB",
      `${(mib / (ours / 1000)).toFixed(0)} MiB/s`,
      `openssl dgst ${(mib / (openssl / 1000)).toFixed(0)} MiB/s`,
      `${(openssl / ours).toFixed(2)}x throughput`,
    ]);
  } else {
    rows.push([
      "loader SHA-256 (node:crypto), 256 MiB",
      `${(mib / (ours / 1000)).toFixed(0)} MiB/s`,
      "openssl: skipped, not installed",
      "",
    ]);
  }
} finally {
  await Deno.remove(work, { recursive: true });
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`\ndistribution (median of ${RUNS} runs; ratios to the baseline measured in this run)`);
for (const r of rows) console.log(`  ${r.map((c, i) => c.padEnd(widths[i])).join("  ")}`);
