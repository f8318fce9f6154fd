/** Deno's own permission refusals, turned into {@linkcode PermissionError}. */

import { PermissionError } from "./errors.ts";

/**
 * The {@linkcode PermissionError} for Deno's own refusal (`Deno.errors.NotCapable`),
 * naming the flag Deno's message names; other errors are returned as they are.
 *
 * @param error What an operation threw.
 * @param action What was being done, e.g. `"download the kernel"`.
 * @returns A PermissionError, or `error` itself.
 */
export function permissionError(error: unknown, action: string): unknown {
  if (!(error instanceof Deno.errors.NotCapable)) return error;
  const flag = error.message.match(/--allow-[a-z]+/)?.[0] ?? "the --allow-… flag it names";
  return new PermissionError(`Cannot ${action}: ${error.message.split("\n")[0]}`, flag, {
    cause: error,
  });
}
