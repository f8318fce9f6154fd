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
 * `--help` (made from `_cli/commands.ts`). An unknown command, option or
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

import { absolute, normalize } from "./_internal/path.ts";
import type { InstallOptions } from "./install.ts";
import { cacheRoot } from "./cache_dir.ts";
import type { CliIo, Outcome } from "./types.ts";
import { asKrepisError } from "./_internal/classify.ts";
import { readEnv, readEnvFlag } from "./_internal/env.ts";
import { parseMirror } from "./_install/http.ts";
import {
  type CommandSpec,
  errorText,
  helpText,
  parseCommandLine,
  splitCommand,
  suggestion,
  writeAll,
} from "./_cli/command_line.ts";
import { COMMANDS, KREPIS } from "./_cli/commands.ts";
import { EXIT_CODES, exitCode } from "./_cli/exit_codes.ts";
import type { Context, Run } from "./_cli/context.ts";
import { run as runInit } from "./_cli/init.ts";
import { run as runInfo } from "./_cli/info.ts";
import { run as runVerify } from "./_cli/verify.ts";
import { run as runCache } from "./_cli/cache.ts";
import { run as runUndo } from "./_cli/undo.ts";
import { run as runVersion, version, versionText } from "./_cli/version.ts";

export { EXIT_CODES, exitCode };

export type { CliIo, Outcome } from "./types.ts";

type Word = keyof typeof COMMANDS;

/** Each command's one entry point, by its word. */
const RUN: Record<Word, Run> = {
  init: runInit,
  info: runInfo,
  verify: runVerify,
  cache: runCache,
  undo: runUndo,
  version: runVersion,
  help: (context, { positionals }) => {
    const topic = positionals[0];
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
      return Promise.resolve(context.usageError(
        `Cannot show the help of "${topic}": no such command\nHint: ${
          suggestion(topic, Object.keys(COMMANDS))
        }\n`,
      ));
    }
    return Promise.resolve(
      context.help(helpText(topic === undefined ? KREPIS : COMMANDS[topic as Word])),
    );
  },
};

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
  const options = installOptions(spec, values, usageError);
  if (typeof options === "number") return options;
  const context: Context = {
    io,
    json,
    out,
    err,
    options,
    root: () => options.cacheDir ?? cacheRoot(),
    usageError,
    help,
  };
  try {
    const outcome = await RUN[word as Word](context, { values, positionals });
    if (typeof outcome === "number") return outcome;
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

/**
 * The install options every fetching command shares, from its command line
 * and the environment; a usage error (its exit code) for a mirror that is no
 * URL or a `KREPIS_OFFLINE` that is neither yes nor no.
 */
function installOptions(
  spec: CommandSpec,
  values: Record<string, string | boolean | string[] | undefined>,
  usageError: (message: string) => number,
): InstallOptions | number {
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
  return options;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
