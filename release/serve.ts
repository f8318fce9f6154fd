/**
 * `deno task serve <dir> [--port <n>] [--host <addr>] [--quiet]`: serves a
 * mirror directory (`<dir>/v<version>/…`, as `deno task release publish
 * --to-dir` and `deno task demo --out` write it) over HTTP with Range
 * support, for `KREPIS_MIRROR`. Loopback only unless `--host` says
 * otherwise; nothing outside `<dir>` is ever served ({@linkcode ReleaseHost}
 * refuses traversal and symlinks out of it). Ctrl-C (or SIGTERM) stops it.
 *
 * The first line on stdout is `serving <absolute dir> at <url>`, for
 * scripts; each request is logged on stderr (`METHOD path status bytes`).
 *
 * @module
 */

import { join } from "node:path";
import {
  commandLine,
  type CommandSpec,
  exitUsage,
  invocationPath,
  printError,
} from "../lib/task.ts";
import { ReleaseHost } from "./serve_dir.ts";

/**
 * The default port: fixed, as other static servers' are, so that
 * `KREPIS_MIRROR` stays the same across restarts; `--port 0` picks a free one.
 */
export const DEFAULT_PORT = 8765;

const NAME = "deno task serve";

/** How long a stop waits for open downloads before it ends them. */
const STOP_GRACE_MS = 2000;

const spec = {
  name: NAME,
  summary: "serve a mirror directory (<dir>/v<version>/…) over HTTP for KREPIS_MIRROR",
  usage: ["<dir> [--port <n>] [--host <addr>] [--quiet]"],
  maxPositionals: 1,
  options: {
    port: {
      type: "string",
      short: "p",
      value: "<n>",
      help: `the port; 0 picks a free one (default ${DEFAULT_PORT})`,
    },
    host: {
      type: "string",
      value: "<addr>",
      help: "the address to listen on (default 127.0.0.1: this machine only)",
    },
    quiet: { type: "boolean", short: "q", help: "do not log each request on stderr" },
  },
  env: {
    INIT_CWD:
      "the folder `deno task` was started in (set by deno task); a relative <dir> is read from it when it is inside the repository",
  },
  exitCodes: {
    0: "stopped by Ctrl-C (SIGINT) or SIGTERM (open downloads get 2 s to finish)",
    1: "cannot serve: <dir> missing or not a directory, port in use, address not available",
    2: "usage error",
  },
  more: `The first line on stdout is \`serving <absolute dir> at http://127.0.0.1:<port>\`.
A mirror directory is what these write:
  deno task release publish --dist dist --to-dir <dir>
  deno task demo --out <dir>
Only files inside <dir> are served: paths with .. or . segments, hidden (dot) files, backslashes,
malformed percent-encoding (400) and symlinks leading out of <dir> (403) are refused.`,
} satisfies CommandSpec;

function usageError(problem: string, hint: string): never {
  exitUsage(`Cannot run ${NAME}: ${problem}\nHint: ${hint}`);
}

function fail(problem: string, hint?: string): never {
  printError(`Cannot serve ${problem}${hint ? `\nHint: ${hint}` : ""}`);
  Deno.exit(1);
}

/** Whether an address is this machine's loopback (the default, reachable from nowhere else). */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** The versions a mirror directory holds: each `v<version>/` with a `manifest.json`. */
async function versionsIn(dir: string): Promise<string[]> {
  const versions: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isDirectory || !/^v\d/.test(entry.name)) continue;
    const manifest = await Deno.stat(join(dir, entry.name, "manifest.json")).catch(() => null);
    if (manifest?.isFile) versions.push(entry.name.slice(1));
  }
  return versions.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

if (import.meta.main) {
  const { values, positionals } = commandLine(spec);
  if (positionals.length === 0) {
    usageError("no directory given", `${NAME} <dir> (a mirror directory: <dir>/v<version>/…)`);
  }
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!/^\d+$/.test(values.port ?? "0") || !Number.isInteger(port) || port > 65535) {
    usageError(
      `--port takes a number from 0 to 65535, not "${values.port}"`,
      "--port 0 picks a free port",
    );
  }
  const hostname = values.host ?? "127.0.0.1";

  // Absolute, from the folder the user typed it in (symlinks such as macOS's /tmp are not
  // resolved for display).
  const root = invocationPath(positionals[0]);
  const info = await Deno.stat(root).catch((error) => error as Error);
  if (info instanceof Deno.errors.NotFound) {
    fail(`${root}: no such directory`, "give a mirror directory (<dir>/v<version>/manifest.json)");
  }
  if (info instanceof Error) fail(`${root}: ${info.message}`);
  if (!info.isDirectory) {
    fail(`${root}: it is a file, not a directory`, "give the directory that holds v<version>/");
  }
  const versions = await versionsIn(root);
  if (versions.length === 0) {
    console.error(
      `warning: ${root} has no v<version>/manifest.json: it is not a mirror directory, and krepis init will find nothing there
Hint: make one with \`deno task release publish --dist dist --to-dir <dir>\` or \`deno task demo --out <dir>\` (dist/ holds builds, not a mirror)`,
    );
  }

  // `deno task demo --out` keeps the throwaway public key next to the releases.
  const key = join(root, "key.pub");
  const trust = (await Deno.stat(key).then((s) => s.isFile, () => false))
    ? ` KREPIS_TRUSTED_KEY=${key}`
    : "";

  const encoder = new TextEncoder();
  let host: ReleaseHost;
  try {
    host = ReleaseHost.listen(root, {
      hostname,
      port,
      log: values.quiet
        ? undefined
        : ({ method, target, status, bytes }) =>
          Deno.stderr.writeSync(encoder.encode(`${method} ${target} ${status} ${bytes ?? "-"}\n`)),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      fail(
        `${root}: port ${port} on ${hostname} is in use`,
        `stop what listens there, or pick another port: --port <n> (--port 0 picks a free one)`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      fail(
        `${root}: ${hostname} is not an address of this machine`,
        "omit --host to serve on 127.0.0.1",
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      fail(
        `${root}: this user may not listen on port ${port}`,
        "pick a port above 1023, or --port 0",
      );
    }
    fail(`${root} on ${hostname}:${port}: ${(error as Error).message}`);
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) {
      // A second signal: do not wait for open requests any longer.
      console.log("stopped");
      Deno.exit(0);
    }
    stopping = true;
    // Open downloads get a moment to finish; a slow or stuck client does not hold the stop.
    const grace = new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS));
    await Promise.race([host.close(), grace]);
    console.log("stopped");
    Deno.exit(0);
  };
  // Listening for the signals before anything is printed: a script that
  // stops the server as soon as it reads the URL gets a clean stop.
  Deno.addSignalListener("SIGINT", stop);
  // Windows has no SIGTERM to listen for.
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);

  const { port: bound } = host.addr;
  // A wildcard address is not one to connect to: this machine reaches it on loopback.
  const local = hostname === "0.0.0.0"
    ? `http://127.0.0.1:${bound}`
    : hostname === "::" || hostname === "[::]"
    ? `http://[::1]:${bound}`
    : host.url;
  console.log(`serving ${root} at ${host.url}`);
  if (!isLoopback(hostname)) {
    console.error(
      `warning: listening on ${hostname}, not loopback: the mirror is reachable from the network (anyone who can reach this machine can download its files)`,
    );
  }
  console.log(`versions: ${versions.length ? versions.join(", ") : "none"}`);
  console.log(`use it:   KREPIS_MIRROR=${local}${trust} krepis init`);
  console.log(
    `          (from this repository: KREPIS_MIRROR=${local}${trust} deno task krepis init)`,
  );
  console.log("stop it:  Ctrl-C");
}
