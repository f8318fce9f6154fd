/**
 * The conventions every Krepis command follows, the `krepis` CLI and each
 * `deno task` alike: `--help`/`-h` prints the usage, options, environment
 * variables and exit codes on stdout and exits 0; an unknown option, command
 * or value is a usage error (exit 2) naming the nearest valid one; every
 * failure, usage errors included, is written on stderr in one shape,
 * `error: Cannot <action>: <state>` with the hint on the next line
 * ({@linkcode errorText}).
 *
 * Built on `node:util`'s `parseArgs`, which Deno ships: no npm package.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { nearest, suggestion } from "../_internal/nearest.ts";

export { nearest, suggestion };

/** One option of a command. */
export interface OptionSpec {
  /** A flag, or an option that takes a value. */
  type: "string" | "boolean";
  /** A one-letter alias. */
  short?: string;
  /** May be given more than once (the values are collected). */
  multiple?: boolean;
  /** The value's placeholder in the help, e.g. `<triple>`. */
  value?: string;
  /** One line for the help. */
  help: string;
  /** The values a string option accepts; anything else is a usage error. */
  choices?: readonly string[];
}

/** A command's interface, from which its help and its checks are made. */
export interface CommandSpec {
  /** What a user types, e.g. `krepis init` or `deno task build`. */
  name: string;
  /** One line: what it does. */
  summary: string;
  /** What follows the name in the usage line(s), e.g. `[--target <triple>]`. */
  usage: string[];
  /** The options, by long name (without `--`). `--help` is added to every command. */
  options: Record<string, OptionSpec>;
  /** Words accepted as the first positional, with one line each (subcommands). */
  commands?: Record<string, string>;
  /** How many positionals are accepted. @default {0, or 1 with `commands`} */
  maxPositionals?: number;
  /** Environment variables the command reads, with one line each. */
  env?: Record<string, string>;
  /** Exit codes, with their meaning. */
  exitCodes?: Record<number, string>;
  /** Free text after the tables (examples, notes). */
  more?: string;
}

/** The parsed values of a spec's options. */
export type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean
    : O[K]["multiple"] extends true ? string[]
    : string;
};

/** A successful parse, or what to print and the exit code. */
export type Parsed<O extends Record<string, OptionSpec>> =
  | { kind: "run"; values: Values<O>; positionals: string[] }
  | {
    kind: "exit";
    code: number;
    stdout: string;
    stderr: string;
    /** A usage error's message (`Cannot run …`, its hint included), without the `error: ` label. */
    error?: string;
  };

const LABEL = "error: ";

/** Whether a message is worded as Krepis words failures: `Cannot <action>…`. */
function worded(message: string): boolean {
  return message.startsWith("Cannot ");
}

/**
 * A failure as every Krepis command writes it on stderr: `error: ` and the
 * `Cannot <action>: <state>` sentence, the hint on the next line, one
 * newline at the end. A message that does not start `Cannot ` (an
 * unexpected error) is put under `Cannot run <command>: …`; one that
 * already carries the label keeps it once.
 *
 * @param message The message (a thrown error's, or a command's own).
 * @param command What was run, e.g. `deno task build` (for an unworded message).
 * @returns The text to write.
 * @example
 * ```ts
 * import { errorText } from "./command_line.ts";
 * errorText("Cannot build: no cargo\nHint: install Rust"); // "error: Cannot build: no cargo\nHint: install Rust\n"
 * ```
 */
export function errorText(message: string, command = "the command"): string {
  let text = message.trim();
  if (text.startsWith(LABEL)) text = text.slice(LABEL.length);
  if (!worded(text)) text = `Cannot run ${command}: ${text || "it failed"}`;
  return `${LABEL}${text}\n`;
}

/**
 * Writes a failure on stderr in the one shape ({@linkcode errorText}).
 *
 * @param message The message.
 * @param command What was run (for an unworded message).
 */
export function printError(message: string, command?: string): void {
  writeAll(Deno.stderr, new TextEncoder().encode(errorText(message, command)));
}

let reporting = false;

/**
 * From now on, an error this program does not catch is written in the one
 * shape and exits 1, instead of Deno's `Uncaught (in promise) Error: …`. A
 * defect (a `TypeError` and the like, or a message that does not start
 * `Cannot `) is put under `Cannot run <command>: …` and keeps its stack
 * below the line.
 * {@linkcode commandLine} calls it, so every task has it.
 *
 * @param command What was run, e.g. `deno task build`.
 */
export function reportUncaught(command: string): void {
  if (reporting) return;
  reporting = true;
  const report = (event: Event, error: unknown) => {
    event.preventDefault();
    const message = error instanceof Error ? error.message : String(error);
    // A defect (a TypeError and the like, or an unworded message) is put
    // under `Cannot run <command>` and keeps its stack; a refusal does not.
    const defect = error instanceof TypeError || error instanceof ReferenceError ||
      error instanceof RangeError || error instanceof SyntaxError || !worded(message);
    if (!defect) {
      printError(message, command);
      Deno.exit(1);
    }
    const stack = error instanceof Error && error.stack
      ? error.stack.split("\n").filter((line) => /^\s+at /.test(line)).join("\n")
      : "";
    printError(`Cannot run ${command}: ${message}${stack ? `\n${stack}` : ""}`, command);
    Deno.exit(1);
  };
  globalThis.addEventListener("error", (e) => report(e, (e as ErrorEvent).error));
  globalThis.addEventListener(
    "unhandledrejection",
    (e) => report(e, (e as PromiseRejectionEvent).reason),
  );
}

/** The exit code of a usage error, the same for every command. */
export const USAGE_EXIT = 2;

const HELP: OptionSpec = { type: "boolean", short: "h", help: "show this help" };

function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

/** The `--help` text of a command. */
export function helpText(spec: CommandSpec): string {
  const lines = [`${spec.name}: ${spec.summary}`, ""];
  spec.usage.forEach((u, i) => lines.push(`${i === 0 ? "Usage:" : "      "} ${spec.name} ${u}`));
  if (spec.commands && Object.keys(spec.commands).length) {
    lines.push("", "Commands:", ...table(Object.entries(spec.commands)));
  }
  const options = Object.entries({ ...spec.options, help: HELP }).map((
    [name, o],
  ): [string, string] => [
    `${o.short ? `-${o.short}, ` : ""}--${name}${o.value ? ` ${o.value}` : ""}`,
    `${o.help}${o.choices ? ` (${o.choices.join(" or ")})` : ""}${
      o.multiple ? " (may be repeated)" : ""
    }`,
  ]);
  lines.push("", "Options:", ...table(options));
  if (spec.env && Object.keys(spec.env).length) {
    lines.push("", "Environment:", ...table(Object.entries(spec.env)));
  }
  const codes = Object.entries(spec.exitCodes ?? { 0: "success", 1: "failure", 2: "usage error" });
  lines.push("", "Exit codes:", ...table(codes));
  if (spec.more) lines.push("", spec.more.trimEnd());
  return `${lines.join("\n")}\n`;
}

function usageError(spec: CommandSpec, problem: string, hint?: string): Parsed<never> {
  const error = `Cannot run ${spec.name}: ${problem}\nHint: ${
    hint ? `${hint} (\`${spec.name} --help\` lists the options)` : `run \`${spec.name} --help\``
  }`;
  return { kind: "exit", code: USAGE_EXIT, stdout: "", stderr: errorText(error), error };
}

/**
 * A usage error of a command, found after its options were parsed (two
 * options that exclude each other, a missing argument): written in the one
 * shape, exit 2.
 *
 * @param message The `Cannot …` message, its hint included.
 */
export function exitUsage(message: string): never {
  printError(message);
  Deno.exit(USAGE_EXIT);
}

/**
 * Parses a command line against a spec: `--help` anywhere (before `--`)
 * wins; unknown options, missing or unexpected values, values outside
 * `choices`, unknown subcommands and extra positionals are usage errors
 * with a suggestion.
 *
 * @param spec The command.
 * @param args The arguments (without the program name).
 * @returns The values and positionals, or what to print and the exit code.
 */
export function parseCommandLine<O extends Record<string, OptionSpec>>(
  spec: CommandSpec & { options: O },
  args: string[],
): Parsed<O> {
  const all: Record<string, OptionSpec> = { ...spec.options, help: HELP };
  const config = Object.fromEntries(
    Object.entries(all).map(([name, o]) => [name, {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    }]),
  );
  const { tokens } = parseArgs({ args, options: config, strict: false, tokens: true });
  const longNames = Object.keys(all).map((n) => `--${n}`);
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    // Own keys only: `--constructor` names no option.
    const option = Object.hasOwn(all, token.name) ? all[token.name] : undefined;
    if (!option) {
      const given = token.rawName;
      const near = nearest(given.replace(/^-+/, "--"), longNames);
      return usageError(
        spec,
        `unknown option ${given}`,
        near ? `did you mean ${near}?` : undefined,
      );
    }
    if (token.name === "help") return { kind: "exit", code: 0, stdout: helpText(spec), stderr: "" };
  }
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const option = all[token.name];
    const flag = `--${token.name}`;
    if (!option.multiple && seen.has(token.name)) return usageError(spec, `${flag} is given twice`);
    seen.add(token.name);
    if (option.type === "boolean" && token.inlineValue) {
      return usageError(spec, `${flag} takes no value (got "${token.value}")`);
    }
    if (option.type === "string") {
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith("-"))) {
        return usageError(spec, `${flag} needs a value${option.value ? ` ${option.value}` : ""}`);
      }
      if (token.value === "") return usageError(spec, `${flag} is empty`);
      if (option.choices && !option.choices.includes(token.value)) {
        return usageError(
          spec,
          `${flag} takes ${option.choices.join(" or ")}, not "${token.value}"`,
          nearest(token.value, option.choices)
            ? `did you mean ${flag} ${nearest(token.value, option.choices)}?`
            : undefined,
        );
      }
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: config, strict: true, allowPositionals: true });
  } catch (error) {
    // Only repeated single-value options and the like reach here.
    return usageError(spec, (error as Error).message.replaceAll("'", ""));
  }
  const { positionals } = parsed;
  const commands = spec.commands ? Object.keys(spec.commands) : undefined;
  if (commands && positionals.length && !commands.includes(positionals[0])) {
    return usageError(
      spec,
      `no command "${positionals[0]}"`,
      suggestion(positionals[0], commands),
    );
  }
  const max = spec.maxPositionals ?? (commands ? 1 : 0);
  if (positionals.length > max) {
    const extra = positionals.slice(max).map((p) => `"${p}"`).join(" ");
    return usageError(
      spec,
      `unexpected argument${positionals.length - max > 1 ? "s" : ""} ${extra}`,
    );
  }
  return { kind: "run", values: parsed.values as Values<O>, positionals };
}

/**
 * Splits a command line into its command word (the first positional,
 * wherever it stands) and the other arguments. The options of every given
 * spec are known here, so an option's value is never taken for the word
 * (`krepis --cache-dir /c info` is `info`).
 */
export function splitCommand(
  args: string[],
  specs: readonly CommandSpec[],
): { word?: string; rest: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const spec of specs) {
    for (const [name, o] of Object.entries(spec.options)) {
      options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}) };
    }
  }
  const { tokens } = parseArgs({ args, options, strict: false, tokens: true });
  const word = tokens.find((t) => t.kind === "positional");
  if (!word || word.kind !== "positional") return { rest: args };
  return { word: word.value, rest: args.filter((_, i) => i !== word.index) };
}

/** Writes every byte (a pipe may take fewer than asked). */
export function writeAll(to: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += to.writeSync(bytes.subarray(written));
}
