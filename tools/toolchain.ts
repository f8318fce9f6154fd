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
