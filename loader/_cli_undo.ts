/**
 * `krepis undo [--steps N] [--list] [--project DIR] [--json]`: the
 * project journal from the command line.
 *
 * @module
 */

import { absolute, dirname, join, normalize } from "./_path.ts";
import { JournalError } from "./errors.ts";
import type { InstallOptions } from "./install.ts";
import type { JournalEntry, Recovery, Restored } from "./journal.ts";
import { load } from "./load.ts";

/** What `krepis undo` was asked to do. */
export interface UndoCommand {
  /** `--project`: the project root; else the nearest folder up with a `.krepis`. */
  project?: string;
  /** `--steps`, already checked to be a positive integer. */
  steps: number;
  /** `--list`: show the history, change nothing. */
  list: boolean;
  /** `--json`. */
  json: boolean;
}

/**
 * The project whose journal to use: `--project`, else the working folder or
 * the nearest one above it holding `.krepis/`. The CLI never creates a
 * journal: a project without one is an error.
 */
function findProject(given: string | undefined): string {
  const start = normalize(absolute(given ?? "."));
  let folder = start;
  for (;;) {
    try {
      if (Deno.statSync(join(folder, ".krepis")).isDirectory) return folder;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const parent = dirname(folder);
    if (given !== undefined || parent === folder) break;
    folder = parent;
  }
  const where = given === undefined ? `${start} or any folder above it` : start;
  throw new JournalError(
    `Cannot find a journal: no .krepis folder in ${where}\nHint: run in a project whose tools record changes with kernel.journal, or pass --project <dir>`,
    "FAILED",
  );
}

function describe(entry: JournalEntry): string {
  const files = entry.files.length === 1 ? "1 file" : `${entry.files.length} files`;
  const message = entry.message === "" ? "(no message)" : entry.message;
  return `${String(entry.id).padStart(4)}  ${entry.time.toISOString()}  ${message}  (${files})`;
}

function noteRecovered(recovered: readonly Recovery[], err: (text: string) => void): void {
  for (const r of recovered) {
    const paths = r.paths.length > 0 ? `: ${r.paths.join(", ")}` : "";
    err(
      `note: an interrupted run was recovered: transaction ${r.transaction} ${r.action}${paths}\n`,
    );
  }
}

/**
 * Runs `krepis undo`.
 *
 * @returns The exit code (0; failures throw and are mapped by class) and the
 *   fields of the `--json` document.
 */
export async function undoCommand(
  command: UndoCommand,
  options: InstallOptions,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<{ code: number; report: Record<string, unknown> }> {
  const project = findProject(command.project);
  using kernel = await load(options);
  using journal = kernel.journal.open(project);
  noteRecovered(journal.recovered, err);
  // The fields of this answer between root and recovered.
  const done = (fields: Record<string, unknown>) => ({
    code: 0,
    report: { root: journal.root, ...fields, recovered: journal.recovered },
  });
  if (command.list) {
    const history = journal.history();
    if (command.json) return done({ transactions: history });
    if (history.length === 0) {
      out(`Nothing to undo in ${journal.root}\n`);
    } else {
      out(`Transactions in ${journal.root}, newest first (krepis undo takes the first):\n`);
      for (const entry of history) out(`${describe(entry)}\n`);
    }
    return done({ transactions: history });
  }
  const result: Restored = journal.undo({ steps: command.steps });
  const report = {
    undone: result.transactions,
    restored: result.restored,
    removed: result.removed,
  };
  if (command.json) return done(report);
  const count = result.transactions.length;
  out(`Undid ${count === 1 ? "1 transaction" : `${count} transactions`} in ${journal.root}:\n`);
  for (const entry of result.transactions) out(`${describe(entry)}\n`);
  for (const path of result.restored) out(`  restored ${path}\n`);
  for (const path of result.removed) out(`  removed  ${path}\n`);
  return done(report);
}
