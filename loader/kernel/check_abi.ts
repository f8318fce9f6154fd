import type { AbiInfo } from "../abi.ts";
import { AbiMismatchError } from "../errors.ts";

const HINT =
  "use a kernel built from the same Krepis release as @krepis/loader, or unset KREPIS_KERNEL_PATH to let the loader fetch the matching one";

function show(abi: AbiInfo): string {
  return `${abi.major}.${abi.minor} (fingerprint ${abi.fingerprint.slice(0, 16)})`;
}

/**
 * Refuses a kernel whose ABI this loader cannot use.
 *
 * - another major: refused;
 * - an older minor than the loader needs: refused;
 * - the same minor with another fingerprint: refused (same number, other
 *   symbols);
 * - a newer minor: accepted here (its fingerprint covers additions the loader
 *   does not know); binding the loader's symbols then proves they exist.
 */
export function checkAbi(path: string, expected: AbiInfo, found: AbiInfo): void {
  let problem: string | undefined;
  if (found.major !== expected.major) {
    problem = `its ABI major ${found.major} is not ${expected.major}`;
  } else if (found.minor < expected.minor) {
    problem = `its ABI minor ${found.minor} is older than ${expected.minor}`;
  } else if (found.minor === expected.minor && found.fingerprint !== expected.fingerprint) {
    problem = `its ABI fingerprint ${found.fingerprint} is not ${expected.fingerprint}`;
  }
  if (problem === undefined) return;
  throw new AbiMismatchError(
    `Cannot load kernel ${path}: ${problem}; found ABI ${show(found)}, expected ${show(expected)}`,
    path,
    expected,
    found,
    { hint: HINT },
  );
}

/** A kernel with an accepted (newer-minor) ABI lacks a symbol the loader binds. */
export function missingSymbols(
  path: string,
  expected: AbiInfo,
  found: AbiInfo,
  cause: unknown,
): AbiMismatchError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  const error = new AbiMismatchError(
    `Cannot load kernel ${path}: its ABI ${found.major}.${found.minor} lacks a symbol this loader binds (${detail})`,
    path,
    expected,
    found,
    { hint: HINT, cause },
  );
  return error;
}

/** The library exports no Krepis ABI probe symbols. */
export function noAbi(path: string, expected: AbiInfo, cause: unknown): AbiMismatchError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  const error = new AbiMismatchError(
    `Cannot load kernel ${path}: it exports no krepis_abi_version/krepis_abi_fingerprint (${detail})`,
    path,
    expected,
    null,
    { hint: HINT, cause },
  );
  return error;
}
