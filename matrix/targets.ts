/**
 * Reads the one target table, `matrix/targets.json`, with the build facts
 * (runner, tool, glibc floor) the loader does not need.
 *
 * @module
 */

import { nearest } from "../lib/task.ts";

/** One row of matrix/targets.json. */
export interface TargetRow {
  /** The Rust target triple. */
  triple: string;
  /** `Deno.build.os` of machines that run it. */
  os: "linux" | "darwin" | "windows";
  /** `Deno.build.arch` of machines that run it. */
  arch: "x86_64" | "aarch64";
  /** The C library (Linux only), else null. */
  libc: "gnu" | null;
  /** The release asset and cache file name. */
  file: string;
  /**
   * The kernel cargo features its builds have (`--no-default-features
   * --features …`); each is also a `BuildInfo` capability.
   */
  features: string[];
  /** The GitHub Actions runner that builds and smoke-tests it natively. */
  runner: string;
  /** `cargo` or `cargo-zigbuild`. */
  tool: string;
  /** Linux gnu: the oldest glibc it must run on, else null. */
  glibcFloor: string | null;
  /**
   * macOS: the oldest macOS it must run on, passed to the build as
   * `MACOSX_DEPLOYMENT_TARGET` and checked against the built file's minimum
   * OS version; null for other OSes.
   */
  macosDeploymentTarget: string | null;
}

/**
 * Reads and checks the target table.
 *
 * @param text The text of matrix/targets.json.
 * @returns The rows.
 * @throws {Error} When a row lacks a field, names a file without its triple, or
 *   a macOS row has no deployment target (or another row has one).
 */
export function parseTargetTable(text: string): TargetRow[] {
  const rows = (JSON.parse(text) as { targets: TargetRow[] }).targets;
  const triples = new Set<string>();
  for (const row of rows) {
    for (const key of ["triple", "os", "arch", "file", "runner", "tool"] as const) {
      if (typeof row[key] !== "string" || row[key] === "") {
        throw new Error(`Cannot read matrix/targets.json: ${row.triple ?? "a row"} has no ${key}`);
      }
    }
    if (
      !Array.isArray(row.features) ||
      row.features.some((f) => typeof f !== "string" || !/^[a-z][a-z0-9_-]*$/.test(f)) ||
      new Set(row.features).size !== row.features.length
    ) {
      throw new Error(
        `Cannot read matrix/targets.json: ${row.triple} needs features, a list of distinct cargo feature names such as ["journal"], not ${
          JSON.stringify(row.features)
        }`,
      );
    }
    if (!row.file.includes(row.triple) || !/^[A-Za-z0-9._-]+$/.test(row.file)) {
      throw new Error(
        `Cannot read matrix/targets.json: file ${row.file} must be a plain name containing ${row.triple}`,
      );
    }
    const deployment = row.macosDeploymentTarget;
    if (
      row.os === "darwin" &&
      (typeof deployment !== "string" || !/^\d+\.\d+(\.\d+)?$/.test(deployment))
    ) {
      throw new Error(
        `Cannot read matrix/targets.json: ${row.triple} needs a macosDeploymentTarget such as "11.0", not ${
          JSON.stringify(deployment)
        }`,
      );
    }
    if (row.os !== "darwin" && deployment !== null) {
      throw new Error(
        `Cannot read matrix/targets.json: ${row.triple} is not a macOS target, so its macosDeploymentTarget must be null`,
      );
    }
    if (triples.has(row.triple)) {
      throw new Error(`Cannot read matrix/targets.json: ${row.triple} twice`);
    }
    triples.add(row.triple);
  }
  return rows;
}

/** The table's rows, read from the repository. */
export async function loadTargetTable(): Promise<TargetRow[]> {
  return parseTargetTable(await Deno.readTextFile(new URL("./targets.json", import.meta.url)));
}

/** The row for `triple`, or a `Cannot …` error listing the table. */
export function targetRow(rows: TargetRow[], triple: string): TargetRow {
  const row = rows.find((r) => r.triple === triple);
  if (!row) {
    const triples = rows.map((r) => r.triple);
    const near = nearest(triple, triples);
    throw new Error(
      `Cannot find target ${triple} in matrix/targets.json\nHint: ${
        near ? `did you mean ${near}? ` : ""
      }the table has ${triples.join(", ")}`,
    );
  }
  return row;
}

/**
 * The kernel features of this machine's row (`Deno.build.target`), so a
 * local build has what this target's release kernel has; undefined (cargo's
 * defaults) on a machine the table does not list.
 */
export async function hostFeatures(): Promise<string[] | undefined> {
  return (await loadTargetTable()).find((row) => row.triple === Deno.build.target)?.features;
}
