/**
 * HTTP for the loader: the URL policy (HTTPS except on loopback), redirects
 * followed by hand so an https → http hop is refused, and a connect timeout.
 * Proxies: Deno's fetch honours `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
 */

import { type KrepisErrorOptions, NetworkError } from "../errors.ts";
import { summaryOf } from "../_internal/summary.ts";
const MAX_REDIRECTS = 5;

/** An error's message with its cause (fetch's "fetch failed" says little alone). */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Our own messages already name the URL; the caller names it again.
  const first = summaryOf(error).replace(/^Cannot download \S+: /, "");
  const cause = error.cause instanceof Error ? summaryOf(error.cause) : "";
  return cause && !first.includes(cause) ? `${first} (${cause})` : first;
}

/** Whether a URL's host is a loopback address. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A refusal by policy (scheme, redirect): never retried. */
export class PolicyError extends NetworkError {}

/** Refuses any URL that is neither https nor http on loopback. */
export function checkUrl(url: URL): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && isLoopback(url)) return;
  throw new PolicyError(
    `Cannot download from ${url.href}: only https:// is allowed (plain http only on loopback)`,
    { hint: `set KREPIS_MIRROR to an https:// URL` },
  );
}

/**
 * Reads a mirror URL as a user wrote it (`--mirror`, `KREPIS_MIRROR`).
 *
 * @returns The URL, or a `Cannot …` message with a hint when it is not an
 *   http(s) URL (most often the scheme was left out).
 */
export function parseMirror(text: string): URL | string {
  const problem = (why: string, hint: string) =>
    `Cannot use the mirror "${text}": ${why}\nHint: ${hint}`;
  const schemeless = !/^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // not a URL at all
  }
  if (schemeless || !url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    const local = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d*)?(\/|$)/i.test(text);
    const guess = `${local ? "http" : "https"}://${text}`;
    return problem(
      "it is not an http:// or https:// URL",
      schemeless ? `write the scheme, e.g. ${guess}` : "use an https:// URL (http:// on loopback)",
    );
  }
  return url;
}

/** A non-2xx answer. */
export class HttpStatusError extends NetworkError {
  declare readonly status: number;
  constructor(message: string, status: number, options: KrepisErrorOptions = {}) {
    super(message, { ...options, status });
    this.name = "HttpStatusError";
  }
}

/** A timeout of ours (connect or idle). */
export class TimeoutError extends Deno.errors.TimedOut {
  constructor(message: string) {
    super(message);
    this.name = "TimedOut";
  }
}

/**
 * Fetches `url`, following up to five redirects by hand: every hop must pass
 * {@linkcode checkUrl} and none may go from https to http. Gives up with a
 * {@linkcode TimeoutError} when no response headers arrive within
 * `connectMs`. `controller` aborts the whole exchange (body included).
 */
export async function fetchFollowing(
  start: URL,
  headers: Record<string, string>,
  connectMs: number,
  controller: AbortController,
): Promise<{ response: Response; url: URL }> {
  let url = start;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    checkUrl(url);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, connectMs);
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: "manual", signal: controller.signal });
    } catch (error) {
      if (timedOut) {
        throw new TimeoutError(`Cannot download ${url.href}: no response within ${connectMs} ms`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel();
      const next = new URL(response.headers.get("location")!, url);
      if (url.protocol === "https:" && next.protocol !== "https:") {
        throw new PolicyError(
          `Cannot download ${start.href}: it redirects from https to ${next.protocol} (${next.href})`,
          { hint: `the release host is misconfigured or tampered with; use another KREPIS_MIRROR` },
        );
      }
      url = next;
      continue;
    }
    return { response, url };
  }
  throw new PolicyError(`Cannot download ${start.href}: more than ${MAX_REDIRECTS} redirects`);
}

/**
 * Yields a body's chunks. When none arrives within `idleMs` (or by
 * `deadline`, ms since epoch), aborts `controller` and throws a
 * {@linkcode TimeoutError} naming `what`.
 */
export async function* chunksWithIdleTimeout(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  deadline: number,
  controller: AbortController,
  what: string,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let idle: ReturnType<typeof setTimeout> | undefined;
  let fired = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      fired = true;
      controller.abort();
    }, Math.max(0, Math.min(idleMs, deadline - Date.now())));
  };
  try {
    arm();
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (fired) {
          throw new TimeoutError(
            `Cannot download ${what}: no data for ${idleMs} ms (or the deadline passed)`,
          );
        }
        throw error;
      }
      if (chunk.done) return;
      arm();
      yield chunk.value;
    }
  } finally {
    clearTimeout(idle);
  }
}

/**
 * Reads a small body (manifest, signature) in full, refusing a
 * `Content-Length` or a body above `cap` bytes and a body that stalls for
 * `idleMs`. `tooLarge` makes the error for an oversized body.
 */
export async function readCapped(
  response: Response,
  cap: number,
  idleMs: number,
  controller: AbortController,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const announced = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(announced) && announced > cap) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (!response.body) return new Uint8Array();
  for await (
    const chunk of chunksWithIdleTimeout(response.body, idleMs, Infinity, controller, response.url)
  ) {
    total += chunk.length;
    if (total > cap) {
      controller.abort();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}
