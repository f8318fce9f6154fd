/**
 * The repository's tasks (`deno task …`) follow the `krepis` CLI's
 * conventions: `--help`, a usage error is exit 2 naming the nearest valid
 * word, every failure written as `error: Cannot …` with the hint on the next
 * line. The conventions themselves live with the CLI
 * (`loader/_cli/command_line.ts`); what only tasks need lives here, outside
 * the published package. This file is the one door from the repository into
 * them.
 *
 * @module
 */

import { isAbsolute, relative, resolve, sep } from "node:path";
import {
  type CommandSpec,
  type OptionSpec,
  parseCommandLine,
  reportUncaught,
  type Values,
  writeAll,
} from "../loader/_cli/command_line.ts";

export {
  type CommandSpec,
  errorText,
  exitUsage,
  nearest,
  type OptionSpec,
  parseCommandLine,
  type Parsed,
  printError,
  reportUncaught,
  splitCommand,
  suggestion,
  USAGE_EXIT,
  type Values,
  writeAll,
} from "../loader/_cli/command_line.ts";

/**
 * A path the user typed, made absolute against the folder they typed it
 * in: `deno task` runs every task in the folder of `deno.json` and says
 * where it was started in `INIT_CWD`, so `cd dist && deno task serve .`
 * means `dist`. `INIT_CWD` counts only when it is that folder or inside it,
 * as a `deno task` start always is: a script run directly, by a process
 * that itself runs under `deno task`, inherits a stale one. Otherwise (or
 * without `--allow-env` for it), the working folder.
 */
export function invocationPath(path: string): string {
  const cwd = Deno.cwd();
  let init: string | undefined;
  try {
    init = Deno.env.get("INIT_CWD") || undefined;
  } catch {
    // no permission to read it: the working folder
  }
  const below = init === undefined ? undefined : relative(cwd, init);
  const started = below !== undefined && below !== ".." && !below.startsWith(`..${sep}`) &&
    !isAbsolute(below);
  return resolve(started ? init! : cwd, path);
}

/**
 * For scripts: parses `Deno.args` and, on `--help` or a usage error, prints
 * and exits; otherwise returns the values and positionals. From then on an
 * uncaught error is written in the one shape ({@linkcode reportUncaught}).
 */
export function commandLine<O extends Record<string, OptionSpec>>(
  spec: CommandSpec & { options: O },
  args: string[] = Deno.args,
): { values: Values<O>; positionals: string[] } {
  reportUncaught(spec.name);
  const parsed = parseCommandLine(spec, args);
  if (parsed.kind === "exit") {
    const encoder = new TextEncoder();
    if (parsed.stdout) writeAll(Deno.stdout, encoder.encode(parsed.stdout));
    if (parsed.stderr) writeAll(Deno.stderr, encoder.encode(parsed.stderr));
    Deno.exit(parsed.code);
  }
  return parsed;
}
