/**
 * The public data shapes of the loader: what `install()`, `load()` and
 * `resolveTarget()` take and report. Every public module re-exports them
 * from here; generated and private files import them from here too.
 *
 * @module
 */

/** A target the release ships a kernel for. */
export interface TargetInfo {
  /** The Rust target triple. */
  readonly triple: string;
  /** `Deno.build.os` of machines that run it. */
  readonly os: "linux" | "darwin" | "windows";
  /** `Deno.build.arch` of machines that run it. */
  readonly arch: "x86_64" | "aarch64";
  /** The C library it links against (Linux only), else null. */
  readonly libc: "gnu" | "musl" | null;
  /** The release asset and cache file name. */
  readonly file: string;
  /** Capabilities its release kernel is built with besides `"view"` (cargo features). */
  readonly features: readonly string[];
}

/** A pinned library checksum. */
export interface PinnedFile {
  /** Bytes of the library. */
  readonly size: number;
  /** SHA-256 (hex) of the library. */
  readonly sha256: string;
}

/** Checksums pinned for one version, by target triple. */
export interface PinnedChecksums {
  /** The version they belong to. */
  readonly version: string;
  /** Triple → checksum. */
  readonly targets: Readonly<Record<string, PinnedFile>>;
}

/** Bytes received so far of one file. */
export interface Progress {
  /** The file being fetched. */
  file: string;
  /** Bytes received (including resumed ones). */
  received: number;
  /** Bytes expected. */
  total: number;
}

/** How thoroughly a cached file is checked before use. */
export type VerifyMode = "stamp" | "full";

/** Where the CLI writes. */
export interface CliIo {
  /** Where results go (`Deno.stdout`). */
  stdout: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
  /** Where progress and errors go (`Deno.stderr`). */
  stderr: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
}

/** What a command did: its exit code and its `--json` document's own fields. */
export interface Outcome {
  /** The exit code. */
  code: number;
  /** The command's own fields of its `--json` document. */
  report: Record<string, unknown>;
}
