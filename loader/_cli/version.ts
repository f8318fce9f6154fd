/**
 * `krepis version`.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import { LOADER_ABI } from "../abi.ts";
import type { Outcome } from "../types.ts";
import type { Context } from "./context.ts";
import { EXIT_CODES } from "./exit_codes.ts";

/** `krepis version`: what this loader is, needs and runs on. */
export function version(): Outcome {
  return {
    code: EXIT_CODES.ok,
    report: {
      version: VERSION,
      abi: {
        major: LOADER_ABI.major,
        minor: LOADER_ABI.minor,
        fingerprint: LOADER_ABI.fingerprint,
      },
      deno: Deno.version,
    },
  };
}

/** The text form of a version report. */
export function versionText(report: Record<string, unknown>): string {
  const abi = report.abi as { major: number; minor: number; fingerprint: string };
  const deno = report.deno as typeof Deno.version;
  return `krepis ${report.version}\nkernel ABI ${abi.major}.${abi.minor} (fingerprint ${abi.fingerprint})\ndeno ${deno.deno} (v8 ${deno.v8}, typescript ${deno.typescript})\n`;
}

/** Runs `krepis version`. */
export function run(context: Context): Promise<Outcome> {
  const outcome = version();
  if (!context.json) context.out(versionText(outcome.report));
  return Promise.resolve(outcome);
}
