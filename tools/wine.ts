/**
 * Runs Windows x86_64 programs on an x86_64 Linux machine: npm's Windows
 * Deno, the kernel's Rust unit tests and the loader's Deno tests, under
 * Wine 10, so that the Windows rules (file locking, opening a directory,
 * drive letters) are tested here and not first on a user's machine.
 *
 * What it needs, all made by `deno task setup` on x86_64 Linux and kept in
 * the private tools directory (`KREPIS_TOOLS_DIR`):
 *
 * - a Debian trixie root holding Wine 10 ({@linkcode wineRoot}), made by
 *   `mmdebstrap --variant=apt --include=wine,wine64 trixie <dir> <mirror>`,
 *   where the mirror is the one this machine's apt sources name
 *   ({@linkcode debianMirror}). Wine is never installed on the host:
 *   bookworm's Wine 8 cannot run Deno (it lacks `bcryptprimitives.dll`),
 *   and trixie's would upgrade the host's C library. The root is checked
 *   for integrity ({@linkcode wineRootState}: a stamp and its key files) and
 *   made again when damaged;
 * - Deno for Windows x86_64, from npm (`@deno/win32-x64`).
 *
 * The root is entered in a private mount namespace (`unshare --user
 * --map-root-user --mount`): the repository, the Windows Deno and a temp
 * folder are bind-mounted inside at their own paths, so a path on this
 * machine is the same path under Wine's `Z:` drive, and no mount is visible
 * outside. Where that is impossible (not x86_64 Linux, no user or mount
 * namespaces), the probe says why and the tests are skipped.
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { outputWithin } from "../lib/process.ts";
import { toolsDir } from "./aarch64_emulator.ts";

/** The Windows Deno run under Wine: the version `.dvmrc` names. */
export const WINDOWS_DENO_VERSION = "2.9.6";

/** Its npm package. */
export const WINDOWS_DENO_PACKAGE = "@deno/win32-x64";

/** The Debian suite whose Wine (10) runs Deno. */
export const WINE_SUITE = "trixie";

/** The packages `mmdebstrap` puts in the root. */
export const WINE_PACKAGES: readonly string[] = ["wine", "wine64"];

/** The stamp written last into a complete root; its absence means the root is not done. */
export const WINE_STAMP = ".krepis-wine-root.json";

/**
 * Files a working root has, relative to it: Wine's loader and server, the
 * Windows side's core DLLs, and `bcryptprimitives.dll`, the one Deno needs
 * that Wine 8 lacks.
 */
export const WINE_KEY_FILES: readonly string[] = [
  "usr/bin/wine",
  "usr/lib/wine/wine64",
  "usr/lib/wine/wineserver64",
  "usr/lib/x86_64-linux-gnu/wine/x86_64-windows/kernel32.dll",
  "usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntdll.dll",
  "usr/lib/x86_64-linux-gnu/wine/x86_64-windows/bcryptprimitives.dll",
  "usr/lib/x86_64-linux-gnu/wine/x86_64-unix/ntdll.so",
  "usr/bin/env",
  "bin/sh",
];

/** Where the Wine root is kept. */
export function wineRoot(): string {
  return join(toolsDir(), `wine-${WINE_SUITE}`);
}

/** Where `deno task setup` installs the Windows Deno package (an npm prefix). */
export function windowsDenoPrefix(): string {
  return join(toolsDir(), `deno-win32-x64-${WINDOWS_DENO_VERSION}`);
}

/** The Windows Deno executable inside {@linkcode windowsDenoPrefix}. */
export function windowsDenoPath(): string {
  return join(windowsDenoPrefix(), "node_modules", ...WINDOWS_DENO_PACKAGE.split("/"), "deno.exe");
}

/**
 * A path on this machine as Windows programs under Wine see it: the root
 * of this machine is Wine's `Z:` drive.
 *
 * @param path An absolute POSIX path.
 * @returns `Z:\…`.
 * @example
 * ```ts
 * import { windowsPath } from "./wine.ts";
 * windowsPath("/work/repo/a.dll"); // "Z:\\work\\repo\\a.dll"
 * ```
 */
export function windowsPath(path: string): string {
  if (!path.startsWith("/")) {
    throw new Error(
      `Cannot map ${path} to Wine's Z: drive: not absolute\nHint: pass an absolute path (path.resolve() gives one)`,
    );
  }
  return `Z:${path.replaceAll("/", "\\")}`;
}

/**
 * The Debian mirror this machine's apt sources name (the first `deb` entry
 * of the main archive, not a security or third-party one), to make the
 * trixie root from the same place the host installs from.
 *
 * @param sources The text of each apt sources file (one-line `.list` or deb822 `.sources`).
 * @returns The mirror's base URL, or null when none names Debian's main archive.
 * @example
 * ```ts
 * import { debianMirror } from "./wine.ts";
 * debianMirror(["Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n"]);
 * // "http://mirror.example/debian"
 * ```
 */
export function debianMirror(sources: string[]): string | null {
  const candidates: { uri: string; suites: string[] }[] = [];
  for (const text of sources) {
    // deb822 stanzas, separated by blank lines.
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>();
      for (const line of stanza.split("\n")) {
        const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line.trim());
        if (match) fields.set(match[1].toLowerCase(), match[2].trim());
      }
      if (!fields.has("uris")) continue;
      if (fields.get("enabled")?.toLowerCase() === "no") continue;
      if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
      for (const uri of fields.get("uris")!.split(/\s+/)) {
        candidates.push({ uri, suites: (fields.get("suites") ?? "").split(/\s+/) });
      }
    }
    // One-line entries: `deb [options] uri suite components…`.
    for (const line of text.split("\n")) {
      const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (match) candidates.push({ uri: match[1], suites: [match[2]] });
    }
  }
  const debian = candidates.find(({ uri, suites }) =>
    /^(https?|file):/.test(uri) && /\/debian\/?$/.test(uri) &&
    suites.some((suite) => suite && !/-security$|\/updates$/.test(suite))
  );
  return debian ? debian.uri.replace(/\/$/, "") : null;
}

/** The apt sources files of this machine, read (missing ones skipped). */
async function aptSources(): Promise<string[]> {
  const texts: string[] = [];
  const read = (path: string) => Deno.readTextFile(path).then((t) => texts.push(t), () => {});
  await read("/etc/apt/sources.list");
  try {
    for await (const entry of Deno.readDir("/etc/apt/sources.list.d")) {
      if (/\.(list|sources)$/.test(entry.name)) {
        await read(join("/etc/apt/sources.list.d", entry.name));
      }
    }
  } catch {
    // no sources.list.d
  }
  return texts;
}

/** What a root's stamp says. */
export interface WineStamp {
  /** The suite. */
  suite: string;
  /** The packages asked for. */
  packages: string[];
  /** Each key file's size in bytes when the root was made. */
  files: Record<string, number>;
  /** When it was made (ISO 8601). */
  made: string;
}

/**
 * Whether a root is complete and intact: its stamp is there and every key
 * file has the size the stamp recorded.
 *
 * @param root The root folder.
 * @returns `ok`; `absent` (nothing there); `damaged` with the reason (Krepis
 *   made it: it may be made again); or `foreign` (a folder without the stamp:
 *   never removed).
 */
export async function wineRootState(
  root: string = wineRoot(),
): Promise<{ ok: WineStamp } | { absent: true } | { damaged: string } | { foreign: string }> {
  try {
    await Deno.lstat(root);
  } catch {
    return { absent: true };
  }
  let stamp: WineStamp;
  try {
    stamp = JSON.parse(await Deno.readTextFile(join(root, WINE_STAMP)));
  } catch {
    return { foreign: `${root} exists but has no ${WINE_STAMP}: Krepis did not make it` };
  }
  if (stamp.suite !== WINE_SUITE) return { damaged: `it holds ${stamp.suite}, not ${WINE_SUITE}` };
  for (const file of WINE_KEY_FILES) {
    let size: number;
    try {
      size = (await Deno.lstat(join(root, file))).size;
    } catch {
      return { damaged: `${file} is missing` };
    }
    if (stamp.files?.[file] !== size) {
      return {
        damaged: `${file} has ${size} bytes, not the ${stamp.files?.[file]} it was made with`,
      };
    }
  }
  return { ok: stamp };
}

/** The marker Krepis writes into the Wine root's work folder before mmdebstrap runs. */
export const WINE_WORK_MARKER = ".krepis-wine-work.json";

/** The one-line reason the Wine root is not made or entered by another user than root. */
export const WINE_ROOT_ONLY =
  "the Wine root is made and entered as root only; not yet tried as another user";

/** The work folder the Wine root is made in (`<root>.work`, mmdebstrap writing into its `root`). */
export function wineWorkDir(): string {
  return `${wineRoot()}.work`;
}

/**
 * Removes a folder Krepis made, known by a marker file in it; a folder
 * without the marker is refused, and a removal that fails is reported.
 *
 * @param dir The folder (absent: nothing to do).
 * @param marker The marker's name inside it.
 * @param what What the folder is, for the error.
 * @throws {Error} `Cannot remove …` when the marker is missing or the removal fails.
 */
export async function removeOurs(dir: string, marker: string, what: string): Promise<void> {
  try {
    await Deno.lstat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  let mark: Deno.FileInfo | null = null;
  try {
    mark = await Deno.lstat(join(dir, marker));
  } catch {
    // no marker
  }
  if (!mark?.isFile) {
    throw new Error(
      `Cannot remove ${what} ${dir}: it has no ${marker}, so Krepis did not make it\nHint: move it away yourself, or set KREPIS_TOOLS_DIR`,
    );
  }
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (error) {
    throw new Error(
      `Cannot remove ${what} ${dir}: ${
        (error as Error).message
      }\nHint: remove it by hand (as the user that made it), then run deno task setup again`,
    );
  }
}

/**
 * Makes the Wine root when it is absent or damaged (a damaged one, which
 * carries Krepis's stamp, is removed first; a folder without the stamp is
 * never touched). The work folder {@linkcode wineWorkDir} gets Krepis's
 * marker first, `mmdebstrap` writes into its `root`, the stamp is written
 * last, and only then is that renamed into place. A work folder left by a
 * stopped run is removed only when it carries the marker.
 *
 * @param log Where progress lines go. @default {console.log}
 * @returns The root.
 * @throws {Error} When not run as root, mmdebstrap fails, no Debian mirror is configured, or a folder Krepis did not make is in the way.
 */
export async function ensureWineRoot(log: (line: string) => void = console.log): Promise<string> {
  const root = wineRoot();
  const state = await wineRootState(root);
  if ("ok" in state) return root;
  if (Deno.uid() !== 0) {
    throw new Error(
      `Cannot make the Wine root: ${WINE_ROOT_ONLY}\nHint: run deno task setup as root to have it, or go without the Wine suite`,
    );
  }
  if ("foreign" in state) {
    throw new Error(
      `Cannot make the Wine root: ${state.foreign}\nHint: move it away, or set KREPIS_TOOLS_DIR`,
    );
  }
  const mirror = debianMirror(await aptSources());
  if (!mirror) {
    throw new Error(
      "Cannot make the Wine root: no Debian mirror in /etc/apt/sources.list or sources.list.d\nHint: this needs a Debian host whose apt sources name the main archive",
    );
  }
  if ("damaged" in state) {
    log(`setup: the Wine root at ${root} is damaged (${state.damaged}): making it again`);
    await removeOurs(root, WINE_STAMP, "the damaged Wine root");
  }
  const work = wineWorkDir();
  // A work folder left by a stopped run: removed only if it carries our marker.
  await removeOurs(work, WINE_WORK_MARKER, "the Wine root's work folder");
  await Deno.mkdir(toolsDir(), { recursive: true });
  await Deno.mkdir(work);
  await Deno.writeTextFile(
    join(work, WINE_WORK_MARKER),
    JSON.stringify({ made: new Date().toISOString(), for: root }) + "\n",
  );
  const partial = join(work, "root");
  const args = [
    "--variant=apt",
    `--include=${WINE_PACKAGES.join(",")}`,
    WINE_SUITE,
    partial,
    mirror,
  ];
  log(`setup: mmdebstrap ${args.join(" ")}`);
  const status = await new Deno.Command("mmdebstrap", {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    throw new Error(
      `Cannot make the Wine root: mmdebstrap exited with ${status.code}\nHint: apt-get install mmdebstrap (deno task setup does)`,
    );
  }
  const files: Record<string, number> = {};
  for (const file of WINE_KEY_FILES) files[file] = (await Deno.lstat(join(partial, file))).size;
  const stamp: WineStamp = {
    suite: WINE_SUITE,
    packages: [...WINE_PACKAGES],
    files,
    made: new Date().toISOString(),
  };
  await Deno.writeTextFile(join(partial, WINE_STAMP), JSON.stringify(stamp, null, 2) + "\n");
  await Deno.rename(partial, root);
  await removeOurs(work, WINE_WORK_MARKER, "the Wine root's work folder");
  return root;
}

/**
 * The shell script that enters the root: bind-mounts each folder named
 * before `--` at its own path inside, and `/dev`, `/proc`, `/sys`, then
 * runs the rest in the root with a clean environment (HOME, PATH, Wine's
 * prefix, and the variables given), in the current folder.
 */
const ENTER = `set -e
root=$1; shift
while [ "$1" != "--" ]; do mkdir -p "$root$1"; mount --rbind "$1" "$root$1"; shift; done; shift
for d in dev proc sys; do mount --rbind "/$d" "$root/$d"; done
exec chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$PWD" "$@"`;

/** A working Wine here. */
export interface Wine {
  /** The trixie root. */
  root: string;
  /** The Windows Deno executable (a path on this machine). */
  deno: string;
  /** `wine --version`. */
  version: string;
}

/** Options for {@linkcode wineCommand}. */
export interface WineCommandOptions {
  /** More folders to bind-mount inside at their own paths. @default {[]} */
  binds?: string[];
  /** Variables the Windows program gets (besides Wine's own). @default {{}} */
  env?: Record<string, string>;
}

/**
 * The command line that runs `argv` (a Windows program and its arguments,
 * or a program of the root such as `wineserver`) in the Wine root. The
 * repository, the current folder and the Windows Deno are always bound.
 *
 * @param wine What the probe found.
 * @param argv The program to run and its arguments; a `.exe` is started through `wine`.
 * @param options More binds and variables.
 * @returns The command and its arguments, for `Deno.Command`.
 */
export function wineCommand(
  wine: Wine,
  argv: string[],
  options: WineCommandOptions = {},
): [string, ...string[]] {
  const cwd = Deno.cwd();
  const inRepo = cwd === REPO_ROOT || cwd.startsWith(`${REPO_ROOT}/`);
  const binds = [
    REPO_ROOT,
    ...(inRepo ? [] : [cwd]),
    windowsDenoPrefix(),
    ...(options.binds ?? []),
  ];
  const env = {
    HOME: "/root",
    PATH: "/usr/bin:/bin",
    WINEPREFIX: "/root/.wine",
    WINEDEBUG: "-all",
    // Wine's first run would offer to install Mono and Gecko; nothing here uses them.
    WINEDLLOVERRIDES: "mscoree,mshtml=",
    // The Windows Deno on the Windows side's PATH, for what runs `deno` by name
    // (a `deno install -g` shim).
    WINEPATH: windowsPath(
      join(windowsDenoPrefix(), "node_modules", ...WINDOWS_DENO_PACKAGE.split("/")),
    ),
    ...options.env,
  };
  const program = argv[0].toLowerCase().endsWith(".exe") ? ["wine", ...argv] : argv;
  return [
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--propagation",
    "private",
    "/bin/sh",
    "-c",
    ENTER,
    "krepis-wine",
    wine.root,
    ...binds,
    "--",
    "/usr/bin/env",
    "-i",
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    ...program,
  ];
}

/**
 * What the probe found: a working Wine; a part that is `missing` here (a
 * reason to skip; `setup` when `deno task setup` makes that part on this
 * machine); or every part present but `broken` together (a failure).
 */
export type WineProbe =
  | { wine: Wine }
  | { missing: string; setup?: boolean }
  | { broken: string };

let probed: Promise<WineProbe> | undefined;

/**
 * Finds the Wine root and the Windows Deno, and checks that they run
 * together (`deno --version` under Wine, killed after 120 s; the first run
 * also makes Wine's prefix).
 *
 * @returns What was found, with a one-line reason when it cannot be used.
 */
export function wineProbe(): Promise<WineProbe> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<WineProbe> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return { missing: "Wine runs Windows x86_64 programs here on x86_64 Linux only" };
  }
  if (Deno.uid() !== 0) return { missing: WINE_ROOT_ONLY };
  const state = await wineRootState();
  if ("absent" in state) {
    return {
      missing: `no Wine root at ${wineRoot()} (deno task setup makes it with mmdebstrap)`,
      setup: true,
    };
  }
  if (!("ok" in state)) {
    return {
      missing: `the Wine root is not usable: ${
        "damaged" in state ? state.damaged : state.foreign
      } (deno task setup makes it again)`,
      setup: "damaged" in state,
    };
  }
  try {
    await Deno.stat(windowsDenoPath());
  } catch {
    return {
      missing:
        `no Windows Deno at ${windowsDenoPath()} (deno task setup installs ${WINDOWS_DENO_PACKAGE}@${WINDOWS_DENO_VERSION})`,
      setup: true,
    };
  }
  const namespaces = await outputWithin(
    new Deno.Command("unshare", {
      args: ["--user", "--map-root-user", "--mount", "true"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }),
    30_000,
  ).catch((error: Error) => ({ success: false, stderr: new TextEncoder().encode(error.message) }));
  if (!namespaces.success) {
    return {
      missing: `no user and mount namespaces here (unshare: ${
        new TextDecoder().decode(namespaces.stderr).trim().split("\n")[0]
      })`,
    };
  }
  const wine: Wine = { root: wineRoot(), deno: windowsDenoPath(), version: "" };
  const [cmd, ...args] = wineCommand(wine, [
    "/bin/sh",
    "-c",
    'wine --version && wine "$0" --version',
    wine.deno,
  ]);
  const output = await outputWithin(
    new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }),
    120_000,
  );
  const lines = new TextDecoder().decode(output.stdout).split("\n").map((l) => l.trim());
  if (!output.success || !lines[0]?.startsWith("wine-") || !lines[1]?.startsWith("deno ")) {
    return {
      broken: `Windows Deno does not run under Wine in ${wine.root}: ${
        output.signal ? "killed after 120 s" : `exit ${output.code}`
      } ${new TextDecoder().decode(output.stderr).trim().split("\n").slice(-1)[0] ?? ""}`.trim(),
    };
  }
  return { wine: { ...wine, version: lines[0] } };
}

/** Variables passed on to the program by `deno run tools/wine.ts`. */
const PASSED_ON = /^(KREPIS_|RUST_|NO_COLOR$|CARGO_PKG_|CARGO_MANIFEST_DIR$)/;

if (import.meta.main) {
  // `deno run --allow-all tools/wine.ts <program.exe> [args…]`: runs one
  // Windows program under Wine and exits with its code; cargo's target
  // runner for x86_64-pc-windows-gnu (the kernel's unit tests).
  const found = await wineProbe();
  if (!("wine" in found)) {
    console.error(
      `error: Cannot run ${Deno.args[0] ?? "a program"} under Wine: ${
        "missing" in found ? found.missing : found.broken
      }\nHint: deno task setup makes the Wine root and installs the Windows Deno`,
    );
    Deno.exit(1);
  }
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(Deno.env.toObject())) {
    if (PASSED_ON.test(name)) env[name] = value;
  }
  const [cmd, ...args] = wineCommand(found.wine, Deno.args, { env });
  const status = await new Deno.Command(cmd, { args, stdin: "inherit" }).spawn().status;
  Deno.exit(status.code);
}
