/**
 * What the cache commands left alone, said the same way by each.
 *
 * @module
 */

import type { CacheWalk } from "../_install/cache_layout.ts";

/** Lines naming what is not Krepis's and was left alone. */
export function reportForeign(walk: CacheWalk, err: (text: string) => void): void {
  if (walk.foreign.length === 0) return;
  err(`left alone, not made by Krepis (${walk.foreign.length}):\n`);
  for (const path of walk.foreign.slice(0, 20)) err(`  ${path}\n`);
  if (walk.foreign.length > 20) err(`  … and ${walk.foreign.length - 20} more\n`);
}
