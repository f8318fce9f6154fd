/**
 * What every `krepis` command is run with, so that each command is one
 * `run(context, args)` in its own file and `cli.ts` only parses and
 * dispatches.
 *
 * @module
 */

import type { InstallOptions } from "../install.ts";
import type { CliIo, Outcome } from "../types.ts";

/** Where a command writes, what it was given in common, and how it refuses. */
export interface Context {
  /** The streams (for a progress line and terminal checks). */
  io: CliIo;
  /** Whether one JSON document is printed instead of text. */
  json: boolean;
  /** Writes to stdout. */
  out(text: string): void;
  /** Writes to stderr. */
  err(text: string): void;
  /** The install options every fetching command shares (mirror, cache, keys, offline, verify). */
  options: InstallOptions;
  /** The cache root: `--cache-dir`, else the default. */
  root(): string;
  /** Reports a usage error (and its JSON document) and returns its exit code. */
  usageError(message: string): number;
  /** Prints a help text (or its JSON document) and returns exit 0. */
  help(text: string): number;
}

/** A command's parsed command line. */
export interface Args {
  /** Option values by name. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** The positional arguments after the command word. */
  positionals: string[];
}

/** A command: its outcome, or an exit code it already reported (a usage error, a help text). */
export type Run = (context: Context, args: Args) => Promise<Outcome | number>;

/** A string option's value. */
export function stringValue(args: Args, name: string): string | undefined {
  return args.values[name] as string | undefined;
}
