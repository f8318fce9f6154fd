/**
 * Reads the one target table, `matrix/targets.json`, with the build facts
 * (runner, tool, glibc floor) the loader does not need.
 *
 * @module
 */

/** One row of matrix/targets.json. */
export interface TargetRow {
  triple: string;
  os: "linux" | "darwin" | "windows";
  arch: "x86_64" | "aarch64";
  libc: "gnu" | null;
  file: string;
  runner: string;
  tool: string;
  glibcFloor: string | null;
}

/**
 * Reads and checks the target table.
 *
 * @param text The text of matrix/targets.json.
 * @returns The rows.
 * @throws {Error} When a row lacks a field or names a file without its triple.
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
    if (!row.file.includes(row.triple) || !/^[A-Za-z0-9._-]+$/.test(row.file)) {
      throw new Error(
        `Cannot read matrix/targets.json: file ${row.file} must be a plain name containing ${row.triple}`,
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
    throw new Error(
      `Cannot find target ${triple} in matrix/targets.json\nHint: one of ${
        rows.map((r) => r.triple).join(", ")
      }`,
    );
  }
  return row;
}
