/**
 * Test helper: runs a command inside a real pseudo-terminal of a given size
 * with `script` (util-linux on Linux, BSD `script` on macOS and the BSDs),
 * and reads back what the terminal received.
 *
 * @module
 */

import { REPO_ROOT } from "../lib/cargo_build.ts";
import { outputWithin, WINDOWS, without } from "./_tools.ts";

/**
 * Why a pty test cannot run here (for `skipIf`), or null: Windows has no
 * `script`, and some minimal systems lack it.
 */
export const NO_PTY: string | null = WINDOWS
  ? "Windows has no `script` to run a pseudo-terminal"
  : without("script", "no `script` on PATH to run a pseudo-terminal");

/** A word quoted for `sh`. */
export function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** What the terminal received, and how the command ended. */
export interface PtyRun {
  /** Exit code of the command (of `script`, which passes the command's on). */
  code: number;
  signal: Deno.Signal | null;
  /** Every byte written to the terminal, as text (newlines come as `\r\n`). */
  output: string;
  /** What `script` itself said (on its own stderr, not the terminal). */
  stderr: string;
}

/**
 * Runs `shell` (a `sh` command line) in a new pseudo-terminal of `cols` ×
 * `rows` (set with `stty` inside it before the command), in the repository,
 * with `env` added to this process's environment; killed after `limitMs`.
 */
export async function runInPty(
  shell: string,
  opts: { cols: number; rows: number; env: Record<string, string>; limitMs: number },
): Promise<PtyRun> {
  const line = `stty cols ${opts.cols} rows ${opts.rows} && ${shell}`;
  // util-linux: -e passes the exit code on, -c runs the line with $SHELL;
  // BSD: the command follows the (discarded) typescript file.
  const args = Deno.build.os === "linux"
    ? ["-qec", `sh -c ${shQuote(line)}`, "/dev/null"]
    : ["-q", "/dev/null", "sh", "-c", line];
  const output = await outputWithin(
    new Deno.Command("script", {
      args,
      cwd: REPO_ROOT,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    opts.limitMs,
  );
  return {
    code: output.code,
    signal: output.signal,
    output: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** ANSI control sequences (CSI, OSC) and other control characters but tabs. */
const CONTROL =
  // deno-lint-ignore no-control-regex
  /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/**
 * The lines a terminal shows one after another: the output split at every
 * carriage return and newline (each `\r` starts a redraw of the same row),
 * without control sequences; empty ones dropped.
 */
export function terminalLines(output: string): string[] {
  return output.split(/\r|\n/).map((line) => line.replace(CONTROL, "")).filter((l) => l !== "");
}
