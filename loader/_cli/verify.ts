/**
 * `krepis verify`: re-hash every cached library, remove the damaged ones.
 *
 * @module
 */

import { removeFile } from "../_install/cache.ts";
import { verifyCache } from "../_install/cache_layout.ts";
import type { Outcome } from "../types.ts";
import type { Context } from "./context.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { reportForeign } from "./foreign.ts";

/** Runs `krepis verify`. */
export async function run(context: Context): Promise<Outcome> {
  const { json, out, err } = context;
  const root = context.root();
  const { walk, checked } = await verifyCache(root, removeFile);
  const bad = checked.filter((r) => !r.ok).length;
  const code = bad === 0 ? EXIT_CODES.ok : EXIT_CODES.integrity;
  if (json) return { code, report: { checked, foreign: walk.foreign } };
  for (const entry of checked) {
    out(
      entry.ok
        ? `ok      ${entry.version}/${entry.target} ${entry.file}\n`
        : `DAMAGED ${entry.version}/${entry.target} ${entry.file}: sha256 ${entry.actual}, expected ${entry.sha256} (removed; run \`krepis init\`)\n`,
    );
  }
  out(`verified ${checked.length} file(s), ${bad} damaged\n`);
  reportForeign(walk, err);
  return { code, report: {} };
}
