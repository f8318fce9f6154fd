/**
 * `deno task demo [--target <triple>]… [--out <dir>]`: the whole
 * distribution flow on this machine, with embedded defaults.
 *
 * 1. builds the kernel for this machine (release profile), and for each
 *    `--target` too (`--target aarch64-unknown-linux-gnu` on x86_64 Linux:
 *    both Linux targets);
 * 2. writes one signed release directory of them with a throwaway key
 *    (mirror layout: `<dir>/v<version>/…`, plus the public key as
 *    `<dir>/key.pub`); with `--out`, the key is made once and kept there
 *    (`tools/demo_key.ts`), so a second run on the folder signs with it;
 * 3. serves it on loopback;
 * 4. runs `krepis init` against it (a child process, into a fresh cache);
 *    with more than one target, `krepis init --all`, which installs each;
 * 5. `load()`s this machine's kernel from that cache and prints its build
 *    info, the verified hash and ABI, and timings.
 *
 * With `--out <dir>` the release directory and key are kept for inspection
 * (`minisign -Vm <dir>/v<version>/manifest.json -p <dir>/key.pub`).
 *
 * @module
 */

import { commandLine, exitUsage, invocationPath } from "../lib/task.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { preferRustupCargo } from "../lib/toolchain.ts";
import { buildTarget } from "../matrix/build.ts";
import { loadTargetTable, targetRow } from "../matrix/targets.ts";
import { load, LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { keyId, publicKeyBase64, publicKeyFile } from "../release/minisign_sign.ts";
import { demoKey } from "./demo_key.ts";
import { writeRelease } from "../release/write_release.ts";
import { ReleaseHost } from "../release/serve_dir.ts";

const { values } = commandLine({
  name: "deno task demo",
  summary: "the whole distribution flow on this machine: build, sign, serve, krepis init, load()",
  usage: ["[--target <triple>]… [--out <dir>]"],
  options: {
    target: {
      type: "string",
      multiple: true,
      value: "<triple>",
      help: "build this target too, besides this machine's, and krepis init --all",
    },
    out: {
      type: "string",
      value: "<dir>",
      help:
        "keep the signed release (mirror layout) and key.pub there, and sign with the key an earlier run kept there (default: a temporary directory, removed)",
    },
  },
  env: {
    CARGO_HOME: "where rustup's cargo is looked for (default ~/.cargo); it goes first on PATH",
    RUSTC_WRAPPER: "a compiler wrapper cargo uses; when unset and sccache is installed, sccache",
  },
  exitCodes: {
    0: "the kernel was built, released, installed, verified and loaded",
    1: "a step failed (build, krepis init or load(); the message names it)",
    2: "usage error",
  },
  more: `The release is signed with a throwaway key and served on loopback; krepis init runs
with KREPIS_MIRROR, KREPIS_CACHE_DIR (a fresh cache) and KREPIS_TRUSTED_KEY set to them.
Serve a kept release again with \`deno task serve <dir>\`.`,
});
// rustup's cargo for every child, whatever else is on PATH (Debian's /usr/bin/cargo).
preferRustupCargo();

const ms = (from: number) => `${(performance.now() - from).toFixed(0)} ms`;
const step = (text: string) => console.log(`\n> ${text}`);

const started = performance.now();
const target = resolveTarget();
const rows = await loadTargetTable();
// This machine's target first, then each --target once (unknown ones fail here, listing the table).
const triples = [...new Set([target.triple, ...(values.target ?? [])])];
// Every target is checked before the first (minutes-long) build starts.
let targetRows;
try {
  targetRows = triples.map((triple) => targetRow(rows, triple));
} catch (error) {
  exitUsage((error as Error).message);
}
// With --out, the key is kept there, so a second run signs with the same
// key (and a folder whose key cannot be kept is refused before any build).
const releaseDir = values.out
  ? invocationPath(values.out)
  : await Deno.makeTempDir({ prefix: "krepis-demo-release-" });
const { key, kept } = await demoKey(values.out ? releaseDir : undefined);
const artifacts = [];
for (const [i, triple] of triples.entries()) {
  step(`build the kernel for ${triple === target.triple ? "this machine" : triple}`);
  // The same build CI ships: the table's tool (cargo-zigbuild with the glibc
  // floor on Linux), post-build checks, dist/<triple>/.
  const { library } = await buildTarget(targetRows[i]);
  artifacts.push({ triple, library });
}
const buildTime = ms(started);

step(
  `write a signed release directory (${values.out ? "the key kept in --out" : "throwaway key"})`,
);
if (kept) console.log(`  signing with the key kept in ${releaseDir} (${keyId(key)})`);
const manifest = await writeRelease({
  outDir: releaseDir,
  version: VERSION,
  abi: { ...LOADER_ABI },
  artifacts,
  key,
});
const entry = manifest.targets.find((t) => t.triple === target.triple)!;
await Deno.writeTextFile(`${releaseDir}/key.pub`, publicKeyFile(key));
for await (const entry of Deno.readDir(`${releaseDir}/v${VERSION}`)) {
  console.log(`  v${VERSION}/${entry.name}`);
}

step("serve it on loopback");
const host = ReleaseHost.start(releaseDir);
console.log(`  KREPIS_MIRROR=${host.url}`);
const cacheDir = await Deno.makeTempDir({ prefix: "krepis-demo-cache-" });
const env = {
  KREPIS_MIRROR: host.url,
  KREPIS_CACHE_DIR: cacheDir,
  KREPIS_TRUSTED_KEY: publicKeyBase64(key),
  KREPIS_KERNEL_PATH: "",
};

try {
  const initArgs = triples.length > 1 ? ["init", "--all"] : ["init"];
  step(`krepis ${initArgs.join(" ")}`);
  const initStarted = performance.now();
  const init = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${REPO_ROOT}/loader/cli.ts`, ...initArgs],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!init.success) {
    throw new Error(
      `Cannot finish the demo: krepis ${initArgs.join(" ")} exited with ${init.code}`,
    );
  }
  const initTime = ms(initStarted);

  step("load() from the cache");
  const loadStarted = performance.now();
  using kernel = await load({
    cacheDir,
    mirror: host.url,
    trustedKeys: [publicKeyBase64(key)],
    path: undefined,
  });
  const loadTime = ms(loadStarted);
  const info = kernel.buildInfo();
  console.log(`
krepis ${kernel.version}
  library      ${kernel.path}
  sha256       ${entry.sha256} (verified against the signed manifest)
  signed by    key ${keyId(key)} (${values.out ? (kept ? "kept" : "new, kept") : "throwaway"})
  ABI verified ${kernel.abi.major}.${kernel.abi.minor} (loader needs ${LOADER_ABI.major}.${LOADER_ABI.minor})
  fingerprint  ${kernel.abi.fingerprint}
  target       ${info.target}
  profile      ${info.profile}
  rustc        ${info.rustc}
  git commit   ${info.gitCommit}
  released     ${manifest.targets.map((t) => t.triple).join(", ")}
  timings      build ${buildTime}, krepis ${
    initArgs.join(" ")
  } ${initTime} (whole process), load() ${loadTime}
  served       ${host.served.length} requests, ${host.bytesSent} bytes`);
  if (values.out) {
    console.log(`\nkept ${releaseDir} (mirror layout) and ${releaseDir}/key.pub`);
    console.log(`  minisign -Vm ${releaseDir}/v${VERSION}/manifest.json -p ${releaseDir}/key.pub`);
    console.log(`  (cd ${releaseDir}/v${VERSION} && sha256sum -c SHA256SUMS)`);
  }
} finally {
  await host.close();
  await Deno.remove(cacheDir, { recursive: true });
  if (!values.out) await Deno.remove(releaseDir, { recursive: true });
}
