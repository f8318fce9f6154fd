/**
 * Child processes that cannot hang their parent: each wait ends after a
 * time limit, when the child is killed (SIGKILL; on Windows, terminated).
 *
 * @module
 */

/**
 * Waits for `child` with `wait`, killing it after `limitMs`.
 *
 * @param child A spawned child.
 * @param limitMs The longest wait.
 * @param wait What to wait for (`c => c.status`, `c => c.output()`).
 * @returns What `wait` returns; after a kill, the killed child's result.
 */
export async function within<T>(
  child: Deno.ChildProcess,
  limitMs: number,
  wait: (child: Deno.ChildProcess) => Promise<T>,
): Promise<T> {
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // it has just exited
    }
  }, limitMs);
  try {
    return await wait(child);
  } finally {
    clearTimeout(killer);
  }
}

/**
 * Runs a command to completion, killing it after `limitMs`: a test of "does
 * not hang" then fails (`signal` is set) instead of hanging itself.
 *
 * @param command The command (stdout and stderr piped or null).
 * @param limitMs The longest wait. @default {30000}
 * @returns Its output.
 */
export function outputWithin(
  command: Deno.Command,
  limitMs = 30_000,
): Promise<Deno.CommandOutput> {
  return within(command.spawn(), limitMs, (child) => child.output());
}

/**
 * Runs a command to completion, or `null` when its program cannot be
 * started (not installed, not executable). `Deno.Command.output()` throws
 * synchronously when the spawn fails, so a `.catch()` or `.then(_, onRejected)`
 * on its promise never sees that: a missing tool must be asked this way.
 *
 * @param command The command.
 * @returns Its output, or null.
 * @example
 * ```ts
 * import { outputOrNull } from "./process.ts";
 * const out = await outputOrNull(new Deno.Command("krepis-no-such-tool"));
 * console.log(out === null); // true
 * ```
 */
export async function outputOrNull(command: Deno.Command): Promise<Deno.CommandOutput | null> {
  try {
    return await command.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error; // a missing --allow-run is a bug
    return null;
  }
}

/**
 * Whether `program` is installed and runs: `program <args>` starts and
 * exits 0.
 *
 * @param program The program (looked up on PATH).
 * @param args Arguments that make it print its version. @default {["--version"]}
 * @returns Whether it ran.
 */
export async function installed(program: string, args = ["--version"]): Promise<boolean> {
  const out = await outputOrNull(
    new Deno.Command(program, { args, stdin: "null", stdout: "null", stderr: "null" }),
  );
  return out?.success ?? false;
}
