/**
 * `krepis init`: fetch, verify and cache the kernel for this machine, a
 * `--target`, or `--all`.
 *
 * @module
 */

import { install, type Installation } from "../install.ts";
import { resolveTarget, supportedTriples } from "../platform.ts";
import { UnsupportedPlatformError } from "../errors.ts";
import { errorText, nearest } from "./command_line.ts";
import { formatBytes, progressView } from "./progress.ts";
import type { Outcome } from "../types.ts";
import { type Args, type Context, stringValue } from "./context.ts";
import { EXIT_CODES, exitCode } from "./exit_codes.ts";

/** Runs `krepis init`: checks `--target` and `--all`, then installs. */
export async function run(context: Context, args: Args): Promise<Outcome | number> {
  const triple = stringValue(args, "target");
  const all = args.values.all === true;
  if (triple !== undefined && all) {
    return context.usageError(
      "Cannot run krepis init: --target and --all exclude each other\nHint: give one target, or --all for every target the release ships\n",
    );
  }
  if (triple !== undefined && !supportedTriples().includes(triple)) {
    // As the tasks do: the nearest triple first (still exit 3, not supported).
    const near = nearest(triple, supportedTriples());
    throw new UnsupportedPlatformError(
      `Cannot find a kernel for target ${triple}: it is not shipped`,
      triple,
      supportedTriples(),
      {
        hint: `${near ? `did you mean ${near}? ` : ""}supported targets are ${
          supportedTriples().join(", ")
        }`,
      },
    );
  }
  return await init(context, triple, all);
}

/** An installed target in a report: its `target` is the triple. */
type Installed = Omit<Installation, "target"> & { target: string };
/** One installed target, or why it failed (`init --all`). */
type InitResult = Installed | { target: string; error: string; code: number };

async function init(context: Context, triple: string | undefined, all: boolean): Promise<Outcome> {
  const { options, json, io, out, err } = context;
  const targets = all ? supportedTriples() : [triple ?? resolveTarget().triple];
  const view = progressView(io.stderr, io.stderr.isTerminal(), json);
  const results: InitResult[] = [];
  // --all: the table's targets that the release does not ship are named, not failed.
  const notInRelease: string[] = [];
  let code: number = EXIT_CODES.ok;
  for (const target of targets) {
    const started = performance.now();
    try {
      const installed = await install({ ...options, target, onProgress: (p) => view.update(p) });
      view.done();
      // In every --json document a target is its triple (as in `info` and a failed entry).
      results.push({ ...installed, target: installed.target.triple });
      if (!json) {
        const ms = (performance.now() - started).toFixed(0);
        out(
          `${
            installed.downloaded ? "installed" : "cached"
          } ${installed.target.triple} ${installed.version} (${
            formatBytes(installed.size)
          }, sha256 ${installed.sha256}, ${installed.trust}${
            installed.downloaded ? `, ${ms} ms` : ""
          })\n  ${installed.path}\n`,
        );
      }
    } catch (error) {
      view.done(true);
      if (!all) throw error;
      if (error instanceof UnsupportedPlatformError && !error.supported.includes(target)) {
        notInRelease.push(target);
        continue;
      }
      const message = error instanceof Error ? error.message : String(error);
      results.push({ target, error: message, code: exitCode(error) });
      if (!json) err(errorText(message, `krepis init --target ${target}`));
      // The first failure's class names the run's exit code.
      if (code === EXIT_CODES.ok) code = exitCode(error);
    }
  }
  if (!all) return { code, report: { installed: results } };
  const installed = results.filter((r): r is Installed => "path" in r);
  const summary = {
    targets: targets.length,
    installed: installed.length,
    downloaded: installed.filter((r) => r.downloaded).length,
    cached: installed.filter((r) => !r.downloaded).length,
    failed: results.length - installed.length,
    notInRelease: notInRelease.length,
  };
  if (results.length === 0) {
    // Nothing at all: the release ships none of the table's targets.
    code = EXIT_CODES.unsupported;
    if (!json) {
      err(
        errorText(
          `Cannot install any kernel: the release ships none of ${
            notInRelease.join(", ")
          }\nHint: check --mirror and the release version`,
        ),
      );
    }
  } else if (!json) {
    if (notInRelease.length) err(`not in this release (skipped): ${notInRelease.join(", ")}\n`);
    const failed = results.filter((r): r is Exclude<InitResult, Installed> => !("path" in r));
    out(
      `${summary.installed} of ${summary.targets} targets ready (${summary.downloaded} downloaded, ${summary.cached} already cached), ${summary.failed} failed${
        failed.length ? ` (${failed.map((f) => f.target).join(", ")})` : ""
      }, ${summary.notInRelease} not in this release\n`,
    );
  }
  return { code, report: { installed: results, notInRelease, summary } };
}
