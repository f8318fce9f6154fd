/**
 * The Rust standard library's source for `-Zbuild-std`, so this Linux
 * machine can build the kernel for targets rustup has no std for here
 * (macOS, Windows).
 *
 * rustup's `rust-src` component is not downloadable here; Debian's
 * `trixie-backports` suite carries `rust-src` of the same upstream versions.
 * {@linkcode ensureBuildStdToolchain} fetches the one whose upstream version
 * equals `rustc -V`'s through a private apt view (its own configuration,
 * lists, cache and an empty package status, passed with `APT_CONFIG`: of
 * the system's apt setup only the archive address and the `Acquire::`
 * settings are read, never its hooks, and nothing of it is changed),
 * unpacks it with `dpkg-deb -x`, and puts its `library/` into a copy of
 * rustup's toolchain (hard links where the file system allows) at
 * `lib/rustlib/src/rust`, all under the tools directory
 * (`KREPIS_TOOLS_DIR`). A stamp file records the version, the package's
 * SHA-256 and the size of the source tree; {@linkcode buildStdToolchain}
 * checks it and the key files, and a damaged copy is made again.
 *
 * @module
 */

import { join } from "node:path";
import { toolsDir } from "./tools_dir.ts";

/** A copy of rustup's toolchain with the std source, for `-Zbuild-std`. */
export interface BuildStdToolchain {
  /** Its `cargo`. */
  cargo: string;
  /** Its `rustc` (set as `RUSTC`, so cargo and cargo-zigbuild use this sysroot). */
  rustc: string;
  /** Its root (`rustc --print sysroot`), with the source at `lib/rustlib/src/rust`. */
  sysroot: string;
  /** The Rust version (`1.95.0`). */
  version: string;
}

/** cargo's arguments that build the std from source (`panic_abort` for the release profile). */
export const BUILD_STD_ARGS = ["-Zbuild-std=std,panic_abort,panic_unwind"];

/** The Debian suite that carries `rust-src` of rustup's stable versions. */
export const DEBIAN_SUITE = "trixie-backports";

/** The stamp file in the toolchain copy. */
const STAMP = "krepis-build-std.json";

/** The marker written first into a copy this module makes (so only such a copy is ever removed). */
const MADE_BY_KREPIS = "krepis-build-std.made";

/** The fixed keyring of Debian's archive, used where the system's source names none. */
const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** Debian's release names, so a Debian archive can be told from other apt sources. */
const DEBIAN_SUITES =
  /^(buster|bullseye|bookworm|trixie|forky|duke|sid|stable|testing|unstable|oldstable|oldoldstable)(-updates|-backports|-proposed-updates)?$/;

/**
 * The environment a cargo build with {@linkcode BUILD_STD_ARGS} needs:
 * `RUSTC` (this sysroot), `RUSTC_BOOTSTRAP=1` (`-Z` flags on stable), and
 * `PATH` with the copy's `bin` first (so a `cargo` that cargo-zigbuild
 * starts is the copy's). `RUSTC_WRAPPER` is emptied: these builds run
 * without sccache, which has not been shown to cache `-Zbuild-std` builds
 * correctly (the std is compiled with this toolchain's source paths and
 * `RUSTC_BOOTSTRAP`).
 *
 * @param t The toolchain.
 * @param path The PATH to extend. @default {Deno.env.get("PATH")}
 */
export function buildStdEnv(
  t: BuildStdToolchain,
  path = Deno.env.get("PATH") ?? "",
): Record<string, string> {
  const bin = join(t.sysroot, "bin");
  const delimiter = Deno.build.os === "windows" ? ";" : ":";
  return {
    RUSTC: t.rustc,
    RUSTC_BOOTSTRAP: "1",
    RUSTC_WRAPPER: "",
    PATH: path ? `${bin}${delimiter}${path}` : bin,
  };
}

/**
 * The upstream part of a Debian version: without the epoch, the Debian
 * revision, and a repack suffix (`1.95.0+dfsg1-2~bpo13+1` → `1.95.0`).
 *
 * @param debianVersion A Debian package version.
 */
export function upstreamVersion(debianVersion: string): string {
  let v = debianVersion.replace(/^\d+:/, "");
  const dash = v.lastIndexOf("-");
  if (dash > 0) v = v.slice(0, dash);
  return v.replace(/[+~].*$/, "");
}

/**
 * The Rust version of a `rustc -V` line, or null for a nightly or beta
 * (Debian packages releases only).
 *
 * @param line `rustc 1.95.0 (59807616e 2026-04-14)`.
 */
export function rustVersion(line: string): string | null {
  const m = /^rustc (\d+\.\d+\.\d+)(\S*)/.exec(line.trim());
  return m && !m[2] ? m[1] : null;
}

/**
 * The Debian version of `rust-src` whose upstream part is `version`, out
 * of `apt-cache madison rust-src`'s lines (newest first), or null.
 *
 * @param madison The output of `apt-cache madison rust-src`.
 * @param version The Rust version (`1.95.0`).
 */
export function matchingPackage(madison: string, version: string): string | null {
  for (const line of madison.split("\n")) {
    const [name, candidate] = line.split("|").map((part) => part.trim());
    if (name === "rust-src" && candidate && upstreamVersion(candidate) === version) {
      return candidate;
    }
  }
  return null;
}

/** A Debian archive found in the system's apt sources. */
export interface DebianArchive {
  /** Its address (as the system's sources spell it). */
  uri: string;
  /** The keyring its signatures are checked with. */
  keyring: string;
}

/**
 * The Debian archive the system's apt sources use: the first `deb` entry
 * whose suite is a Debian release (not its security archive), from
 * `<etc>/sources.list`, then `<etc>/sources.list.d/*.list` and `*.sources`
 * (deb822) in name order.
 *
 * @param etc apt's configuration directory. @default {"/etc/apt"}
 * @returns It, or null when no source is a Debian archive.
 */
export async function debianArchive(etc = "/etc/apt"): Promise<DebianArchive | null> {
  const files = [join(etc, "sources.list")];
  try {
    const names = [];
    for await (const entry of Deno.readDir(join(etc, "sources.list.d"))) {
      if (entry.isFile && /\.(list|sources)$/.test(entry.name)) names.push(entry.name);
    }
    files.push(...names.sort().map((name) => join(etc, "sources.list.d", name)));
  } catch {
    // no sources.list.d
  }
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    const entries = file.endsWith(".sources") ? deb822Entries(text) : oneLineEntries(text);
    const found = entries.find((e) =>
      e.types.includes("deb") && e.suites.some((s) => DEBIAN_SUITES.test(s)) &&
      e.components.includes("main") && e.uris.length > 0
    );
    if (found) return { uri: found.uris[0].replace(/\/+$/, ""), keyring: found.keyring };
  }
  return null;
}

interface SourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  keyring: string;
}

function deb822Entries(text: string): SourceEntry[] {
  return text.split(/\n\s*\n/).map((stanza) => {
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      if (line.startsWith("#")) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    const list = (key: string) => (fields.get(key) ?? "").split(/\s+/).filter(Boolean);
    const enabled = (fields.get("enabled") ?? "yes").toLowerCase() !== "no";
    const signedBy = fields.get("signed-by") ?? "";
    return {
      types: enabled ? list("types") : [],
      uris: list("uris"),
      suites: list("suites"),
      components: list("components"),
      // An inline key block is not a path: the fixed keyring is used then.
      keyring: signedBy.startsWith("/") ? signedBy : DEBIAN_KEYRING,
    };
  });
}

function oneLineEntries(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[2] ?? "")?.[1];
    entries.push({
      types: [m[1]],
      uris: [m[3]],
      suites: [m[4]],
      components: m[5].split(/\s+/).filter(Boolean),
      keyring: signedBy ?? DEBIAN_KEYRING,
    });
  }
  return entries;
}

/**
 * The private apt view's files: `apt.conf` (its own lists, cache, an empty
 * status and this source list only) and `sources.list` (`<suite> main` of
 * `archive`).
 *
 * apt reads the `APT_CONFIG` file first, then every file of
 * `Dir::Etc::Parts` and then `Dir::Etc::Main`: both point into the private
 * directory (an empty folder, a file never written), so none of the
 * system's settings or hooks (`APT::Update::Post-Invoke…`, which write
 * system state) apply. The system's `Acquire::` settings, how this machine
 * reaches its archive (a proxy, a snapshot's expired `Valid-Until`), are
 * carried over as `acquire`.
 *
 * @param dir The private apt directory.
 * @param archive The Debian archive.
 * @param root Whether apt runs as root (its download sandbox user is then root too).
 * @param acquire The system's `Acquire::` lines ({@linkcode acquireSettings}).
 */
export function aptView(
  dir: string,
  archive: DebianArchive,
  root: boolean,
  acquire: string[] = [],
): { conf: string; sources: string } {
  const q = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;
  const lines = [
    `Dir::State::Lists ${q(join(dir, "lists"))};`,
    `Dir::State::status ${q(join(dir, "status"))};`,
    `Dir::Cache ${q(join(dir, "cache"))};`,
    `Dir::Etc::SourceList ${q(join(dir, "sources.list"))};`,
    `Dir::Etc::SourceParts ${q(join(dir, "parts"))};`,
    `Dir::Etc::Preferences ${q(join(dir, "preferences"))};`,
    `Dir::Etc::PreferencesParts ${q(join(dir, "parts"))};`,
    `Dir::Etc::Parts ${q(join(dir, "parts"))};`,
    `Dir::Etc::Main ${q(join(dir, "main.conf"))};`,
    ...acquire.filter((line) => !line.startsWith("Acquire::Languages")),
    `Acquire::Languages "none";`,
  ];
  if (root) lines.push(`APT::Sandbox::User "root";`);
  return {
    conf: lines.join("\n") + "\n",
    sources: `deb [signed-by=${archive.keyring}] ${archive.uri} ${DEBIAN_SUITE} main\n`,
  };
}

/**
 * The `Acquire::` lines of `apt-config dump` (how this machine reaches its
 * archive), each a complete `key "value";` line; nothing else.
 *
 * @param dump The output of `apt-config dump`.
 */
export function acquireSettings(dump: string): string[] {
  return dump.split("\n").map((line) => line.trim()).filter((line) =>
    /^Acquire::[A-Za-z0-9:_.-]+ "[^"\n]*";$/.test(line)
  );
}

/** Where the copies live: `<tools>/build-std`. */
export function buildStdDir(): string {
  return join(toolsDir(), "build-std");
}

/** What the stamp records. */
interface Stamp {
  version: string;
  package: string;
  sha256: string;
  /** Files and bytes of `lib/rustlib/src/rust/library`. */
  files: number;
  bytes: number;
}

async function treeSize(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for await (const entry of Deno.readDir(d)) {
      const path = join(d, entry.name);
      if (entry.isDirectory) stack.push(path);
      else if (entry.isFile) {
        files++;
        bytes += (await Deno.stat(path)).size;
      }
    }
  }
  return { files, bytes };
}

async function capture(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`Cannot run ${command}: ${(error as Error).message}`);
  }
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`Cannot run ${command} ${args.join(" ")}: exited with ${output.code}: ${err}`);
  }
  return new TextDecoder().decode(output.stdout).trim();
}

/** rustup's toolchain on PATH: its sysroot and Rust version. */
async function rustupToolchain(): Promise<{ sysroot: string; version: string; line: string }> {
  const line = await capture("rustc", ["-V"]);
  const version = rustVersion(line);
  if (!version) {
    throw new Error(
      `Cannot build the std from source: ${line} is not a stable release\nHint: Debian packages the source of stable releases only; use rustup's stable toolchain`,
    );
  }
  return { sysroot: await capture("rustc", ["--print", "sysroot"]), version, line };
}

/** The copy for `version` under `dir`: its root. */
function copyDir(dir: string, version: string): string {
  return join(dir, version, "toolchain");
}

function exe(name: string): string {
  return Deno.build.os === "windows" ? `${name}.exe` : name;
}

/**
 * Why the copy at `sysroot` is not usable, or null when it is intact: the
 * stamp is there and names `version`, the toolchain's programs and the
 * std's sources are there, and the source tree has the files and bytes the
 * stamp recorded.
 *
 * @param sysroot The copy's root.
 * @param version The Rust version it must be for.
 */
export async function damage(sysroot: string, version: string): Promise<string | null> {
  let stamp: Stamp;
  try {
    stamp = JSON.parse(await Deno.readTextFile(join(sysroot, STAMP)));
  } catch {
    return "no stamp (an unfinished or foreign copy)";
  }
  if (stamp.version !== version) return `made for ${stamp.version}, not ${version}`;
  const library = join(sysroot, "lib", "rustlib", "src", "rust", "library");
  for (
    const file of [
      join(sysroot, "bin", exe("rustc")),
      join(sysroot, "bin", exe("cargo")),
      join(library, "Cargo.lock"),
      join(library, "std", "src", "lib.rs"),
      join(library, "core", "src", "lib.rs"),
      join(library, "alloc", "src", "lib.rs"),
    ]
  ) {
    try {
      if (!(await Deno.stat(file)).isFile) return `${file} is not a file`;
    } catch {
      return `${file} is missing`;
    }
  }
  let size: { files: number; bytes: number };
  try {
    size = await treeSize(library);
  } catch (error) {
    return `its source cannot be read: ${(error as Error).message}`;
  }
  if (size.files !== stamp.files || size.bytes !== stamp.bytes) {
    return `its source has ${size.files} files, ${size.bytes} bytes; ${stamp.files} files, ${stamp.bytes} bytes were unpacked`;
  }
  const unlinked = await llvmLinks(sysroot, false);
  if (unlinked.length) return `${unlinked[0]} is missing (rust-objcopy's LLVM library)`;
  return null;
}

/**
 * rustup's `rust-objcopy` (which rustc runs to strip Mach-O files) looks
 * for its LLVM library beside itself (`lib/rustlib/<host>/lib`), where
 * rustup does not put it: rustc's `strip` then fails. The copy gets a link
 * to the toolchain's `lib/libLLVM*` there (rustup's own files are not
 * changed). Returns the links still missing (none after a repair).
 */
async function llvmLinks(sysroot: string, repair: boolean): Promise<string[]> {
  const missing: string[] = [];
  const libDir = join(sysroot, "lib");
  const llvm: string[] = [];
  try {
    for await (const entry of Deno.readDir(libDir)) {
      if (entry.isFile && entry.name.startsWith("libLLVM")) llvm.push(entry.name);
    }
    for await (const host of Deno.readDir(join(libDir, "rustlib"))) {
      const hostDir = join(libDir, "rustlib", host.name);
      if (!(await exists(join(hostDir, "bin", exe("rust-objcopy"))))) continue;
      for (const name of llvm) {
        const link = join(hostDir, "lib", name);
        if (await exists(link)) continue;
        if (!repair) {
          missing.push(link);
          continue;
        }
        await Deno.mkdir(join(hostDir, "lib"), { recursive: true });
        await Deno.link(join(libDir, name), link).catch(() =>
          Deno.copyFile(join(libDir, name), link)
        );
      }
    }
  } catch {
    // no lib/ or rustlib/: the file checks name what is missing
  }
  return missing;
}

function toolchainAt(sysroot: string, version: string): BuildStdToolchain {
  return {
    cargo: join(sysroot, "bin", exe("cargo")),
    rustc: join(sysroot, "bin", exe("rustc")),
    sysroot,
    version,
  };
}

/**
 * The prepared toolchain for rustup's Rust version, if present and intact
 * (see {@linkcode damage}); otherwise null. Runs `rustc -V` once and reads
 * the copy's stamp and source tree.
 *
 * @param dir Where the copies live. @default {buildStdDir()}
 */
export async function buildStdToolchain(dir = buildStdDir()): Promise<BuildStdToolchain | null> {
  let version: string;
  try {
    version = (await rustupToolchain()).version;
  } catch {
    return null;
  }
  const sysroot = copyDir(dir, version);
  return (await damage(sysroot, version)) === null ? toolchainAt(sysroot, version) : null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Removes a copy this module made (it has the marker); refuses anything else. */
/**
 * Makes `dir` (the version's work folder: apt view, download, unpacked
 * source) ours, or checks that it is: a new folder gets the marker; an
 * existing one without it is refused, so nothing in a folder this code did
 * not make is ever removed or rewritten.
 */
async function claimWorkDir(dir: string): Promise<void> {
  const marker = join(dir, MADE_BY_KREPIS);
  if (await exists(marker)) return;
  // A folder whose copy this code made (before the folder got a marker of its own) is ours.
  for (const copy of ["toolchain", "toolchain.partial"]) {
    if (await exists(join(dir, copy, MADE_BY_KREPIS))) {
      await Deno.writeTextFile(marker, "");
      return;
    }
  }
  let empty = true;
  try {
    for await (const entry of Deno.readDir(dir)) {
      // The copy itself carries its own marker and is checked on its own.
      if (entry.name !== "toolchain" && entry.name !== "toolchain.partial") empty = false;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (!empty) {
    throw new Error(
      `Cannot prepare the std source in ${dir}: it holds files deno task setup did not make (no ${MADE_BY_KREPIS})\nHint: move the folder away (or set KREPIS_TOOLS_DIR to another folder), then run deno task setup --build --target <triple> again`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(marker, "");
}

async function removeOwnCopy(dir: string): Promise<void> {
  if (!(await exists(dir))) return;
  if (!(await exists(join(dir, MADE_BY_KREPIS)))) {
    throw new Error(
      `Cannot replace ${dir}: it was not made by deno task setup (no ${MADE_BY_KREPIS})\nHint: move it away, then run deno task setup --build --target <triple> again`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}

/**
 * The prepared toolchain, made first if missing or damaged: fetches the
 * matching `rust-src` through the private apt view, copies rustup's
 * toolchain, puts the source in, and writes the stamp last.
 *
 * @param log Where progress lines go. @default {console.log}
 * @param dir Where the copies live. @default {buildStdDir()}
 * @throws {Error} `Cannot …` with a hint: not Linux with apt, no Debian
 *   archive among the system's sources, no `rust-src` of this version.
 */
export async function ensureBuildStdToolchain(
  log: (line: string) => void = console.log,
  dir = buildStdDir(),
): Promise<BuildStdToolchain> {
  const rustup = await rustupToolchain();
  const { version } = rustup;
  const base = join(dir, version);
  const sysroot = copyDir(dir, version);
  // A copy made before the LLVM link was added gets it in place.
  if (await exists(join(sysroot, MADE_BY_KREPIS))) await llvmLinks(sysroot, true);
  const why = await damage(sysroot, version);
  if (why === null) return toolchainAt(sysroot, version);
  if (await exists(sysroot)) {
    log(`build-std: the copy at ${sysroot} is damaged (${why}): made again`);
  }

  const archive = await debianArchive();
  if (!archive) {
    throw new Error(
      `Cannot fetch the Rust std source: no Debian archive among this system's apt sources (/etc/apt)\nHint: this needs a Debian (or Debian-based with Debian's archive configured) Linux with apt-get and dpkg-deb`,
    );
  }
  // Everything below is removed or rewritten: only in a folder this code made.
  await claimWorkDir(base);
  const aptDir = join(base, "apt");
  for (const sub of ["lists/partial", "cache/archives/partial", "parts", "download"]) {
    await Deno.mkdir(join(aptDir, ...sub.split("/")), { recursive: true });
  }
  // The system's own settings, read without the private view.
  const acquire = acquireSettings(await capture("apt-config", ["dump"]));
  const view = aptView(aptDir, archive, Deno.uid() === 0, acquire);
  await Deno.writeTextFile(join(aptDir, "apt.conf"), view.conf);
  await Deno.writeTextFile(join(aptDir, "sources.list"), view.sources);
  await Deno.writeTextFile(join(aptDir, "status"), "");
  const env = { APT_CONFIG: join(aptDir, "apt.conf") };
  log(`build-std: apt-get update (${DEBIAN_SUITE}, private lists in ${aptDir})`);
  await capture("apt-get", ["update", "-qq"], env);
  const pkg = matchingPackage(await capture("apt-cache", ["madison", "rust-src"], env), version);
  if (!pkg) {
    throw new Error(
      `Cannot fetch the Rust std source: ${DEBIAN_SUITE} has no rust-src ${version} (the toolchain is ${rustup.line})\nHint: switch to a Rust release that ${DEBIAN_SUITE} carries (apt-cache madison rust-src with APT_CONFIG=${env.APT_CONFIG} lists them)`,
    );
  }
  const download = join(aptDir, "download");
  for await (const entry of Deno.readDir(download)) {
    await Deno.remove(join(download, entry.name), { recursive: true });
  }
  log(`build-std: apt-get download rust-src=${pkg}`);
  const got = await new Deno.Command("apt-get", {
    args: ["download", "-qq", `rust-src=${pkg}`],
    env,
    cwd: download,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const debs = [];
  for await (const entry of Deno.readDir(download)) {
    if (entry.name.endsWith(".deb")) debs.push(entry.name);
  }
  if (!got.success || debs.length !== 1) {
    throw new Error(
      `Cannot download rust-src=${pkg}: apt-get exited with ${got.code}: ${
        new TextDecoder().decode(got.stderr).trim()
      }\nHint: check the network access to the Debian archive, then run this again`,
    );
  }
  const deb = join(download, debs[0]);
  const digest = await sha256(deb);

  // Make the copy beside its final place, then move it there: a crash leaves
  // a partial directory (with the marker) that the next run removes.
  const partial = `${sysroot}.partial`;
  await removeOwnCopy(partial);
  await removeOwnCopy(sysroot);
  log(`build-std: copying ${rustup.sysroot} (hard links where possible)`);
  await Deno.mkdir(partial, { recursive: true });
  await Deno.writeTextFile(join(partial, MADE_BY_KREPIS), "");
  for await (const entry of Deno.readDir(rustup.sysroot)) {
    const from = join(rustup.sysroot, entry.name);
    try {
      await capture("cp", ["-al", from, partial]);
    } catch {
      await capture("cp", ["-a", from, partial]);
    }
  }
  const unpacked = join(base, "unpacked");
  await Deno.remove(unpacked, { recursive: true }).catch(() => {});
  log(`build-std: dpkg-deb -x ${debs[0]}`);
  await capture("dpkg-deb", ["-x", deb, unpacked]);
  const srcRoot = join(unpacked, "usr", "src", `rustc-${version}`);
  const rustSrc = join(partial, "lib", "rustlib", "src");
  // A linked-in source from rustup would be the original's files: unlink, never edit.
  await Deno.remove(rustSrc, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(rustSrc, "rust"), { recursive: true });
  await Deno.rename(join(srcRoot, "library"), join(rustSrc, "rust", "library"));
  await Deno.remove(unpacked, { recursive: true });
  const size = await treeSize(join(rustSrc, "rust", "library"));
  const stamp: Stamp = { version, package: `rust-src=${pkg}`, sha256: digest, ...size };
  await llvmLinks(partial, true);
  await Deno.writeTextFile(join(partial, STAMP), JSON.stringify(stamp, null, 2) + "\n");
  await Deno.rename(partial, sysroot);
  const left = await damage(sysroot, version);
  if (left) throw new Error(`Cannot prepare the std source at ${sysroot}: ${left}`);
  log(`build-std: ready: ${sysroot} (rust-src=${pkg}, sha256 ${digest})`);
  return toolchainAt(sysroot, version);
}
