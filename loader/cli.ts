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
 * krepis version         # loader version, kernel ABI, Deno version (also --version, -V)
 * krepis <command> --help
 * ```
 *
 * Each command's options, environment variables and exit codes are in its
 * `--help` (made from `_cli_commands.ts`). An unknown command, option or
 * value is exit 2 with the nearest valid word. With `--json` every command
 * prints one indented JSON document on stdout: `ok` (boolean), `code` (the
 * exit code), `command` (e.g. `"cache ls"`), the command's own fields, and
 * `error` (the message) when it failed, usage errors included.
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

import { absolute, join, normalize } from "./_internal/path.ts";
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
import { formatBytes, progressView } from "./_cli/progress.ts";
import { removeFile } from "./_install/cache.ts";
import { asKrepisError } from "./_internal/classify.ts";
import {
  cachedLibraries,
  type CacheWalk,
  removeVersions,
  untagged,
  verifyCache,
  walkCache,
} from "./_install/cache_layout.ts";
import { readEnv, readEnvFlag } from "./_internal/env.ts";
import { undoCommand } from "./_cli/undo.ts";
import { parseMirror } from "./_install/http.ts";
import {
  type CommandSpec,
  errorText,
  helpText,
  nearest,
  parseCommandLine,
  splitCommand,
  suggestion,
  writeAll,
} from "./_cli/command_line.ts";
import { COMMANDS, EXIT_CODES, KREPIS } from "./_cli/commands.ts";

export { EXIT_CODES };

/** Where the CLI writes. */
export interface CliIo {
  /** Where results go (`Deno.stdout`). */
  stdout: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
  /** Where progress and errors go (`Deno.stderr`). */
  stderr: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
}

/** What a command did: its exit code and its `--json` document's own fields. */
export interface Outcome {
  /** The exit code. */
  code: number;
  /** The command's own fields of its `--json` document. */
  report: Record<string, unknown>;
}

type Word = keyof typeof COMMANDS;

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
  const out = (text: string) => writeAll(io.stdout, encoder.encode(text));
  const err = (text: string) => writeAll(io.stderr, encoder.encode(text));
  const color = io.stderr.isTerminal() && !readEnv("NO_COLOR");
  // --json is known before the arguments are checked, so that a usage error is JSON too.
  const json = args.slice(0, args.includes("--") ? args.indexOf("--") : undefined)
    .includes("--json");
  const found = splitCommand(args, [KREPIS, ...Object.values(COMMANDS)]);
  const word = found.word ?? "krepis";
  // `cache ls` and the like are named with their subcommand.
  let command = word;
  const document = (outcome: Outcome) =>
    out(`${
      JSON.stringify(
        { ok: outcome.code === 0, code: outcome.code, command, ...outcome.report },
        null,
        2,
      )
    }\n`);
  // Every failure in one shape: `error: Cannot …`, the hint on the next line.
  const failure = (message: string, command: string): string => {
    const text = errorText(message, command);
    return color ? `\x1b[31merror\x1b[0m${text.slice("error".length)}` : text;
  };
  const usageError = (message: string): number => {
    err(failure(message, "krepis"));
    if (json) {
      document({
        code: EXIT_CODES.usage,
        report: { error: errorText(message).slice("error: ".length).trimEnd() },
      });
    }
    return EXIT_CODES.usage;
  };
  // A help text: as it is, or as the `help` field of the JSON document.
  const help = (text: string): number => {
    if (json) document({ code: EXIT_CODES.ok, report: { help: text } });
    else out(text);
    return EXIT_CODES.ok;
  };
  if (found.word === undefined) {
    // A command's option with no command (`krepis --cache-dir x`): the command is what is missing.
    const commandOption = args.map((a) => a.replace(/=.*$/s, "")).find((a) =>
      a.startsWith("--") && !Object.hasOwn(KREPIS.options, a.slice(2)) &&
      Object.values(COMMANDS).some((spec) => Object.hasOwn(spec.options, a.slice(2)))
    );
    if (commandOption) {
      const [first] = Object.entries(COMMANDS).find(([, spec]) =>
        Object.hasOwn(spec.options, commandOption.slice(2))
      )!;
      return usageError(
        `Cannot run krepis: no command given (${commandOption} goes with a command)\nHint: name the command first, e.g. \`krepis ${first} ${commandOption} …\`; \`krepis --help\` lists the commands\n`,
      );
    }
    const parsed = parseCommandLine(KREPIS, args);
    if (parsed.kind === "exit") {
      return parsed.code !== 0 ? usageError(parsed.error ?? parsed.stderr) : help(parsed.stdout);
    }
    if (parsed.values.version) {
      const outcome = version();
      if (json) document(outcome);
      else out(versionText(outcome.report));
      return outcome.code;
    }
    // Nothing to do: the help, where errors go, as a usage error.
    if (!json) err(helpText(KREPIS));
    return usageError(
      "Cannot run krepis: no command given\nHint: `krepis init` fetches the kernel; `krepis --help` lists the commands\n",
    );
  }
  // Own keys only: `krepis constructor` is no command.
  if (!Object.hasOwn(COMMANDS, word)) {
    return usageError(
      `Cannot run krepis ${word}: no such command\nHint: ${
        suggestion(word, Object.keys(COMMANDS))
      } (\`krepis --help\` lists the commands)\n`,
    );
  }
  const spec: CommandSpec = COMMANDS[word as Word];
  const parsed = parseCommandLine(spec, found.rest);
  if (parsed.kind === "exit") {
    return parsed.code !== 0 ? usageError(parsed.error ?? parsed.stderr) : help(parsed.stdout);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const { positionals } = parsed;
  if (word === "cache" && positionals.length) command = `cache ${positionals[0]}`;
  const string = (name: string) => values[name] as string | undefined;
  const mirror = string("mirror") ?? readEnv("KREPIS_MIRROR");
  if (mirror !== undefined && Object.hasOwn(spec.options, "mirror")) {
    const url = parseMirror(mirror);
    if (typeof url === "string") return usageError(`${url}\n`);
  }
  // A boolean variable with another value than yes or no is a usage error, not a silent no.
  if (Object.hasOwn(spec.options, "offline")) {
    try {
      readEnvFlag("KREPIS_OFFLINE");
    } catch (error) {
      return usageError((error as Error).message);
    }
  }
  const given = values["trusted-key"] as string[] | undefined;
  const options: InstallOptions = {
    mirror: string("mirror"),
    // One spelling of the root for every command (absolute, no "//" or "..").
    cacheDir: string("cache-dir") === undefined
      ? undefined
      : normalize(absolute(string("cache-dir")!)),
    offline: (values.offline as boolean | undefined) || undefined,
    trustedKeys: given
      ? [...given, ...(readEnv("KREPIS_TRUSTED_KEY") ? [readEnv("KREPIS_TRUSTED_KEY")!] : [])]
      : undefined,
    verify: string("verify") as "full" | "stamp" | undefined,
  };
  const root = () => options.cacheDir ?? cacheRoot();
  try {
    let outcome: Outcome;
    switch (word as Word) {
      case "init":
        if (values.target !== undefined && values.all) {
          return usageError(
            "Cannot run krepis init: --target and --all exclude each other\nHint: give one target, or --all for every target the release ships\n",
          );
        }
        if (values.target !== undefined && !supportedTriples().includes(string("target")!)) {
          // As the tasks do: the nearest triple first (still exit 3, not supported).
          const triple = string("target")!;
          throw new UnsupportedPlatformError(
            `Cannot find a kernel for target ${triple}: it is not shipped\nHint: ${
              nearest(triple, supportedTriples())
                ? `did you mean ${nearest(triple, supportedTriples())}? `
                : ""
            }supported targets are ${supportedTriples().join(", ")}`,
            triple,
            supportedTriples(),
          );
        }
        outcome = await init(options, string("target"), values.all === true, json, io, out, err);
        break;
      case "info":
        outcome = await info(options, json, out);
        break;
      case "verify":
        outcome = await verify(root(), json, out, err);
        break;
      case "cache":
        if (positionals.length === 0) {
          return usageError(
            `Cannot run krepis cache: it needs a subcommand: ls, prune or clean\nHint: \`krepis cache ls\` lists what is cached\n`,
          );
        }
        outcome = await cache(positionals[0], root(), json, out, err);
        break;
      case "undo": {
        const steps = string("steps") === undefined ? 1 : Number(string("steps"));
        if (!/^[1-9][0-9]*$/.test(string("steps") ?? "1") || steps > 0xffff_ffff) {
          return usageError(
            `Cannot run krepis undo: --steps takes a positive whole number, not "${
              string("steps")
            }"\nHint: --steps 1 undoes the last transaction\n`,
          );
        }
        const keepText = string("keep");
        if (
          (keepText !== undefined) !== (values.prune === true) ||
          (keepText !== undefined && !/^[0-9]+$/.test(keepText))
        ) {
          return usageError(
            `Cannot run krepis undo: --prune takes --keep <n>, a whole number of transactions to keep${
              keepText === undefined ? "" : `, not "${keepText}"`
            }\nHint: krepis undo --prune --keep 10 keeps the newest 10\n`,
          );
        }
        const undo = {
          project: string("project"),
          steps,
          list: values.list === true,
          force: values.force === true,
          dryRun: values["dry-run"] === true,
          keep: keepText === undefined ? undefined : Number(keepText),
          repair: values.repair === true,
          json,
        };
        outcome = await undoCommand(undo, options, out, err);
        break;
      }
      case "version":
        outcome = version();
        if (!json) out(versionText(outcome.report));
        break;
      case "help": {
        const topic = positionals[0];
        if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
          return usageError(
            `Cannot show the help of "${topic}": no such command\nHint: ${
              suggestion(topic, Object.keys(COMMANDS))
            }\n`,
          );
        }
        return help(helpText(topic === undefined ? KREPIS : COMMANDS[topic as Word]));
      }
    }
    if (json) document(outcome);
    return outcome.code;
  } catch (thrown) {
    const error = asKrepisError(thrown, `run krepis ${word}`, options.cacheDir);
    const message = error instanceof Error ? error.message : String(error);
    if (json) document({ code: exitCode(error), report: { error: message } });
    err(failure(message, `krepis ${word}`));
    return exitCode(error);
  }
}

/** `krepis version`: what this loader is, needs and runs on. */
function version(): Outcome {
  return {
    code: EXIT_CODES.ok,
    report: {
      version: VERSION,
      abi: {
        major: LOADER_ABI.major,
        minor: LOADER_ABI.minor,
        fingerprint: LOADER_ABI.fingerprint,
      },
      deno: Deno.version,
    },
  };
}

function versionText(report: Record<string, unknown>): string {
  const abi = report.abi as { major: number; minor: number; fingerprint: string };
  const deno = report.deno as typeof Deno.version;
  return `krepis ${report.version}\nkernel ABI ${abi.major}.${abi.minor} (fingerprint ${abi.fingerprint})\ndeno ${deno.deno} (v8 ${deno.v8}, typescript ${deno.typescript})\n`;
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

/** An installed target in a report: its `target` is the triple. */
type Installed = Omit<Installation, "target"> & { target: string };
/** One installed target, or why it failed (`init --all`). */
type InitResult = Installed | { target: string; error: string; code: number };

async function init(
  options: InstallOptions,
  triple: string | undefined,
  all: boolean,
  json: boolean,
  io: CliIo,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<Outcome> {
  const targets = all ? supportedTriples() : [triple ?? resolveTarget().triple];
  const view = progressView(io.stderr, io.stderr.isTerminal(), json);
  const results: InitResult[] = [];
  // --all: the table's targets that the release does not ship are named, not failed.
  const notInRelease: string[] = [];
  let code: number = EXIT_CODES.ok;
  for (const target of targets) {
    const started = performance.now();
    try {
      const installed = await install({ ...options, target, onProgress: (p) => view.update(p) });
      view.done();
      // In every --json document a target is its triple (as in `info` and a failed entry).
      results.push({ ...installed, target: installed.target.triple });
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
      view.done(true);
      if (!all) throw error;
      if (error instanceof UnsupportedPlatformError && !error.supported.includes(target)) {
        notInRelease.push(target);
        continue;
      }
      const message = error instanceof Error ? error.message : String(error);
      results.push({ target, error: message, code: exitCode(error) });
      if (!json) err(errorText(message, `krepis init --target ${target}`));
      // The first failure's class names the run's exit code.
      if (code === EXIT_CODES.ok) code = exitCode(error);
    }
  }
  if (!all) return { code, report: { installed: results } };
  const installed = results.filter((r): r is Installed => "path" in r);
  const summary = {
    targets: targets.length,
    installed: installed.length,
    downloaded: installed.filter((r) => r.downloaded).length,
    cached: installed.filter((r) => !r.downloaded).length,
    failed: results.length - installed.length,
    notInRelease: notInRelease.length,
  };
  if (results.length === 0) {
    // Nothing at all: the release ships none of the table's targets.
    code = EXIT_CODES.unsupported;
    if (!json) {
      err(
        errorText(
          `Cannot install any kernel: the release ships none of ${
            notInRelease.join(", ")
          }\nHint: check --mirror and the release version`,
        ),
      );
    }
  } else if (!json) {
    if (notInRelease.length) err(`not in this release (skipped): ${notInRelease.join(", ")}\n`);
    const failed = results.filter((r): r is Exclude<InitResult, Installed> => !("path" in r));
    out(
      `${summary.installed} of ${summary.targets} targets ready (${summary.downloaded} downloaded, ${summary.cached} already cached), ${summary.failed} failed${
        failed.length ? ` (${failed.map((f) => f.target).join(", ")})` : ""
      }, ${summary.notInRelease} not in this release\n`,
    );
  }
  return { code, report: { installed: results, notInRelease, summary } };
}

async function info(
  options: InstallOptions,
  json: boolean,
  out: (text: string) => void,
): Promise<Outcome> {
  const platform = currentPlatform();
  let target: string | null = null;
  let targetError: string | null = null;
  try {
    target = resolveTarget(platform).triple;
  } catch (error) {
    targetError = (error as Error).message.split("\n")[0];
  }
  const root = options.cacheDir ?? cacheRoot();
  // Read-only: the walk makes nothing, and the kernel is opened only when it is cached.
  const cached = cachedLibraries(await walkCache(root));
  let kernel: Record<string, unknown> | null = null;
  if (target && !cached.some((c) => c.version === VERSION && c.target === target)) {
    kernel = { error: `${VERSION} for ${target} is not in the cache (run \`krepis init\`)` };
  } else if (target) {
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
  if (json) return { code: EXIT_CODES.ok, report };
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
  return { code: EXIT_CODES.ok, report };
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
): Promise<Outcome> {
  const { walk, checked } = await verifyCache(root, removeFile);
  const bad = checked.filter((r) => !r.ok).length;
  const code = bad === 0 ? EXIT_CODES.ok : EXIT_CODES.integrity;
  if (json) return { code, report: { checked, foreign: walk.foreign } };
  for (const entry of checked) {
    out(
      entry.ok
        ? `ok      ${entry.version}/${entry.target} ${entry.file}\n`
        : `DAMAGED ${entry.version}/${entry.target} ${entry.file}: sha256 ${entry.actual}, expected ${entry.sha256} (removed; run \`krepis init\`)\n`,
    );
  }
  out(`verified ${checked.length} file(s), ${bad} damaged\n`);
  reportForeign(walk, err);
  return { code, report: {} };
}

async function cache(
  sub: string,
  root: string,
  json: boolean,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<Outcome> {
  const walk = await walkCache(root);
  if (sub === "ls") {
    const entries = cachedLibraries(walk);
    const partials = walk.files.filter((f) => f.kind === "partial" || f.kind === "temp");
    const report = { root, krepisCache: walk.tagged, entries, partials, foreign: walk.foreign };
    if (json) return { code: EXIT_CODES.ok, report };
    out(`${root}${walk.tagged ? "" : " (not a Krepis cache: nothing in it is Krepis's)"}\n`);
    for (const e of entries) {
      out(`  ${e.version}  ${e.target}  ${formatBytes(e.size)}  ${e.sha256.slice(0, 16)}\n`);
    }
    for (const p of partials) out(`  ${p.kind.padEnd(7)}  ${formatBytes(p.size)}  ${p.path}\n`);
    if (entries.length === 0 && partials.length === 0) out("  (empty)\n");
    if (walk.tagged) reportForeign(walk, err);
    return { code: EXIT_CODES.ok, report };
  }
  // prune or clean (the spec admits nothing else)
  if (!walk.tagged) throw untagged(root, sub === "prune" ? "prune" : "clean");
  const keep = (version: string) => sub === "prune" && version === VERSION;
  const { removed, kept } = await removeVersions(walk, removeFile, (v) => !keep(v));
  // Current-version partials and temps are leftovers of failed transfers: prune takes them too.
  if (sub === "prune") {
    for (const f of walk.files) {
      if (keep(f.version) && (f.kind === "partial" || f.kind === "temp")) {
        await removeFile(f.path).catch(() => {});
      }
    }
  }
  const code = kept.length ? EXIT_CODES.cache : EXIT_CODES.ok;
  const report = { root, removed, kept, foreign: walk.foreign };
  if (json) return { code, report };
  out(
    removed.length
      ? `removed ${removed.join(", ")} from ${root}\n`
      : `nothing to remove in ${root}\n`,
  );
  for (const k of kept) {
    err(
      errorText(
        `Cannot remove ${
          join(root, k.version)
        }: ${k.reason}\nHint: close the programs that use the Krepis kernel, then run the command again`,
      ),
    );
  }
  reportForeign(walk, err);
  return { code, report };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
