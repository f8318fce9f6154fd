/**
 * What went wrong in one line, for a message that quotes another error.
 *
 * @module
 */

import { KrepisError } from "../errors.ts";

/**
 * The error's own statement without its hint: a loader error's `summary`
 * (its hint was passed in apart); for any other error (Deno's, the OS's, a
 * `TypeError` of ours) the first line of its message, which is the
 * statement by the `Cannot …`/one-sentence convention.
 */
export function summaryOf(error: unknown): string {
  if (error instanceof KrepisError) return error.summary;
  if (!(error instanceof Error)) return String(error);
  const end = error.message.indexOf("\n");
  return end < 0 ? error.message : error.message.slice(0, end);
}
