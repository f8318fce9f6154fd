/**
 * What an OS error from the file system means, per OS. Deno's file-system
 * errors carry the OS's own number as `(os error N)` at the end of the
 * message (Rust's `io::Error` display); the same number means different
 * things on different systems (39 is "disk full" on Windows and "directory
 * not empty" on Linux), so each meaning is a table keyed by
 * `Deno.build.os`.
 */

type Os = typeof Deno.build.os;

/**
 * The disk (or the user's quota) is full: ENOSPC everywhere on POSIX,
 * EDQUOT (122 on Linux, 69 on macOS, FreeBSD and NetBSD), Windows'
 * ERROR_HANDLE_DISK_FULL (39) and ERROR_DISK_FULL (112).
 */
const DISK_FULL: Partial<Record<Os, readonly number[]>> & { posix: readonly number[] } = {
  linux: [28, 122],
  android: [28, 122],
  darwin: [28, 69],
  freebsd: [28, 69],
  netbsd: [28, 69],
  windows: [39, 112],
  posix: [28],
};

/**
 * Windows refuses because the file is in use or protected: ERROR_ACCESS_DENIED
 * (5: a read-only file, or a DLL mapped into a process), ERROR_SHARING_VIOLATION
 * (32) and ERROR_LOCK_VIOLATION (33). POSIX has no such refusal: a loaded
 * library can be renamed over or unlinked, and the process keeps its copy.
 */
const IN_USE: Partial<Record<Os, readonly number[]>> = {
  windows: [5, 32, 33],
};

/** The OS error number at the end of a Deno file-system error's message, or null. */
export function osErrorCode(error: unknown): number | null {
  const message = error instanceof Error ? error.message : String(error);
  const match = message.match(/\(os error (\d+)\)/);
  return match ? Number(match[1]) : null;
}

/**
 * Whether `error` says the disk or quota is full on `os`.
 *
 * @param error What a file-system call threw.
 * @param os The OS whose numbering applies. @default {Deno.build.os}
 */
export function isDiskFull(error: unknown, os: Os = Deno.build.os): boolean {
  const code = osErrorCode(error);
  if (code !== null) return (DISK_FULL[os] ?? DISK_FULL.posix).includes(code);
  // Errors that did not come from the OS (a test double, a wrapped message).
  const message = error instanceof Error ? error.message : String(error);
  return /No space left on device|not enough space on the disk|Disk quota exceeded/i.test(message);
}

/**
 * Whether `error` is Windows refusing to replace or remove a file that is
 * read-only or that a process has open or loaded. Always false elsewhere.
 *
 * @param error What a file-system call threw.
 * @param os The OS whose numbering applies. @default {Deno.build.os}
 */
export function isInUse(error: unknown, os: Os = Deno.build.os): boolean {
  const code = osErrorCode(error);
  return code !== null && (IN_USE[os] ?? []).includes(code);
}

/** The hint for a full disk, wherever one is found. */
export const DISK_FULL_HINT = "free some space or point KREPIS_CACHE_DIR at a disk with room";
