/**
 * The few path operations the loader's warm path needs. `node:path` would
 * do, but importing any `node:` module starts Deno's Node compatibility
 * layer, which costs more than the rest of a warm `load()` (see
 * `deno task bench`).
 */

const SEP = Deno.build.os === "windows" ? "\\" : "/";

/** Joins path segments with the platform separator. */
export function join(...parts: string[]): string {
  return parts.filter((p) => p !== "").join(SEP).replace(/[\\/]+/g, SEP);
}

/** The directory part of a path. */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i <= 0 ? (i === 0 ? path[0] : ".") : path.slice(0, i);
}

/** The last segment of a path. */
export function basename(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

/** An absolute path: `path` itself if absolute, else resolved against the working directory. */
export function absolute(path: string): string {
  const isAbsolute = path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) ||
    path.startsWith("\\\\");
  return isAbsolute ? path : join(Deno.cwd(), path);
}
