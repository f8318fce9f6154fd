/**
 * Test helper: runs a Deno script in a child process whose memory is
 * limited by a cgroup of its own, made under this process's memory cgroup
 * (cgroup v1 `memory.limit_in_bytes`, or v2 `memory.max`) and removed
 * afterwards. Where no such cgroup can be made (not Linux, no memory
 * controller, not writable), {@linkcode memoryLimitUnavailable} says why.
 *
 * @module
 */

import { join } from "node:path";

/** Where this process's memory cgroup lives, and which version it is. */
interface Cgroup {
  dir: string;
  version: 1 | 2;
}

function ownMemoryCgroup(): Cgroup | string {
  if (Deno.build.os !== "linux") return "memory cgroups exist only on Linux";
  let membership: string;
  try {
    membership = Deno.readTextFileSync("/proc/self/cgroup");
  } catch {
    return "/proc/self/cgroup cannot be read";
  }
  for (const line of membership.split("\n")) {
    const [, controllers, path] = line.split(":", 3);
    if (path === undefined) continue;
    if (controllers.split(",").includes("memory")) {
      return { dir: join("/sys/fs/cgroup/memory", path), version: 1 };
    }
    if (controllers === "") {
      try {
        if (Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").includes("memory")) {
          return { dir: join("/sys/fs/cgroup", path), version: 2 };
        }
      } catch {
        // Not a v2 hierarchy here.
      }
    }
  }
  return "this process has no memory cgroup";
}

let serial = 0;

/** Makes a child cgroup limited to `bytes` (swap included), or says why not. */
function makeLimited(bytes: number): string | { dir: string } | null {
  const own = ownMemoryCgroup();
  if (typeof own === "string") return own;
  const dir = join(own.dir, `krepis-test-${Deno.pid}-${serial++}`);
  try {
    Deno.mkdirSync(dir);
  } catch (error) {
    return `cannot make a memory cgroup under ${own.dir} (${(error as Error).name})`;
  }
  try {
    if (own.version === 1) {
      Deno.writeTextFileSync(join(dir, "memory.limit_in_bytes"), `${bytes}`);
      try {
        Deno.writeTextFileSync(join(dir, "memory.memsw.limit_in_bytes"), `${bytes}`);
      } catch {
        // No swap accounting: without swap the limit above is the whole limit.
      }
    } else {
      Deno.writeTextFileSync(join(dir, "memory.max"), `${bytes}`);
      try {
        Deno.writeTextFileSync(join(dir, "memory.swap.max"), "0");
      } catch {
        // No swap controller.
      }
    }
    Deno.statSync(join(dir, "cgroup.procs"));
  } catch (error) {
    removeCgroup(dir);
    return `cannot limit a memory cgroup under ${own.dir} (${(error as Error).name})`;
  }
  return { dir };
}

function removeCgroup(dir: string): void {
  // A cgroup is removed with rmdir once its processes are gone (it holds
  // only kernel files, so a recursive remove would fail).
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      Deno.removeSync(dir);
      return;
    } catch {
      const wait = new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(wait, 0, 0, 20);
    }
  }
}

/**
 * Why a memory-limited child cannot be run here, or null when it can
 * (probed by making and removing a limited cgroup).
 */
export function memoryLimitUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "memory cgroups exist only on Linux";
  const probe = makeLimited(64 * 1024 * 1024);
  if (typeof probe === "string") return probe;
  if (probe === null) return "no memory cgroup";
  removeCgroup(probe.dir);
  return null;
}

/**
 * Runs `deno run --quiet <args> -` with `script` on stdin in a child whose
 * memory (swap included) is limited to `bytes`, and returns its output.
 *
 * @throws {Error} When no limited cgroup can be made (check
 *   {@linkcode memoryLimitUnavailable} first).
 */
export async function runLimited(
  bytes: number,
  args: string[],
  script: string,
): Promise<Deno.CommandOutput> {
  const limited = makeLimited(bytes);
  if (typeof limited === "string" || limited === null) {
    throw new Error(`Cannot limit the child's memory: ${limited}`);
  }
  try {
    // The shell enters the cgroup, then becomes Deno: every page Deno
    // touches is counted.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
        "sh",
        limited.dir,
        Deno.execPath(),
        "run",
        "--quiet",
        ...args,
        "-",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    return await child.output();
  } finally {
    removeCgroup(limited.dir);
  }
}
