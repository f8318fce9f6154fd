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
