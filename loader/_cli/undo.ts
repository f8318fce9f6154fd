/**
 * `krepis undo [--steps N] [--force] [--dry-run] [--list] [--prune --keep N]
 * [--repair] [--project DIR] [--json]`: the project journal from the
 * command line.
 *
 * @module
 */

import { absolute, dirname, join, normalize } from "../_internal/path.ts";
import { JournalError } from "../errors.ts";
import type { JournalEntry, Recovery, Restored } from "../kernel/journal.ts";
import { load } from "../load.ts";
import type { Outcome } from "../types.ts";
import { type Args, type Context, stringValue } from "./context.ts";

/** What `krepis undo` was asked to do. */
export interface UndoCommand {
  /** `--project`: the project root; else the nearest folder up with a `.krepis`. */
  project?: string;
  /** `--steps`, already checked to be a positive integer. */
  steps: number;
  /** `--list`: show the history, change nothing (takes no lock). */
  list: boolean;
  /** `--force`: undo over files changed since, keeping their content first. */
  force?: boolean;
  /** `--dry-run`: show what the undo would do, change nothing. */
  dryRun?: boolean;
  /** `--prune --keep N`: forget all but the newest N transactions. */
  keep?: number;
  /** `--repair`: rebuild a damaged store from the commit record. */
  repair?: boolean;
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
  if (given !== undefined) {
    let kind: Deno.FileInfo;
    try {
      kind = Deno.statSync(start);
    } catch (error) {
      throw new JournalError(
        `Cannot find a journal: the project ${start} cannot be read (${
          error instanceof Error ? error.message : String(error)
        })`,
        "FAILED",
        { hint: `pass --project <dir>, the project's root folder` },
      );
    }
    if (!kind.isDirectory) {
      throw new JournalError(
        `Cannot find a journal: the project ${start} is not a folder`,
        "FAILED",
        { hint: `pass --project <dir>, the project's root folder` },
      );
    }
  }
  let folder = start;
  for (;;) {
    try {
      // A link or a file there is the kernel's to refuse, with its reason.
      Deno.lstatSync(join(folder, ".krepis"));
      return folder;
    } catch (error) {
      if (
        !(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotADirectory)
      ) {
        throw new JournalError(
          `Cannot find a journal in ${folder}: ${
            error instanceof Error ? error.message : String(error)
          }`,
          "FAILED",
          { hint: `pass --project <dir>, the project's root folder` },
        );
      }
    }
    const parent = dirname(folder);
    if (given !== undefined || parent === folder) break;
    folder = parent;
  }
  const where = given === undefined ? `${start} or any folder above it` : start;
  throw new JournalError(
    `Cannot find a journal: no .krepis folder in ${where}`,
    "FAILED",
    {
      hint:
        `run in a project whose tools record changes with kernel.journal, or pass --project <dir>`,
    },
  );
}

function describe(entry: JournalEntry): string {
  const files = entry.files.length === 1 ? "1 file" : `${entry.files.length} files`;
  const message = entry.message === "" ? "(no message)" : entry.message;
  return `${String(entry.id).padStart(4)}  ${entry.time.toISOString()}  ${message}  (${files}, ${
    bytes(entry.snapshotBytes)
  } of snapshots)`;
}

function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

function noteRecovered(recovered: readonly Recovery[], err: (text: string) => void): void {
  for (const r of recovered) {
    const paths = r.paths.length > 0 ? `: ${r.paths.join(", ")}` : "";
    // Transaction 0: about the whole journal (a repair, a pending recovery).
    err(
      r.transaction === 0
        ? `note: ${r.action}\n`
        : `note: an interrupted run was recovered: transaction ${r.transaction} ${r.action}${paths}\n`,
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
  { options, out, err }: Pick<Context, "options" | "out" | "err">,
): Promise<{ code: number; report: Record<string, unknown> }> {
  const project = findProject(command.project);
  using kernel = await load(options);
  if (command.list) {
    // Read from the commit record alone: no lock, nothing created.
    const history = kernel.journal.history(project);
    const root = await Deno.realPath(project);
    const fields = { code: 0, report: { root, transactions: history } };
    if (command.json) return fields;
    if (history.length === 0) {
      out(`Nothing to undo in ${root}\n`);
    } else {
      out(`Transactions in ${root}, newest first (krepis undo takes the first):\n`);
      for (const entry of history) out(`${describe(entry)}\n`);
    }
    return fields;
  }
  using journal = kernel.journal.open(project, { repair: command.repair === true });
  noteRecovered(journal.recovered, err);
  // The fields of this answer between root and recovered.
  const done = (fields: Record<string, unknown>) => ({
    code: 0,
    report: { root: journal.root, ...fields, recovered: journal.recovered },
  });
  if (command.repair) {
    const history = journal.history();
    if (!command.json) {
      out(`Repaired the journal in ${journal.root}: ${history.length} transactions kept\n`);
    }
    return done({ transactions: history });
  }
  if (command.keep !== undefined) {
    const forgotten = journal.forget({ keep: command.keep });
    if (!command.json) {
      out(
        forgotten.length === 0
          ? `Nothing to prune in ${journal.root}: ${command.keep} or fewer transactions\n`
          : `Forgot ${forgotten.length} transaction${
            forgotten.length === 1 ? "" : "s"
          } in ${journal.root} (${forgotten.join(", ")}); their snapshots are freed\n`,
      );
    }
    return done({ forgotten });
  }
  const result: Restored = journal.undo({
    steps: command.steps,
    force: command.force === true,
    dryRun: command.dryRun === true,
  });
  const report = {
    undone: result.transactions,
    restored: result.restored,
    removed: result.removed,
    changed: result.changed,
    dryRun: result.dryRun,
    kept: result.kept,
    ownersKept: result.ownersKept,
  };
  if (command.json) return done(report);
  const count = result.transactions.length;
  const what = count === 1 ? "1 transaction" : `${count} transactions`;
  out(
    result.dryRun
      ? `Would undo ${what} in ${journal.root} (nothing was changed):\n`
      : `Undid ${what} in ${journal.root}:\n`,
  );
  for (const entry of result.transactions) out(`${describe(entry)}\n`);
  const verb = result.dryRun ? ["would restore", "would remove "] : ["restored", "removed "];
  for (const path of result.restored) out(`  ${verb[0]} ${path}\n`);
  for (const path of result.removed) out(`  ${verb[1]} ${path}\n`);
  for (const path of result.changed) out(`  changed since: ${path}\n`);
  for (const path of result.ownersKept) out(`  owner not restored: ${path}\n`);
  if (result.kept !== null) {
    out(
      `The content it replaced is kept as transaction ${result.kept}: \`krepis undo\` brings it back\n`,
    );
  }
  return done(report);
}

/** Runs `krepis undo`: checks `--steps`, `--prune` and `--keep`, then undoes, lists or prunes. */
export async function run(context: Context, args: Args): Promise<Outcome | number> {
  const { values } = args;
  const stepsText = stringValue(args, "steps");
  const steps = stepsText === undefined ? 1 : Number(stepsText);
  if (!/^[1-9][0-9]*$/.test(stepsText ?? "1") || steps > 0xffff_ffff) {
    return context.usageError(
      `Cannot run krepis undo: --steps takes a positive whole number, not "${stepsText}"\nHint: --steps 1 undoes the last transaction\n`,
    );
  }
  const keepText = stringValue(args, "keep");
  if (
    (keepText !== undefined) !== (values.prune === true) ||
    (keepText !== undefined && !/^[0-9]+$/.test(keepText))
  ) {
    return context.usageError(
      `Cannot run krepis undo: --prune takes --keep <n>, a whole number of transactions to keep${
        keepText === undefined ? "" : `, not "${keepText}"`
      }\nHint: krepis undo --prune --keep 10 keeps the newest 10\n`,
    );
  }
  const undo = {
    project: stringValue(args, "project"),
    steps,
    list: values.list === true,
    force: values.force === true,
    dryRun: values["dry-run"] === true,
    keep: keepText === undefined ? undefined : Number(keepText),
    repair: values.repair === true,
    json: context.json,
  };
  return await undoCommand(undo, context);
}
