/**
 * One verified, resumable, decompressing download into a temp file.
 *
 * Network bytes are appended to `<file>.<ext>.partial` (so a later attempt or
 * run can resume with `Range`), hashed, and decompressed on the fly into the
 * temp file, whose bytes are hashed and counted too. Never more bytes than
 * the manifest's sizes are accepted. The temp file is complete and verified
 * when this returns; the caller renames it into place.
 */

import zlib from "node:zlib";
import type { Hash } from "node:crypto";
import { CacheError, IntegrityError } from "../errors.ts";
import { DISK_FULL_HINT, isDiskFull } from "../_internal/os_error.ts";
import { chunksWithIdleTimeout, fetchFollowing, HttpStatusError } from "./http.ts";
import { sha256 } from "./hash.ts";
import { gaveUp, Retryable, withRetries } from "./retry.ts";
import type { Compression } from "../manifest.ts";
import type { Progress } from "../types.ts";

/** One copy of the library that can be fetched. */
export interface Candidate {
  url: URL;
  /** How it is compressed, or null for the library itself. */
  compression: Compression | null;
  /** Bytes and SHA-256 of what is transferred. */
  size: number;
  sha256: string;
}

/** Retry and timeout settings. */
export interface Tuning {
  attempts: number;
  baseDelayMs: number;
  connectMs: number;
  idleMs: number;
  /** Absolute time (ms since epoch) after which no new attempt starts and transfers abort. */
  deadline: number;
}

/** One download: what to fetch, what it must decompress to, and where it goes. */
export interface Transfer {
  /** The copy fetched. */
  candidate: Candidate;
  /** Size and SHA-256 of the library itself (what the copy decompresses to). */
  raw: { size: number; sha256: string };
  /** Where received bytes are kept, so that a later attempt or run resumes. */
  partialPath: string;
  /** The temp file the library is written to. */
  out: Deno.FsFile;
  /** Retries and timeouts. */
  tuning: Tuning;
  /** Called as bytes arrive. */
  onProgress: (progress: Progress) => void;
}

/** Whether this runtime's node:zlib can decompress zstd (else gzip is used). */
export const HAS_ZSTD: boolean = typeof zlib.createZstdDecompress === "function";

/** Bytes hashed and decompressed at a time. */
const BATCH_BYTES = 1024 * 1024;

/** The disk (not the network) failed: no retry. */
export class DiskError extends CacheError {}

/**
 * Downloads `t.candidate`, verifying it against its own hash and the library
 * (`t.raw`) against its hash, into `t.out`. Retries network errors,
 * timeouts, truncation and 5xx with exponential backoff; never 4xx,
 * integrity or disk failures.
 */
export async function downloadVerified(t: Transfer): Promise<void> {
  let freshAfterResume = false;
  let state = { resumed: false };
  const result = await withRetries(t.tuning, async () => {
    state = { resumed: false };
    await attemptOnce(t, state);
    await Deno.remove(t.partialPath).catch(() => {});
  }, (error) => {
    if (!(error instanceof IntegrityError)) return;
    try {
      Deno.removeSync(t.partialPath); // before the next attempt could resume from it
    } catch {
      // already gone
    }
    // Bytes resumed from an earlier run may be what failed: one more try
    // from byte 0 before blaming the server.
    if (state.resumed && !freshAfterResume) {
      freshAfterResume = true;
      return "again";
    }
  });
  if (result.ok) return;
  throw gaveUp(
    t.candidate.url,
    result.lastError,
    ` (gave up after ${t.tuning.attempts} attempts or the deadline)`,
    "check the network and KREPIS_MIRROR; with a warm cache, KREPIS_OFFLINE=1 avoids the network",
  );
}

/** The file name of a URL, for messages. */
function fileName(url: URL): string {
  return url.pathname.split("/").pop() || url.href;
}

async function attemptOnce(t: Transfer, state: { resumed: boolean }): Promise<void> {
  const { candidate, partialPath, out } = t;
  const name = fileName(candidate.url);
  await out.truncate(0);
  await out.seek(0, Deno.SeekMode.Start);
  let have = await usablePartialSize(partialPath, candidate.size);
  state.resumed = have > 0;
  let sink = new Sink(t);
  /** Drops the partial and anything written, to start from byte 0. */
  const restart = async () => {
    await sink.abandon();
    await Deno.remove(partialPath).catch(() => {});
    have = 0;
    await out.truncate(0);
    await out.seek(0, Deno.SeekMode.Start);
    sink = new Sink(t);
  };
  if (have > 0) await replay(partialPath, sink);
  if (have === candidate.size) {
    // A complete partial from an earlier run: use it only if it verifies.
    if (sink.compressedDigest() === candidate.sha256) {
      t.onProgress({ file: name, received: have, total: candidate.size });
      return await sink.finish();
    }
    await restart();
  }

  const controller = new AbortController();
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (have > 0) headers.range = `bytes=${have}-`;
  const { response } = await fetchFollowing(
    candidate.url,
    headers,
    t.tuning.connectMs,
    controller,
  );
  const status = response.status;
  if (status === 416 && have > 0) {
    await response.body?.cancel();
    await sink.abandon();
    await Deno.remove(partialPath).catch(() => {});
    throw new Retryable(`the server refused to resume ${name} (416)`);
  }
  if (status !== 200 && status !== 206) {
    await response.body?.cancel();
    const message =
      `Cannot download ${candidate.url.href}: the server answered ${status} ${response.statusText}`;
    throw new HttpStatusError(
      message,
      status,
      status >= 500 ? {} : { hint: "check KREPIS_MIRROR; the release may not carry this file" },
    );
  }
  const resumed = status === 206 && have > 0 &&
    (response.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`);
  if (!resumed && have > 0) {
    // The server ignored (or garbled) our Range: start over from byte 0.
    await restart();
  }
  const announced = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(announced) && have + announced > candidate.size) {
    await response.body?.cancel();
    throw new IntegrityError(
      `Cannot download ${name}: the server announces ${
        have + announced
      } bytes, the manifest says ${candidate.size}`,
      { hint: `the release host serves another file under this name; check KREPIS_MIRROR` },
    );
  }
  if (!response.body) throw new Retryable(`the server sent no body for ${name}`);

  const from = have;
  try {
    have = await receive(t, response.body, have, sink, controller);
  } catch (error) {
    // Close the connection: an endless or stalled body must not keep flowing.
    controller.abort();
    await sink.abandon();
    throw error;
  }
  if (have < candidate.size) {
    await sink.abandon();
    if (Number.isFinite(announced) && have - from === announced) {
      // A whole answer, shorter than the file (an HTML error page sent with
      // status 200): not a transfer cut short, and not worth a retry.
      await Deno.remove(partialPath).catch(() => {});
      throw new IntegrityError(
        `Cannot verify ${name}: the server's whole answer holds ${announced} bytes, and the manifest lists ${candidate.size}`,
        { hint: `the release host serves another file under this name; check KREPIS_MIRROR` },
      );
    }
    throw new Retryable(`the transfer of ${name} ended at ${have} of ${candidate.size} bytes`);
  }
  if (sink.compressedDigest() !== candidate.sha256) {
    await sink.abandon();
    throw new IntegrityError(
      `Cannot verify ${name}: its SHA-256 ${sink.compressedDigest()} is not ${candidate.sha256} from the verified manifest`,
      {
        hint:
          `the release host serves damaged or foreign bytes; nothing was cached. Retry later or use another KREPIS_MIRROR`,
      },
    );
  }
  await sink.finish();
}

/** Reads the body into the partial file and the sink; returns the bytes now held. */
async function receive(
  t: Transfer,
  body: ReadableStream<Uint8Array>,
  start: number,
  sink: Sink,
  controller: AbortController,
): Promise<number> {
  const { candidate, tuning } = t;
  const name = fileName(candidate.url);
  let have = start;
  using partial = await openPartial(t.partialPath, have > 0);
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = async () => {
    if (batched === 0) return;
    const joined = batch.length === 1 ? batch[0] : new Uint8Array(batched);
    if (batch.length > 1) {
      let at = 0;
      for (const piece of batch) {
        joined.set(piece, at);
        at += piece.length;
      }
    }
    batch = [];
    batched = 0;
    await sink.push(joined);
  };
  for await (
    const bytes of chunksWithIdleTimeout(body, tuning.idleMs, tuning.deadline, controller, name)
  ) {
    if (have + bytes.length > candidate.size) {
      controller.abort();
      throw new IntegrityError(
        `Cannot download ${name}: the server sent more than the ${candidate.size} bytes the manifest lists`,
        { hint: `the release host serves another file under this name; check KREPIS_MIRROR` },
      );
    }
    // Every chunk reaches the partial file at once (a resume starts from
    // there); hashing and decompression run on ~1 MiB batches, which
    // halves the cost of a large download.
    await writeAll(partial, bytes);
    have += bytes.length;
    batch.push(bytes);
    batched += bytes.length;
    if (batched >= BATCH_BYTES) await flush();
    t.onProgress({ file: name, received: have, total: candidate.size });
  }
  await flush();
  await partial.sync();
  return have;
}

/** Size of a usable partial file, after removing one that is not a regular file or too big. */
async function usablePartialSize(path: string, limit: number): Promise<number> {
  try {
    const info = await Deno.lstat(path);
    if (info.isFile && info.size <= limit) return info.size;
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return 0;
}

async function openPartial(path: string, append: boolean): Promise<Deno.FsFile> {
  // usablePartialSize removed anything that is not a regular file.
  return await Deno.open(
    path,
    append ? { append: true } : { write: true, create: true, truncate: true, mode: 0o600 },
  )
    .catch((error) => {
      throw diskError(error, path);
    });
}

async function replay(path: string, sink: Sink): Promise<void> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    await sink.push(buffer.slice(0, n));
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  try {
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
  } catch (error) {
    throw diskError(error, "the cache");
  }
}

function diskError(error: unknown, where: string): Error {
  const message = error instanceof Error ? error.message : String(error);
  const full = isDiskFull(error);
  return new DiskError(
    `Cannot write to ${where}: ${full ? "the disk is full" : message}`,
    { cause: error, hint: full ? DISK_FULL_HINT : "check KREPIS_CACHE_DIR" },
  );
}

/**
 * Where transferred bytes go. The transferred (possibly compressed) bytes
 * are hashed as they arrive; the library's bytes are hashed, counted and
 * written to the temp file. A compressed copy is decompressed only in
 * {@linkcode Sink.finish}, from the partial file, after its own SHA-256
 * matched the verified manifest: the decompressor never sees unverified
 * bytes (Deno's node:zlib zstd stream can throw an uncatchable exception on
 * corrupt input, which would end the host process).
 */
class Sink {
  #compressedHash: Hash = sha256();
  #rawHash: Hash = sha256();
  #rawBytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  #decompressor: zlib.ZstdDecompress | zlib.Gunzip | null = null;
  #digest: string | null = null;

  readonly candidate: Candidate;
  readonly raw: { size: number; sha256: string };
  readonly out: Deno.FsFile;
  readonly partialPath: string;

  constructor(t: Transfer) {
    this.candidate = t.candidate;
    this.raw = t.raw;
    this.out = t.out;
    this.partialPath = t.partialPath;
  }

  async push(bytes: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    this.#compressedHash.update(bytes);
    if (this.candidate.compression === null) this.#raw(bytes);
    await this.#writing;
    this.#throwIfFailed();
  }

  /** Decompresses the partial file (whose hash matched), then checks the library's size and hash. */
  async finish(): Promise<void> {
    if (this.candidate.compression !== null) await this.#decompress(this.partialPath);
    await this.#writing;
    this.#throwIfFailed();
    const digest = this.#rawHash.digest("hex");
    if (this.#rawBytes !== this.raw.size || digest !== this.raw.sha256) {
      throw new IntegrityError(
        `Cannot verify ${this.#name()}: the library it holds has ${this.#rawBytes} bytes with SHA-256 ${digest}, not ${this.raw.size} bytes with ${this.raw.sha256}`,
        { hint: `the release host serves damaged or foreign bytes; nothing was cached` },
      );
    }
  }

  async #decompress(partialPath: string): Promise<void> {
    const d = this.candidate.compression === "zstd"
      ? zlib.createZstdDecompress()
      : zlib.createGunzip();
    this.#decompressor = d;
    const ended = new Promise<void>((resolve) => {
      d.on("data", (chunk: Uint8Array) => this.#raw(chunk));
      d.on("end", () => resolve());
      d.on("close", () => resolve());
      d.on("error", (error: Error) => {
        this.#failure ??= new IntegrityError(
          `Cannot decompress ${this.#name()}: ${error.message}`,
          { hint: `the release host serves damaged bytes; nothing was cached` },
        );
        resolve();
      });
    });
    using file = await Deno.open(partialPath, { read: true });
    const buffer = new Uint8Array(BATCH_BYTES);
    while (!this.#failure) {
      const n = await file.read(buffer);
      if (n === null) break;
      if (!d.write(buffer.slice(0, n))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            d.off("drain", done);
            d.off("close", done);
            resolve();
          };
          d.on("drain", done);
          d.on("close", done);
        });
      }
      await this.#writing;
    }
    d.end();
    await ended;
  }

  compressedDigest(): string {
    this.#digest ??= this.#compressedHash.copy().digest("hex");
    return this.#digest;
  }

  async abandon(): Promise<void> {
    this.#decompressor?.destroy();
    await this.#writing.catch(() => {});
  }

  #raw(chunk: Uint8Array) {
    if (this.#failure) return;
    this.#rawBytes += chunk.length;
    if (this.#rawBytes > this.raw.size) {
      this.#fail(
        new IntegrityError(
          `Cannot verify ${this.#name()}: it decompresses to more than the ${this.raw.size} bytes the manifest lists`,
          { hint: `the release host serves damaged or foreign bytes; nothing was cached` },
        ),
      );
      return;
    }
    this.#rawHash.update(chunk);
    const copy = chunk.slice();
    this.#writing = this.#writing.then(() => writeAll(this.out, copy)).catch((error) =>
      this.#fail(error)
    );
  }

  #fail(error: Error) {
    this.#failure ??= error;
    this.#decompressor?.destroy();
  }

  #throwIfFailed() {
    if (this.#failure) throw this.#failure;
  }

  #name(): string {
    return fileName(this.candidate.url);
  }
}
