/**
 * Test helper: runs the real `krepis` CLI (`deno run -A loader/cli.ts`) as a
 * child process.
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { outputWithin } from "./_tools.ts";

/** What a CLI run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command line that runs the CLI. */
export const CLI = [
  Deno.execPath(),
  "run",
  // Deno's own diagnostics are not the CLI's output, which is tested.
  "--quiet",
  "--allow-all",
  join(REPO_ROOT, "loader", "cli.ts"),
];

/** Environment for a CLI child: the given variables, and no kernel path override. */
export function cliEnv(env: Record<string, string>): Record<string, string> {
  return { KREPIS_KERNEL_PATH: "", KREPIS_OFFLINE: "", NO_COLOR: "1", ...env };
}

/**
 * Runs `program <args>` in the repository with the CLI environment, to
 * completion; with `limitMs`, killed after that long (`signal` is then set
 * and the assertion on the exit code fails instead of the test hanging).
 */
export async function runIn(
  program: string,
  args: string[],
  env: Record<string, string>,
  limitMs?: number,
): Promise<CliRun & { signal: Deno.Signal | null }> {
  const command = new Deno.Command(program, {
    args,
    cwd: REPO_ROOT,
    env: cliEnv(env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const output = limitMs === undefined
    ? await command.output()
    : await outputWithin(command, limitMs);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `deno <args>` (this Deno) with {@linkcode runIn}. */
export async function runDeno(
  args: string[],
  env: Record<string, string>,
  limitMs?: number,
): Promise<CliRun> {
  const { code, stdout, stderr } = await runIn(Deno.execPath(), args, env, limitMs);
  return { code, stdout, stderr };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return runDeno([...CLI.slice(1), ...args], env);
}

/** Starts the CLI without waiting. */
export function spawnCli(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...args],
    env: cliEnv(env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
