/**
 * A user's path on release day, as the README gives it and `deno task
 * rehearse` runs it: the program, its permissions, the commands.
 *
 * @module
 */

import { LOADER_ENV } from "../loader/_internal/env.ts";

/** One command of a user's path, as the README gives it. */
export interface UserStep {
  /** What it does, for the report. */
  name: string;
  /** The program and its arguments. */
  command: string[];
}

/**
 * The permissions the README gives a program that calls `load()` for the
 * first time (cold: it downloads into the cache).
 *
 * @param cache The cache root.
 * @param host The release host (`host:port`).
 * @param os The OS the flags are for. @default {this one}
 * @returns The `deno run` flags.
 */
export function loadPermissions(
  cache: string,
  host: string,
  os: typeof Deno.build.os = Deno.build.os,
): string[] {
  const read = os === "linux" ? `${cache},/proc/self/maps` : cache;
  return [
    `--allow-env=${LOADER_ENV.join(",")}`,
    `--allow-read=${read}`,
    "--allow-ffi",
    ...(os === "windows" ? [] : ["--allow-sys=uid"]),
    `--allow-write=${cache}`,
    `--allow-net=${host}`,
  ];
}

/** The program a user writes: the README's example, minus what needs no kernel call. */
export const USER_PROGRAM = `import { load } from "@krepis/loader";

using kernel = await load(); // installs the release binary for this machine if needed
console.log(kernel.version, kernel.abi, kernel.buildInfo());
`;

/**
 * A user's commands on release day, in order (the README's install section
 * gives the same ones): add the package, run a program that calls `load()`,
 * install the CLI, `krepis init`, `krepis info`.
 *
 * @param cache The cache root (`KREPIS_CACHE_DIR`).
 * @param host The release host (`host:port`).
 * @param krepis The installed `krepis` launcher.
 * @param root Where `deno install -g` puts it (`--root`). @default {Deno's own place}
 * @param os The OS the permissions are for. @default {this one}
 * @returns The steps.
 */
export function userSteps(
  cache: string,
  host: string,
  krepis: string,
  root?: string,
  os: typeof Deno.build.os = Deno.build.os,
): UserStep[] {
  const deno = Deno.execPath();
  return [
    { name: "deno add", command: [deno, "add", "--min-dep-age=0", "jsr:@krepis/loader"] },
    {
      name: "deno run (load())",
      command: [deno, "run", ...loadPermissions(cache, host, os), "main.ts"],
    },
    {
      name: "deno install -g",
      command: [
        deno,
        "install",
        "-g",
        ...(root === undefined ? [] : ["--root", root]),
        "-n",
        "krepis",
        "-A",
        "--min-dep-age=0",
        "jsr:@krepis/loader/cli",
      ],
    },
    { name: "krepis init", command: [krepis, "init"] },
    { name: "krepis info", command: [krepis, "info"] },
  ];
}
