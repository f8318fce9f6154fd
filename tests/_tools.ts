/**
 * Test helper: which external tools this machine has, and Deno.test options
 * for a test that cannot run everywhere (`ignore`, with the one-line reason
 * in its name so the report says why).
 *
 * @module
 */

import { join } from "node:path";

/** True on Windows runners. */
export const WINDOWS: boolean = Deno.build.os === "windows";

/**
 * True when this is Windows Deno under Wine (tests/windows_wine_test.ts sets
 * `KREPIS_UNDER_WINE=1`): a test that Wine cannot show is skipped with its
 * reason, and listed in docs/testing.md.
 */
export const UNDER_WINE: boolean = WINDOWS && (() => {
  try {
    return Deno.env.get("KREPIS_UNDER_WINE") === "1";
  } catch {
    return false;
  }
})();

/**
 * The file `command` would run as, searched on PATH (with PATHEXT on
 * Windows), or null.
 */
export function which(command: string): string | null {
  const dirs = (Deno.env.get("PATH") ?? "").split(WINDOWS ? ";" : ":").filter(Boolean);
  const extensions = WINDOWS
    ? ["", ...(Deno.env.get("PATHEXT") ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean)]
    : [""];
  for (const dir of dirs) {
    for (const extension of extensions) {
      const path = join(dir, command + extension);
      try {
        const info = Deno.statSync(path);
        if (info.isFile && (WINDOWS || info.mode === null || (info.mode & 0o111) !== 0)) {
          return path;
        }
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Whether `command` is on PATH. */
export function has(command: string): boolean {
  return which(command) !== null;
}

/**
 * Deno.test options that ignore a test when `reason` is not null, and put
 * the reason in its name: `Deno.test(skipIf(name, reason), fn)`.
 */
export function skipIf(name: string, reason: string | null): { name: string; ignore: boolean } {
  return reason === null
    ? { name, ignore: false }
    : { name: `${name} [ignored here: ${reason}]`, ignore: true };
}

/** `reason` when `condition` holds, else null (for {@linkcode skipIf}). */
export function when(condition: boolean, reason: string): string | null {
  return condition ? reason : null;
}

/** `reason` when `command` is not on PATH, else null (for {@linkcode skipIf}). */
export function without(command: string, reason: string): string | null {
  return has(command) ? null : reason;
}

async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

let pythonFound: Promise<string | null> | undefined;

/**
 * A Python 3 interpreter: `python3`, or `python` where that is the name
 * (some Windows runners), probed by running it; null when neither works.
 */
export function python(): Promise<string | null> {
  pythonFound ??= (async () => {
    for (const name of ["python3", "python"]) {
      if (await succeeds(name, ["-c", "import sys; sys.exit(sys.version_info[0] != 3)"])) {
        return name;
      }
    }
    return null;
  })();
  return pythonFound;
}

let ccFound: Promise<string[] | null> | undefined;

/**
 * A C compiler command line: zig's (`python3 -m ziglang cc`, which
 * `deno task setup` installs on every runner), else the system `cc`; null
 * when there is neither.
 */
export function cCompiler(): Promise<string[] | null> {
  ccFound ??= (async () => {
    const py = await python();
    if (py && (await succeeds(py, ["-m", "ziglang", "version"]))) {
      return [py, "-m", "ziglang", "cc"];
    }
    if (await succeeds("cc", ["--version"])) return ["cc"];
    return null;
  })();
  return ccFound;
}

/** Runs a child process to completion, killed after a time limit (`lib/process.ts`). */
export { outputWithin } from "../lib/process.ts";
