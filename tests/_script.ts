/**
 * Test helper: runs TypeScript given as text in a child `deno run`, reading
 * the program from stdin, so a test can put a real process where it needs
 * one (another holder of a lock, a process to kill, other permissions).
 *
 * @module
 */

/**
 * Starts `deno run --quiet <args> -` with `script` on its stdin (then
 * closed), stdout and stderr piped.
 */
export async function spawnScript(
  args: string[],
  script: string,
  env: Record<string, string> = {},
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...args, "-"],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  return child;
}

/** Runs `script` as {@linkcode spawnScript} does, to completion. */
export async function runScript(args: string[], script: string): Promise<Deno.CommandOutput> {
  return await (await spawnScript(args, script)).output();
}
