import type { Progress } from "../types.ts";

/** Renders download progress: a redrawn bar on a TTY, plain lines otherwise. */
export interface ProgressView {
  /** Reports bytes received. */
  update(progress: Progress): void;
  /** Ends the current bar (newline on a TTY); `failed`: it stopped short, and the plain line says so. */
  done(failed?: boolean): void;
}

/** Where the view reads the terminal width and the time (tests inject both). */
export interface ProgressOptions {
  /**
   * The terminal's width in columns, read on every redraw (default: the
   * console's size, or 80 when there is no console).
   */
  columns?: () => number;
  /** A clock in milliseconds (default: `performance.now()`). */
  now?: () => number;
}

const encoder = new TextEncoder();

/** Redraws at most this often. */
const REDRAW_MS = 100;
/** Rate and ETA are shown once the bytes of this run span this long. */
const SAMPLE_MS = 500;
/** The width assumed when the console's cannot be read. */
const DEFAULT_COLUMNS = 80;
/** The bar's width when there is room, and the least it shrinks to. */
const BAR_WIDTH = 24;
const MIN_BAR_WIDTH = 10;
/** A file name is shortened to no fewer characters than this. */
const MIN_NAME_WIDTH = 24;
const ELLIPSIS = "...";

/** Human-readable bytes (KiB, MiB). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Seconds as `9s`, `2m05s` or `1h04m`. */
function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m`;
}

/** The console's width, or 80 when no standard stream is a terminal. */
function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return DEFAULT_COLUMNS;
  }
}

/** `text` cut to `width` characters with an ellipsis in the middle. */
function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  if (width <= ELLIPSIS.length) return text.slice(0, Math.max(width, 0));
  const keep = width - ELLIPSIS.length;
  const head = Math.floor(keep / 2);
  // The end of a file name (target, extension) tells more than its start.
  return text.slice(0, head) + ELLIPSIS + text.slice(text.length - (keep - head));
}

/** What one bar line shows. */
interface Fields {
  name: string;
  fraction: number;
  bytes: string;
  rate?: string;
  eta?: string;
}

/**
 * One bar line of at most `budget` characters: the file name is shortened
 * first (down to a minimum), then the bar (down to a minimum), then the
 * rate, the ETA and the sizes give way to a percentage.
 */
export function barLine(fields: Fields, budget: number): string {
  const { name, fraction, bytes, rate, eta } = fields;
  const percent = `${Math.floor(fraction * 100)}%`;
  const tails = [[bytes, rate, eta], [bytes, eta], [bytes], [percent]]
    .map((parts) => parts.filter((part) => part !== undefined).join(" "));
  const minName = Math.min(name.length, MIN_NAME_WIDTH);
  for (const tail of tails) {
    // `<name> [<bar>] <tail>`
    const room = budget - " []".length - (tail ? tail.length + 1 : 0);
    if (room < minName + MIN_BAR_WIDTH) continue;
    const nameWidth = Math.max(minName, Math.min(name.length, room - BAR_WIDTH));
    const barWidth = Math.min(BAR_WIDTH, room - nameWidth);
    const filled = Math.floor(fraction * barWidth);
    return `${shorten(name, nameWidth)} [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]${
      tail ? ` ${tail}` : ""
    }`;
  }
  // No room for a bar: the name and the percentage, as much as fits.
  const nameRoom = budget - percent.length - 1;
  if (nameRoom < ELLIPSIS.length + 2) return percent.slice(0, Math.max(budget, 0));
  return `${shorten(name, nameRoom)} ${percent}`;
}

/**
 * A progress view writing to `out`: on a TTY a bar with size, rate and ETA,
 * redrawn in place at most ten times a second and never wider than the
 * terminal (its width is read on every redraw); otherwise one line when a
 * file starts and one when it ends. `quiet` shows nothing (for `--json`).
 *
 * Rate and ETA count only the bytes received in this run (not those resumed
 * from a partial file), and appear once there is a sample to base them on.
 */
export function progressView(
  out: { writeSync(p: Uint8Array): number },
  tty: boolean,
  quiet: boolean,
  options: ProgressOptions = {},
): ProgressView {
  const columns = options.columns ?? consoleColumns;
  const clock = options.now ?? (() => performance.now());
  let file = "";
  /** The first report of this run for the file: the base of rate and ETA. */
  let first = { at: 0, received: 0 };
  let drawn: number | null = null;
  let last: Progress | null = null;
  const write = (text: string) => out.writeSync(encoder.encode(text));
  return {
    update(progress) {
      if (quiet) return;
      const now = clock();
      if (progress.file !== file) {
        if (file && tty && drawn !== null) write("\n");
        file = progress.file;
        first = { at: now, received: progress.received };
        drawn = null;
        if (!tty) write(`downloading ${file} (${formatBytes(progress.total)})\n`);
      } else if (last && progress.received < last.received) {
        // Started over from byte 0 (a retry that could not resume).
        first = { at: now, received: progress.received };
      }
      last = progress;
      const complete = progress.received >= progress.total;
      if (!tty || (drawn !== null && now - drawn < REDRAW_MS && !complete)) return;
      drawn = now;
      const elapsed = now - first.at;
      const gained = progress.received - first.received;
      let rate: string | undefined;
      let eta: string | undefined;
      if (elapsed >= SAMPLE_MS && gained > 0) {
        const perSecond = gained / (elapsed / 1000);
        rate = `${formatBytes(perSecond)}/s`;
        const left = Math.max(progress.total - progress.received, 0);
        eta = `ETA ${formatSeconds(Math.ceil(left / perSecond))}`;
      }
      const width = Math.floor(columns());
      const line = barLine(
        {
          // The name comes from a URL; keep control characters off the terminal.
          name: file.replace(/\p{Cc}/gu, "?"),
          fraction: progress.total ? Math.min(progress.received / progress.total, 1) : 1,
          bytes: `${formatBytes(progress.received)}/${formatBytes(progress.total)}`,
          rate,
          eta,
        },
        (Number.isFinite(width) && width > 1 ? width : DEFAULT_COLUMNS) - 1,
      );
      write(`\r\x1b[2K${line}`);
    },
    done(failed = false) {
      if (quiet || !last) return;
      if (tty) {
        if (drawn !== null) write("\n");
      } else if (failed) {
        write(
          `stopped ${last.file} after ${formatBytes(last.received)} of ${
            formatBytes(last.total)
          }\n`,
        );
      } else write(`downloaded ${last.file} (${formatBytes(last.received)})\n`);
      file = "";
      drawn = null;
      last = null;
    },
  };
}
