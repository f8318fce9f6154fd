/**
 * The one retry policy for everything the loader downloads (manifest,
 * signature, library): which failures another attempt may fix, and how
 * long to wait before it.
 *
 * Retried: connection failures, resets, timeouts, a body cut short, HTTP
 * 5xx. Never retried: HTTP 4xx, a refused redirect, bytes that do not
 * verify, a full disk, a missing Deno permission. Waits double from
 * `baseDelayMs` with full jitter, and never past the deadline.
 *
 * @module
 */

import { describe, HttpStatusError, TimeoutError } from "./http.ts";
import { NetworkError } from "../errors.ts";

/** An attempt that failed in a way another attempt may fix (a transfer cut short, a refused resume). */
export class Retryable extends Error {
  /** @param message What went wrong. */
  constructor(message: string) {
    super(message);
    this.name = "Retryable";
  }
}

/** How many attempts, how long between them, until when. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first wait, in ms; it doubles per attempt (with jitter). */
  baseDelayMs: number;
  /** Absolute time (ms since epoch) after which no attempt starts. */
  deadline: number;
}

/**
 * Whether another attempt may fix `error`.
 *
 * @param error What an attempt threw.
 * @returns True for network failures, timeouts, truncation and 5xx.
 */
export function isRetryable(error: unknown): boolean {
  // A missing Deno permission is not a network failure: it never retries.
  if (error instanceof Deno.errors.NotCapable) return false;
  if (error instanceof Retryable || error instanceof TimeoutError) return true;
  if (error instanceof HttpStatusError) return error.status >= 500;
  // fetch() rejects with TypeError on connection failures; Deno's network
  // errors (reset, refused, body interrupted) likewise.
  return error instanceof TypeError || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.UnexpectedEof ||
    (error instanceof Error && error.name === "AbortError");
}

/** How long to wait after failed attempt `attempt` (1-based): full jitter, clamped to the deadline. */
export function retryDelay(policy: RetryPolicy, attempt: number, now = Date.now()): number {
  const delay = Math.random() * policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(delay, Math.max(0, policy.deadline - now));
}

/**
 * Runs `attempt` until it succeeds, throws something not retryable, the
 * attempts run out or the deadline passes.
 *
 * @param policy Attempts, delays, deadline.
 * @param attempt One attempt (1-based number).
 * @param onError Called with each failure before the policy decides;
 *   returning `"again"` retries at once without counting the attempt (once
 *   per call is the caller's business).
 * @returns The result, or the last failure (undefined when the deadline
 *   passed before any attempt) once nothing more is tried.
 * @throws The first failure that is not retryable.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  onError: (error: unknown) => "again" | void = () => {},
): Promise<{ ok: true; value: T } | { ok: false; lastError: unknown }> {
  let lastError: unknown;
  for (let n = 1; n <= policy.attempts; n++) {
    if (Date.now() >= policy.deadline) break;
    try {
      return { ok: true, value: await attempt(n) };
    } catch (error) {
      lastError = error;
      if (onError(error) === "again") {
        n--;
        continue;
      }
      if (!isRetryable(error)) throw error;
      if (n < policy.attempts) {
        await new Promise((resolve) => setTimeout(resolve, retryDelay(policy, n)));
      }
    }
  }
  return { ok: false, lastError };
}

/**
 * The error for a download that {@linkcode withRetries} gave up on: a
 * `TimeoutError` when the last attempt timed out, else a `NetworkError`;
 * either way `Cannot download <url>: <why><detail>` and the hint, with the
 * last failure as its cause.
 *
 * @param url What was being downloaded.
 * @param lastError The last failure (undefined: the deadline passed first).
 * @param detail Appended to the reason, e.g. how many attempts were made.
 * @param hint What to do about it.
 */
export function gaveUp(url: URL, lastError: unknown, detail: string, hint: string): Error {
  const reason = lastError === undefined ? "the deadline passed" : describe(lastError);
  const message = `Cannot download ${url.href}: ${reason}${detail}`;
  return lastError instanceof TimeoutError
    // Deno's own class, which has no hint field: the hint stays on the message's next line.
    ? Object.assign(new TimeoutError(`${message}\nHint: ${hint}`), { cause: lastError })
    : new NetworkError(message, { cause: lastError, hint });
}
