/**
 * Runs arm64 Linux Deno on an x86_64 Linux machine, under qemu-user, so the
 * aarch64 kernel can be loaded through the real loader and CLI here.
 *
 * What it needs, all installed by `deno task setup` on x86_64 Linux:
 *
 * - `qemu-aarch64-static` (Debian's `qemu-user-static`);
 * - an arm64 C library: Debian's multiarch `libc6:arm64` (which
 *   `libstd-rust-web-dev:arm64` brings along), found at the usual
 *   `/lib/ld-linux-aarch64.so.1`; or else the cross sysroot of
 *   `libc6-arm64-cross` under `/usr/aarch64-linux-gnu`, passed to qemu with
 *   `-L` and `-E LD_LIBRARY_PATH=…`. The multiarch one is preferred: with
 *   both installed, the cross loader picks up the multiarch libc and Deno
 *   hangs at start-up unless `LD_LIBRARY_PATH` keeps the two apart;
 * - Deno for arm64 Linux, from npm (`@deno/linux-arm64-glibc`), in the
 *   private tools directory that `tools/bootstrap.sh` uses for Deno.
 *
 * qemu-user runs one program, not a machine: a child process that program
 * starts is run by the host kernel, which runs an arm64 file only where
 * qemu is registered with binfmt_misc. Debian's qemu-user-static asks for
 * that registration (systemd-binfmt does it at boot), but where binfmt_misc
 * is not mounted, as in containers, nothing is registered. So the tests
 * never depend on it: what runs under emulation is `deno run`, never
 * `deno task` (which starts `deno` again as a child).
 *
 * @module
 */

import { join } from "node:path";
import { outputWithin } from "../lib/process.ts";

/**
 * The arm64 Deno used under emulation: the newest that npm publishes for
 * arm64 Linux. `.dvmrc` names 2.9.6, which has no arm64 Linux package there.
 */
export const ARM64_DENO_VERSION = "2.9.5";

/** Its npm package. */
export const ARM64_DENO_PACKAGE = "@deno/linux-arm64-glibc";

/** The qemu-user program for aarch64. */
export const QEMU_AARCH64 = "qemu-aarch64-static";

/** The cross sysroot of Debian's `libc6-arm64-cross`. */
export const CROSS_SYSROOT = "/usr/aarch64-linux-gnu";

import { toolsDir } from "../lib/tools_dir.ts";
export { toolsDir };

/** Where `deno task setup` installs the arm64 Deno package (an npm prefix). */
export function arm64DenoPrefix(): string {
  return join(toolsDir(), `deno-linux-arm64-${ARM64_DENO_VERSION}`);
}

/** The arm64 Deno executable inside {@linkcode arm64DenoPrefix}. */
export function arm64DenoPath(): string {
  return join(arm64DenoPrefix(), "node_modules", ...ARM64_DENO_PACKAGE.split("/"), "deno");
}

/** An arm64 C library qemu can give the programs it runs, or null. */
export function arm64Sysroot(): { qemuArgs: string[]; where: string } | null {
  const exists = (path: string) => {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  };
  if (exists("/lib/ld-linux-aarch64.so.1")) {
    return { qemuArgs: [], where: "multiarch libc6:arm64" };
  }
  if (exists(join(CROSS_SYSROOT, "lib", "ld-linux-aarch64.so.1"))) {
    return {
      qemuArgs: ["-L", CROSS_SYSROOT, "-E", `LD_LIBRARY_PATH=${CROSS_SYSROOT}/lib`],
      where: `${CROSS_SYSROOT} (libc6-arm64-cross)`,
    };
  }
  return null;
}

/** A working way to run arm64 Deno here. */
export interface Aarch64Emulator {
  /** The qemu program. */
  qemu: string;
  /** Arguments before the program (the sysroot, when it is the cross one). */
  qemuArgs: string[];
  /** The arm64 Deno executable. */
  deno: string;
  /** `deno --version`'s first line, as printed under emulation. */
  version: string;
  /** Which arm64 C library is used. */
  sysroot: string;
}

/** The command line that runs `deno <args>` for arm64 under qemu. */
export function emulatedDeno(emulator: Aarch64Emulator, args: string[]): [string, ...string[]] {
  return [emulator.qemu, ...emulator.qemuArgs, emulator.deno, ...args];
}

/**
 * What the probe found: a working emulator; a part that is `missing` here
 * (a reason to skip); or every part present but `broken` together (a
 * failure, never a skip).
 */
export type Probe = { emulator: Aarch64Emulator } | { missing: string } | { broken: string };

let probed: Promise<Probe> | undefined;

/**
 * Finds qemu, an arm64 C library and the arm64 Deno, and checks that they
 * run together (`deno --version` under qemu, killed after 60 s).
 *
 * @returns What was found, with a one-line reason when it cannot be used.
 */
export function aarch64Emulator(): Promise<Probe> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<Probe> {
  if (Deno.build.os !== "linux") return { missing: "qemu-user runs Linux programs on Linux only" };
  if (Deno.build.arch === "aarch64") {
    return {
      missing: "this machine is arm64 Linux: the other tests load the aarch64 kernel natively",
    };
  }
  const sysroot = arm64Sysroot();
  if (!sysroot) {
    return {
      missing:
        "no arm64 C library (deno task setup installs one: libc6:arm64 or libc6-arm64-cross)",
    };
  }
  const deno = arm64DenoPath();
  try {
    Deno.statSync(deno);
  } catch {
    return {
      missing:
        `no arm64 Deno at ${deno} (deno task setup installs ${ARM64_DENO_PACKAGE}@${ARM64_DENO_VERSION})`,
    };
  }
  const emulator = { qemu: QEMU_AARCH64, qemuArgs: sysroot.qemuArgs, deno, sysroot: sysroot.where };
  const [cmd, ...args] = emulatedDeno({ ...emulator, version: "" }, ["--version"]);
  let output: Deno.CommandOutput;
  try {
    output = await outputWithin(
      new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }),
      60_000,
    );
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return {
        missing: `${QEMU_AARCH64} is not installed (deno task setup installs qemu-user-static)`,
      };
    }
    return { broken: `cannot start ${QEMU_AARCH64}: ${(error as Error).message}` };
  }
  const first = new TextDecoder().decode(output.stdout).split("\n")[0].trim();
  if (!output.success || !first.startsWith("deno ")) {
    return {
      broken: `arm64 Deno does not run under ${QEMU_AARCH64} with ${sysroot.where}: ${
        output.signal ? `killed after 60 s` : `exit ${output.code}`
      } ${new TextDecoder().decode(output.stderr).trim().split("\n")[0] ?? ""}`.trim(),
    };
  }
  return { emulator: { ...emulator, version: first } };
}
