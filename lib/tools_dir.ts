/**
 * The private tools directory, where `deno task setup` keeps what it
 * makes or downloads outside any package manager.
 *
 * @module
 */

import { join } from "node:path";

/** The private tools directory (`KREPIS_TOOLS_DIR`, default `~/.cache/krepis-tools`). */
export function toolsDir(): string {
  const dir = Deno.env.get("KREPIS_TOOLS_DIR");
  if (dir) return dir;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return join(home, ".cache", "krepis-tools");
}
