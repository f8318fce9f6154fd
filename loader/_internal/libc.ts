/**
 * Which C library a Linux process runs on, from the libraries it mapped.
 *
 * @param maps The text of `/proc/self/maps`.
 * @returns `"musl"`, `"gnu"`, or `null` when neither is recognizable.
 */
export function libcFromMaps(maps: string): "gnu" | "musl" | null {
  if (/\/(ld-musl-[\w.-]+\.so|libc\.musl-[\w.-]+\.so)/.test(maps)) return "musl";
  if (/\/(libc\.so\.6|ld-linux[\w.-]*\.so)/.test(maps)) return "gnu";
  return null;
}

/** The C library of this Linux process; see `currentPlatform()`. */
export function detectLibc(): "gnu" | "musl" {
  try {
    const found = libcFromMaps(Deno.readTextFileSync("/proc/self/maps"));
    if (found) return found;
  } catch {
    // No permission or no /proc: fall back to the libc Deno was built for.
  }
  return Deno.build.env === "musl" ? "musl" : "gnu";
}
