/**
 * `krepis cache ls | prune | clean`.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import { join } from "../_internal/path.ts";
import { removeFile } from "../_install/cache.ts";
import { cachedLibraries, removeVersions, untagged, walkCache } from "../_install/cache_layout.ts";
import { errorText } from "./command_line.ts";
import { formatBytes } from "./progress.ts";
import type { Outcome } from "../types.ts";
import type { Args, Context } from "./context.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { reportForeign } from "./foreign.ts";

/** Runs `krepis cache <ls|prune|clean>`. */
export async function run(context: Context, { positionals }: Args): Promise<Outcome | number> {
  if (positionals.length === 0) {
    return context.usageError(
      `Cannot run krepis cache: it needs a subcommand: ls, prune or clean\nHint: \`krepis cache ls\` lists what is cached\n`,
    );
  }
  return await cache(positionals[0], context.root(), context);
}

async function cache(sub: string, root: string, { json, out, err }: Context): Promise<Outcome> {
  const walk = await walkCache(root);
  if (sub === "ls") {
    const entries = cachedLibraries(walk);
    const partials = walk.files.filter((f) => f.kind === "partial" || f.kind === "temp");
    const report = { root, krepisCache: walk.tagged, entries, partials, foreign: walk.foreign };
    if (json) return { code: EXIT_CODES.ok, report };
    out(`${root}${walk.tagged ? "" : " (not a Krepis cache: nothing in it is Krepis's)"}\n`);
    for (const e of entries) {
      out(`  ${e.version}  ${e.target}  ${formatBytes(e.size)}  ${e.sha256.slice(0, 16)}\n`);
    }
    for (const p of partials) out(`  ${p.kind.padEnd(7)}  ${formatBytes(p.size)}  ${p.path}\n`);
    if (entries.length === 0 && partials.length === 0) out("  (empty)\n");
    if (walk.tagged) reportForeign(walk, err);
    return { code: EXIT_CODES.ok, report };
  }
  // prune or clean (the spec admits nothing else)
  if (!walk.tagged) throw untagged(root, sub === "prune" ? "prune" : "clean");
  const keep = (version: string) => sub === "prune" && version === VERSION;
  const { removed, kept } = await removeVersions(walk, removeFile, (v) => !keep(v));
  // Current-version partials and temps are leftovers of failed transfers: prune takes them too.
  if (sub === "prune") {
    for (const f of walk.files) {
      if (keep(f.version) && (f.kind === "partial" || f.kind === "temp")) {
        await removeFile(f.path).catch(() => {});
      }
    }
  }
  const code = kept.length ? EXIT_CODES.cache : EXIT_CODES.ok;
  const report = { root, removed, kept, foreign: walk.foreign };
  if (json) return { code, report };
  out(
    removed.length
      ? `removed ${removed.join(", ")} from ${root}\n`
      : `nothing to remove in ${root}\n`,
  );
  for (const k of kept) {
    err(
      errorText(
        `Cannot remove ${
          join(root, k.version)
        }: ${k.reason}\nHint: close the programs that use the Krepis kernel, then run the command again`,
      ),
    );
  }
  reportForeign(walk, err);
  return { code, report };
}
