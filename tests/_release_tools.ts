/**
 * Test helper: the reference tools the release tests check our output with,
 * and the one-line reasons their tests are ignored where a tool is missing.
 *
 * @module
 */

import { hasGnuSha256sum } from "./_sha256sums.ts";
import { without } from "./_tools.ts";

/** Why the `sha256sum -c` checks cannot run here, or null. */
export const NO_SHA256SUM: string | null = (await hasGnuSha256sum())
  ? null
  : "GNU sha256sum is not installed (the TypeScript check of SHA256SUMS runs instead)";

/** Why the `minisign -V` checks cannot run here, or null. */
export const NO_MINISIGN: string | null = without(
  "minisign",
  "minisign is not installed (deno task setup: apt on Linux, brew on macOS; none on Windows)",
);
