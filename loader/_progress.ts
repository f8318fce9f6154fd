import type { Progress } from "./_download.ts";

/** Renders download progress: a redrawn bar on a TTY, plain lines otherwise. */
export interface ProgressView {
  /** Reports bytes received. */
  update(progress: Progress): void;
  /** Ends the current bar (newline on a TTY). */
  done(): void;
}

const encoder = new TextEncoder();

/** Human-readable bytes (KiB, MiB). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A progress view writing to `out`: on a TTY a bar with size, rate and ETA
 * redrawn at most ten times a second; otherwise one line when a file starts
 * and one when it ends. `quiet` shows nothing (for `--json`).
 */
export function progressView(
  out: { writeSync(p: Uint8Array): number },
  tty: boolean,
  quiet: boolean,
): ProgressView {
  let file = "";
  let started = 0;
  let drawn = 0;
  let last: Progress | null = null;
  const write = (text: string) => out.writeSync(encoder.encode(text));
  return {
    update(progress) {
      if (quiet) return;
      const now = performance.now();
      if (progress.file !== file) {
        if (file && tty) write("\n");
        file = progress.file;
        started = now;
        drawn = 0;
        if (!tty) write(`downloading ${file} (${formatBytes(progress.total)})\n`);
      }
      last = progress;
      if (!tty || (now - drawn < 100 && progress.received < progress.total)) return;
      drawn = now;
      const fraction = progress.total ? progress.received / progress.total : 1;
      const width = 24;
      const filled = Math.round(fraction * width);
      const seconds = Math.max((now - started) / 1000, 1e-3);
      const rate = progress.received / seconds;
      const eta = rate > 0 ? Math.ceil((progress.total - progress.received) / rate) : 0;
      write(
        `\r\x1b[2K${file} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${
          formatBytes(progress.received)
        }/${formatBytes(progress.total)} ${formatBytes(rate)}/s ETA ${eta}s`,
      );
    },
    done() {
      if (quiet || !last) return;
      if (tty) write("\n");
      else write(`downloaded ${last.file} (${formatBytes(last.received)})\n`);
      file = "";
      last = null;
    },
  };
}
