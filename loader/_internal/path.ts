/**
 * The few path operations the loader's warm path needs. `node:path` would
 * do, but importing any `node:` module starts Deno's Node compatibility
 * layer, which costs more than the rest of a warm `load()` (see
 * `deno task bench`).
 *
 * {@linkcode pathsFor} gives the operations for either family, so Windows
 * semantics (drive letters, UNC paths, `\` and `/` both separators) are
 * unit-tested on every OS; the plain exports are this machine's.
 */

/** Path operations of one OS family. */
export interface PathOps {
  /** The preferred separator. */
  sep: "/" | "\\";
  /** Joins segments with the separator, folding repeated separators. */
  join(...parts: string[]): string;
  /** The directory part of a path. */
  dirname(path: string): string;
  /** The last segment of a path. */
  basename(path: string): string;
  /** Whether `path` is absolute. */
  isAbsolute(path: string): boolean;
  /** `path` if absolute, else joined to `cwd`. */
  absolute(path: string, cwd?: string): string;
  /**
   * `.` and `..` resolved and separators folded, with no trailing separator
   * (but a root's): one spelling per path, so prefix checks cannot be
   * dodged with `//` or `a/../`.
   */
  normalize(path: string): string;
}

/** The path operations for Windows (`"windows"`) or POSIX (anything else). */
export function pathsFor(os: typeof Deno.build.os): PathOps {
  const windows = os === "windows";
  const sep = windows ? "\\" : "/";
  const separators = windows ? /[\\/]+/g : /\/+/g;
  const isSep = (c: string) => c === "/" || (windows && c === "\\");
  const lastSep = (path: string) =>
    windows ? Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) : path.lastIndexOf("/");
  const root = (path: string): string => {
    if (!windows) return path.startsWith("/") ? "/" : "";
    const unc = path.match(/^[\\/]{2}[^\\/]+[\\/]+[^\\/]+[\\/]?/);
    if (unc) return unc[0];
    const drive = path.match(/^[A-Za-z]:[\\/]?/);
    if (drive) return drive[0];
    return isSep(path[0] ?? "") ? path[0] : "";
  };
  const ops: PathOps = {
    sep,
    join(...parts) {
      const joined = parts.filter((p) => p !== "").join(sep);
      // Keep a UNC path's leading pair of separators.
      const unc = windows && /^[\\/]{2}[^\\/]/.test(joined);
      const folded = joined.replace(separators, sep);
      return unc ? sep + folded : folded;
    },
    dirname(path) {
      const head = root(path);
      const rest = path.slice(head.length);
      const i = lastSep(rest);
      if (i < 0) return head || ".";
      let end = i;
      while (end > 0 && isSep(rest[end - 1])) end--;
      return end === 0 ? (head || rest[0]) : head + rest.slice(0, end);
    },
    basename(path) {
      return path.slice(Math.max(lastSep(path), root(path).length - 1) + 1);
    },
    isAbsolute(path) {
      return windows ? /^([A-Za-z]:)?[\\/]/.test(path) : path.startsWith("/");
    },
    absolute(path, cwd = Deno.cwd()) {
      return ops.isAbsolute(path) ? path : ops.join(cwd, path);
    },
    normalize(path) {
      const head = root(path);
      // A UNC root keeps its leading pair of separators.
      const unc = windows && /^[\\/]{2}[^\\/]/.test(head);
      const prefix = windows ? (unc ? sep : "") + head.replace(/[\\/]+/g, sep) : head;
      const out: string[] = [];
      for (const part of path.slice(head.length).split(windows ? /[\\/]+/ : /\/+/)) {
        if (part === "" || part === ".") continue;
        if (part === "..") {
          if (out.length && out[out.length - 1] !== "..") out.pop();
          else if (!head) out.push(".."); // a relative path may climb; a root cannot
          continue;
        }
        out.push(part);
      }
      const body = out.join(sep);
      return prefix + body || (prefix ? prefix : ".");
    },
  };
  return ops;
}

const HOST: PathOps = pathsFor(Deno.build.os);

/** This machine's path separator. */
export const sep: PathOps["sep"] = HOST.sep;
/** Joins path segments with the platform separator. */
export const join: PathOps["join"] = HOST.join;
/** The directory part of a path. */
export const dirname: PathOps["dirname"] = HOST.dirname;
/** The last segment of a path. */
export const basename: PathOps["basename"] = HOST.basename;
/** An absolute path: `path` itself if absolute, else resolved against the working directory. */
export const absolute: (path: string) => string = (path) => HOST.absolute(path);
/** Whether a path is absolute on this machine. */
export const isAbsolute: (path: string) => boolean = (path) => HOST.isAbsolute(path);
/** One spelling of a path: `.` and `..` resolved, separators folded, no trailing separator. */
export const normalize: (path: string) => string = (path) => HOST.normalize(path);
