/**
 * HTTP for the loader: the URL policy (HTTPS except on loopback), redirects
 * followed by hand so an https → http hop is refused, and a connect timeout.
 * Proxies: Deno's fetch honours `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
 */

const MAX_REDIRECTS = 5;

/** An error's message with its cause (fetch's "fetch failed" says little alone). */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const first = error.message.split("\n")[0];
  const cause = error.cause instanceof Error ? error.cause.message.split("\n")[0] : "";
  return cause && !first.includes(cause) ? `${first} (${cause})` : first;
}

/** Whether a URL's host is a loopback address. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Refuses any URL that is neither https nor http on loopback. */
export function checkUrl(url: URL): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && isLoopback(url)) return;
  throw new Error(
    `Cannot download from ${url.href}: only https:// is allowed (plain http only on loopback)\nHint: set KREPIS_MIRROR to an https:// URL`,
  );
}

/** A non-2xx answer. */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = "HttpStatusError";
    this.status = status;
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
        throw new Error(
          `Cannot download ${start.href}: it redirects from https to ${next.protocol} (${next.href})\nHint: the release host is misconfigured or tampered with; use another KREPIS_MIRROR`,
        );
      }
      url = next;
      continue;
    }
    return { response, url };
  }
  throw new Error(`Cannot download ${start.href}: more than ${MAX_REDIRECTS} redirects`);
}
