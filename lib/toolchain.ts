/**
 * Makes rustup's cargo the one every child process finds, whatever else is
 * on PATH. Debian's `cargo-web`/`rustc-web` packages (the aarch64 std) and a
 * distribution's `cargo` install into `/usr/bin`; when that comes first on
 * PATH, a gate or build would silently use another compiler.
 * `tools/bootstrap.sh` does the same for the shell; this covers
 * `deno task test`, `demo` and `build` run on their own.
 *
 * @module
 */

import { delimiter, join } from "node:path";
import { outputWithin } from "./process.ts";

/**
 * Puts `CARGO_HOME/bin` (default `~/.cargo/bin`) first on this process's
 * PATH when rustup's cargo is there, and drops an inherited `RUSTC` or
 * `CARGO`, so children use rustup's toolchain.
 *
 * @param env The environment to read and change. @default {Deno.env}
 * @returns The directory put first, or null when rustup's cargo is not installed.
 */
export function preferRustupCargo(
  env: Pick<typeof Deno.env, "get" | "set" | "delete"> = Deno.env,
): string | null {
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  const cargoHome = env.get("CARGO_HOME") ?? (home ? join(home, ".cargo") : null);
  if (!cargoHome) return null;
  const bin = join(cargoHome, "bin");
  const exe = Deno.build.os === "windows" ? "cargo.exe" : "cargo";
  try {
    if (!Deno.statSync(join(bin, exe)).isFile) return null;
  } catch {
    return null;
  }
  const rest = (env.get("PATH") ?? "").split(delimiter).filter((dir) => dir && dir !== bin);
  env.set("PATH", [bin, ...rest].join(delimiter));
  env.delete("RUSTC");
  env.delete("CARGO");
  return bin;
}

/** A Rust compiler that can build for a target. */
export interface TargetRustc {
  /** The rustc to run: `rustc` (rustup's, from PATH) or an absolute path. */
  rustc: string;
  /** Its `rustc --version` line. */
  version: string;
  /** True when it is not the toolchain on PATH, so the build must set `RUSTC`. */
  alternative: boolean;
}

/**
 * Compilers tried, in order, for a target whose standard library the
 * toolchain on PATH lacks. Debian's `rustc-web` installs `/usr/bin/rustc`,
 * and `libstd-rust-web-dev:<arch>` (multiarch) adds that architecture's std
 * to it: the one way to get the aarch64 Linux std where rustup cannot
 * download it.
 */
export const ALTERNATIVE_RUSTC: Partial<Record<typeof Deno.build.os, string[]>> = {
  linux: ["/usr/bin/rustc"],
};

/** Runs a compiler query; null when it fails, is missing, or takes over a minute. */
async function capture(command: string, args: string[]): Promise<string | null> {
  let output: Deno.CommandOutput;
  try {
    output = await outputWithin(
      new Deno.Command(command, { args, stdin: "null", stdout: "piped", stderr: "null" }),
      60_000,
    );
  } catch {
    return null;
  }
  return output.success ? new TextDecoder().decode(output.stdout).trim() : null;
}

/** Whether `rustc` has the compiled standard library for `triple`. */
export async function hasStd(rustc: string, triple: string): Promise<boolean> {
  const libdir = await capture(rustc, ["--print", "target-libdir", "--target", triple]);
  if (!libdir) return false;
  try {
    for await (const entry of Deno.readDir(libdir)) {
      if (entry.name.startsWith("libstd-") && entry.name.endsWith(".rlib")) return true;
    }
  } catch {
    // no such directory: the target is not installed
  }
  return false;
}

/**
 * The compiler that builds `triple` here: rustup's (on PATH) when it has the
 * target's std, else the first of {@linkcode ALTERNATIVE_RUSTC} that does.
 *
 * @param triple The Rust target.
 * @param candidates Alternatives to try. @default {ALTERNATIVE_RUSTC for this OS}
 * @returns The compiler, or null when none here has that std.
 */
export async function rustcFor(
  triple: string,
  candidates: string[] = ALTERNATIVE_RUSTC[Deno.build.os] ?? [],
): Promise<TargetRustc | null> {
  for (
    const [rustc, alternative] of [["rustc", false], ...candidates.map((c) => [c, true])] as [
      string,
      boolean,
    ][]
  ) {
    if (!(await hasStd(rustc, triple))) continue;
    const version = await capture(rustc, ["--version"]);
    if (version) return { rustc, version, alternative };
  }
  return null;
}
