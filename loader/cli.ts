/**
 * The `krepis` command line: pre-download, inspect and maintain the kernel
 * cache.
 *
 * ```sh
 * deno install -g -A -n krepis jsr:@krepis/loader/cli
 * krepis init            # fetch, verify and cache the kernel for this machine
 * krepis init --all      # ... for every target the release ships (e.g. in a Docker image build)
 * krepis info            # platform, target, cache root, cached versions, ABI
 * krepis verify          # re-hash every cached library (only in a Krepis cache)
 * krepis cache ls | prune | clean
 * krepis undo            # undo the last transaction recorded in this project's journal
 * krepis undo --list     # the journal's committed transactions, newest first
 * ```
 *
 * Options: `--target <triple>`, `--all`, `--offline`, `--json`,
 * `--mirror <url>`, `--cache-dir <dir>`, `--trusted-key <base64>`.
 * Environment: `KREPIS_CACHE_DIR`, `KREPIS_MIRROR`, `KREPIS_OFFLINE=1`,
 * `KREPIS_TRUSTED_KEY`, `NO_COLOR`.
 *
 * Exit codes:
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | success |
 * | 1 | unexpected failure |
 * | 2 | usage error |
 * | 3 | platform or target not supported (`UnsupportedPlatformError`) |
 * | 4 | integrity failure: bytes, manifest or signature did not verify, or a development library is not a loadable file (`IntegrityError`) |
 * | 5 | ABI mismatch (`AbiMismatchError`) |
 * | 6 | offline and not cached (`OfflineError`) |
 * | 7 | network: host unreachable, timed out, an HTTP error, or a URL refused by policy (`NetworkError`) |
 * | 8 | cache: unsafe or foreign cache directory, disk full, file in use on Windows (`CacheError`) |
 * | 9 | permission: a Deno permission is missing; the hint names the flag (`PermissionError`) |
 * | 10 | journal: no journal here, another process holds it, nothing (or not that much) to undo, a damaged snapshot (`JournalError`) |
 *
 * @module
 */

import { parseArgs } from "node:util";
import { absolute, join, normalize } from "./_path.ts";
import {
  AbiMismatchError,
  CacheError,
  IntegrityError,
  JournalError,
  NetworkError,
  OfflineError,
  PermissionError,
  UnsupportedPlatformError,
} from "./errors.ts";
import { install, type Installation, type InstallOptions, VERSION } from "./install.ts";
import { load } from "./load.ts";
import { cacheRoot } from "./cache_dir.ts";
import { currentPlatform, resolveTarget, supportedTriples } from "./platform.ts";
import { LOADER_ABI } from "./abi.ts";
import { formatBytes, progressView } from "./_progress.ts";
import { removeFile } from "./_cache.ts";
import { asKrepisError } from "./_classify.ts";
import {
  cachedLibraries,
  type CacheWalk,
  removeVersions,
  untagged,
  verifyCache,
  walkCache,
} from "./_cache_layout.ts";
import { readEnv } from "./_env.ts";
import { undoCommand } from "./_cli_undo.ts";

/** Exit codes of the `krepis` command, one per failure class. */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  unsupported: 3,
  integrity: 4,
  abi: 5,
  offline: 6,
  network: 7,
  cache: 8,
  permission: 9,
  journal: 10,
} as const;

const USAGE = `Usage: krepis <command> [options]

Commands:
  init              fetch, verify and cache the kernel for this machine
  info              show platform, target, cache root, cached versions and ABI
  verify            re-hash every cached kernel (removes damaged ones)
  cache ls          list cached versions and targets
  cache prune       remove every version but ${VERSION}
  cache clean       remove the whole cache
  undo              undo the last transaction in this project's journal (.krepis/)

Options:
  --target <triple> a target other than this machine's (init)
  --all             every target the release ships (init)
  --offline         use the cache only (also KREPIS_OFFLINE=1)
  --json            print one JSON document on stdout
  --mirror <url>    release host (also KREPIS_MIRROR)
  --cache-dir <dir> cache root (also KREPIS_CACHE_DIR)
  --trusted-key <k> extra minisign public key (also KREPIS_TRUSTED_KEY)
  --verify full     re-hash cached files instead of the stamp check (init)
  --steps <n>       undo the last n transactions, all or nothing (undo)
  --list            show the journal's transactions, change nothing (undo)
  --project <dir>   the project (undo; default: the nearest folder up with .krepis/)
`;

/** Where the CLI writes. */
export interface CliIo {
  /** Where results go (`Deno.stdout`). */
  stdout: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
  /** Where progress and errors go (`Deno.stderr`). */
  stderr: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
}

/**
 * Runs the CLI.
 *
 * @param args Command-line arguments (without the program name).
 * @param io Where to write.
 * @returns The exit code.
 */
export async function main(
  args: string[],
  io: CliIo = { stdout: Deno.stdout, stderr: Deno.stderr },
): Promise<number> {
  const encoder = new TextEncoder();
  const out = (text: string) => io.stdout.writeSync(encoder.encode(text));
  const err = (text: string) => io.stderr.writeSync(encoder.encode(text));
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        target: { type: "string" },
        all: { type: "boolean" },
        offline: { type: "boolean" },
        json: { type: "boolean" },
        mirror: { type: "string" },
        "cache-dir": { type: "string" },
        "trusted-key": { type: "string", multiple: true },
        verify: { type: "string" },
        help: { type: "boolean", short: "h" },
        steps: { type: "string" },
        list: { type: "boolean" },
        project: { type: "string" },
      },
    });
  } catch (error) {
    err(`Cannot parse the arguments: ${(error as Error).message}\nHint: run \`krepis --help\`\n`);
    return EXIT_CODES.usage;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? out : err)(USAGE);
    return values.help ? EXIT_CODES.ok : EXIT_CODES.usage;
  }
  if (values.verify !== undefined && values.verify !== "full" && values.verify !== "stamp") {
    err(`Cannot parse the arguments: --verify takes "full" or "stamp", not "${values.verify}"\n`);
    return EXIT_CODES.usage;
  }
  if (values["cache-dir"] === "") {
    err(
      `Cannot parse the arguments: --cache-dir is empty\nHint: give a directory, or leave --cache-dir out for the default (KREPIS_CACHE_DIR or the OS cache directory)\n`,
    );
    return EXIT_CODES.usage;
  }
  const color = io.stderr.isTerminal() && !readEnv("NO_COLOR");
  const json = values.json ?? false;
  const options: InstallOptions = {
    mirror: values.mirror,
    // One spelling of the root for every command (absolute, no "//" or "..").
    cacheDir: values["cache-dir"] === undefined
      ? undefined
      : normalize(absolute(values["cache-dir"])),
    offline: values.offline || undefined,
    trustedKeys: values["trusted-key"]
      ? [
        ...values["trusted-key"],
        ...(readEnv("KREPIS_TRUSTED_KEY") ? [readEnv("KREPIS_TRUSTED_KEY")!] : []),
      ]
      : undefined,
    verify: values.verify as "full" | "stamp" | undefined,
  };
  const [command, sub] = positionals;
  try {
    switch (command) {
      case "init":
        return await init(options, values.target, values.all ?? false, json, io, out, err);
      case "info":
        return await info(options, json, out);
      case "verify":
        return await verify(options.cacheDir ?? cacheRoot(), json, out, err);
      case "cache":
        return await cache(sub, options.cacheDir ?? cacheRoot(), json, out, err);
      case "undo": {
        const steps = values.steps === undefined ? 1 : Number(values.steps);
        if (!/^[1-9][0-9]*$/.test(values.steps ?? "1") || steps > 0xffff_ffff) {
          err(
            `Cannot parse the arguments: --steps takes a positive whole number, not "${values.steps}"\n`,
          );
          return EXIT_CODES.usage;
        }
        if (values.project === "") {
          err("Cannot parse the arguments: --project is empty\n");
          return EXIT_CODES.usage;
        }
        const undo = { project: values.project, steps, list: values.list ?? false, json };
        return await undoCommand(undo, options, out, err);
      }
      default:
        err(`Cannot run "${command}": no such command\nHint: run \`krepis --help\`\n`);
        return EXIT_CODES.usage;
    }
  } catch (thrown) {
    const error = asKrepisError(thrown, `run krepis ${positionals.join(" ")}`, options.cacheDir);
    const message = error instanceof Error ? error.message : String(error);
    const label = color ? "\x1b[31merror\x1b[0m" : "error";
    if (json) out(`${JSON.stringify({ ok: false, error: message, code: exitCode(error) })}\n`);
    err(`${label}: ${message}\n`);
    return exitCode(error);
  }
}

/** The exit code for a failure. */
export function exitCode(error: unknown): number {
  // By class, never by message text: rewording a message changes no exit code.
  if (error instanceof UnsupportedPlatformError) return EXIT_CODES.unsupported;
  if (error instanceof IntegrityError) return EXIT_CODES.integrity;
  if (error instanceof AbiMismatchError) return EXIT_CODES.abi;
  if (error instanceof OfflineError) return EXIT_CODES.offline;
  if (error instanceof NetworkError || error instanceof Deno.errors.TimedOut) {
    return EXIT_CODES.network;
  }
  if (error instanceof CacheError) return EXIT_CODES.cache;
  if (error instanceof JournalError) return EXIT_CODES.journal;
  if (error instanceof PermissionError || error instanceof Deno.errors.NotCapable) {
    return EXIT_CODES.permission;
  }
  return EXIT_CODES.failure;
}

async function init(
  options: InstallOptions,
  triple: string | undefined,
  all: boolean,
  json: boolean,
  io: CliIo,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  if (triple && all) {
    err("Cannot parse the arguments: --target and --all exclude each other\n");
    return EXIT_CODES.usage;
  }
  const targets = all ? supportedTriples() : [triple ?? resolveTarget().triple];
  const view = progressView(io.stderr, io.stderr.isTerminal(), json);
  const results: (Installation | { target: string; error: string; code: number })[] = [];
  // --all: the table's targets that the release does not ship are named, not failed.
  const notInRelease: string[] = [];
  let code: number = EXIT_CODES.ok;
  for (const target of targets) {
    const started = performance.now();
    try {
      const installed = await install({ ...options, target, onProgress: (p) => view.update(p) });
      view.done();
      results.push(installed);
      if (!json) {
        const ms = (performance.now() - started).toFixed(0);
        out(
          `${
            installed.downloaded ? "installed" : "cached"
          } ${installed.target.triple} ${installed.version} (${
            formatBytes(installed.size)
          }, sha256 ${installed.sha256}, ${installed.trust}${
            installed.downloaded ? `, ${ms} ms` : ""
          })\n  ${installed.path}\n`,
        );
      }
    } catch (error) {
      view.done();
      if (!all) throw error;
      if (error instanceof UnsupportedPlatformError && !error.supported.includes(target)) {
        notInRelease.push(target);
        continue;
      }
      const message = error instanceof Error ? error.message : String(error);
      results.push({ target, error: message, code: exitCode(error) });
      err(`error: ${message}\n`);
      code = exitCode(error);
    }
  }
  if (all && notInRelease.length) {
    if (results.length === 0) {
      // Nothing at all: the release ships none of the table's targets.
      code = EXIT_CODES.unsupported;
      err(
        `Cannot install any kernel: the release ships none of ${
          notInRelease.join(", ")
        }\nHint: check --mirror and the release version\n`,
      );
    } else if (!json) {
      err(`not in this release (skipped): ${notInRelease.join(", ")}\n`);
    }
  }
  if (json) {
    out(`${
      JSON.stringify(
        { ok: code === 0, installed: results, ...(all ? { notInRelease } : {}) },
        null,
        2,
      )
    }\n`);
  }
  return code;
}

async function info(
  options: InstallOptions,
  json: boolean,
  out: (text: string) => void,
): Promise<number> {
  const platform = currentPlatform();
  let target: string | null = null;
  let targetError: string | null = null;
  try {
    target = resolveTarget(platform).triple;
  } catch (error) {
    targetError = (error as Error).message.split("\n")[0];
  }
  const root = options.cacheDir ?? cacheRoot();
  const cached = cachedLibraries(await walkCache(root));
  let kernel: Record<string, unknown> | null = null;
  if (target) {
    try {
      const installed = await install({ ...options, offline: true });
      using loaded = await load({ ...options, offline: true, path: installed.path });
      kernel = {
        path: installed.path,
        sha256: installed.sha256,
        trust: installed.trust,
        abi: loaded.abi,
        capabilities: loaded.buildInfo().capabilities,
      };
    } catch (error) {
      kernel = { error: (error as Error).message.split("\n")[0] };
    }
  }
  const report = {
    version: VERSION,
    platform,
    target,
    targetError,
    cacheRoot: root,
    cached,
    loaderAbi: LOADER_ABI,
    kernel,
  };
  if (json) {
    out(`${JSON.stringify(report, null, 2)}\n`);
    return EXIT_CODES.ok;
  }
  const abi = kernel && "abi" in kernel ? kernel.abi as typeof LOADER_ABI : null;
  out(
    [
      `krepis ${VERSION}`,
      `platform     ${platform.os}/${platform.arch}${platform.libc ? ` (${platform.libc})` : ""}`,
      `target       ${target ?? targetError}`,
      `cache root   ${root}`,
      `cached       ${
        cached.length ? cached.map((c) => `${c.version}/${c.target}`).join(", ") : "(nothing)"
      }`,
      `loader ABI   ${LOADER_ABI.major}.${LOADER_ABI.minor} (${
        LOADER_ABI.fingerprint.slice(0, 16)
      }…)`,
      `kernel       ${
        abi
          ? `ABI ${abi.major}.${abi.minor} verified (${(kernel!.path as string)})`
          : `not available: ${(kernel?.error as string | undefined) ?? "no target"}`
      }`,
      ...(abi ? [`capabilities ${(kernel!.capabilities as string[]).join(", ")}`] : []),
    ].join("\n") + "\n",
  );
  return EXIT_CODES.ok;
}

/** Lines naming what is not Krepis's and was left alone. */
function reportForeign(walk: CacheWalk, err: (text: string) => void): void {
  if (walk.foreign.length === 0) return;
  err(`left alone, not made by Krepis (${walk.foreign.length}):\n`);
  for (const path of walk.foreign.slice(0, 20)) err(`  ${path}\n`);
  if (walk.foreign.length > 20) err(`  … and ${walk.foreign.length - 20} more\n`);
}

async function verify(
  root: string,
  json: boolean,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  const { walk, checked: results } = await verifyCache(root, removeFile);
  if (!json) {
    for (const entry of results) {
      out(
        entry.ok
          ? `ok      ${entry.version}/${entry.target} ${entry.file}\n`
          : `DAMAGED ${entry.version}/${entry.target} ${entry.file}: sha256 ${entry.actual}, expected ${entry.sha256} (removed; run \`krepis init\`)\n`,
      );
    }
  }
  const bad = results.filter((r) => !r.ok).length;
  if (json) {
    out(
      `${JSON.stringify({ ok: bad === 0, checked: results, foreign: walk.foreign }, null, 2)}\n`,
    );
  } else {
    out(`verified ${results.length} file(s), ${bad} damaged\n`);
    reportForeign(walk, err);
  }
  return bad === 0 ? EXIT_CODES.ok : EXIT_CODES.integrity;
}

async function cache(
  sub: string | undefined,
  root: string,
  json: boolean,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  if (sub === "ls") {
    const walk = await walkCache(root);
    const entries = cachedLibraries(walk);
    const partials = walk.files.filter((f) => f.kind === "partial" || f.kind === "temp");
    if (json) {
      out(
        `${
          JSON.stringify(
            { ok: true, root, krepisCache: walk.tagged, entries, partials, foreign: walk.foreign },
            null,
            2,
          )
        }\n`,
      );
    } else {
      out(`${root}${walk.tagged ? "" : " (not a Krepis cache: nothing in it is Krepis's)"}\n`);
      for (const e of entries) {
        out(`  ${e.version}  ${e.target}  ${formatBytes(e.size)}  ${e.sha256.slice(0, 16)}\n`);
      }
      for (const p of partials) out(`  ${p.kind.padEnd(7)}  ${formatBytes(p.size)}  ${p.path}\n`);
      if (entries.length === 0 && partials.length === 0) out("  (empty)\n");
      if (walk.tagged) reportForeign(walk, err);
    }
    return EXIT_CODES.ok;
  }
  if (sub === "prune" || sub === "clean") {
    const walk = await walkCache(root);
    if (!walk.tagged) throw untagged(root, sub === "prune" ? "prune" : "clean");
    const keep = (version: string) => sub === "prune" && version === VERSION;
    const { removed: list, kept } = await removeVersions(walk, removeFile, (v) => !keep(v));
    // Current-version partials and temps are leftovers of failed transfers: prune takes them too.
    if (sub === "prune") {
      for (const f of walk.files) {
        if (keep(f.version) && (f.kind === "partial" || f.kind === "temp")) {
          await removeFile(f.path).catch(() => {});
        }
      }
    }
    if (json) {
      out(
        `${
          JSON.stringify(
            { ok: kept.length === 0, root, removed: list, kept, foreign: walk.foreign },
            null,
            2,
          )
        }\n`,
      );
    } else {
      out(
        list.length
          ? `removed ${list.join(", ")} from ${root}\n`
          : `nothing to remove in ${root}\n`,
      );
      for (const k of kept) {
        err(
          `Cannot remove ${
            join(root, k.version)
          }: ${k.reason}\nHint: close the programs that use the Krepis kernel, then run the command again\n`,
        );
      }
      reportForeign(walk, err);
    }
    return kept.length ? EXIT_CODES.cache : EXIT_CODES.ok;
  }
  err(
    `Cannot run "cache ${sub ?? ""}": expected ls, prune or clean\nHint: run \`krepis --help\`\n`,
  );
  return EXIT_CODES.usage;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
