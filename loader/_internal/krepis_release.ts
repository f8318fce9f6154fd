/**
 * What the install wing is told about Krepis: where its releases are, which
 * keys vouch for them, and which ABI and version this loader takes. The
 * wing itself (`_install/`) names none of these; it gets them from here.
 *
 * @module
 */

import { AbiMismatchError, IntegrityError } from "../errors.ts";
import { LOADER_ABI } from "../abi.ts";
import { VERSION } from "../version.ts";
import type { Manifest } from "../manifest.ts";
import { type MinisignPublicKey, parseMinisignPublicKey } from "../minisign.ts";
import { readEnv } from "./env.ts";
import { PROJECT_KEYS } from "../_gen/keys.ts";

/** Where releases are downloaded from unless `KREPIS_MIRROR` says otherwise. */
export const DEFAULT_MIRROR = "https://github.com/krepis/krepis/releases/download";

/** The release host: the option, else `KREPIS_MIRROR`, else the project's GitHub releases. */
export function krepisMirror(option: string | undefined): string {
  return option ?? readEnv("KREPIS_MIRROR") ?? DEFAULT_MIRROR;
}

/** The largest public key file read, in bytes (a minisign `.pub` file is about 100). */
const MAX_KEY_FILE_SIZE = 4096;

/**
 * A key as the user gave it: the key itself (one `RW…` line, or a whole
 * `.pub` file's text), or the path of a `.pub` file, which is read.
 */
function keyText(given: string): string {
  if (given.includes("\n") || /^\s*RW[A-Za-z0-9+/]+=*\s*$/.test(given)) return given;
  // A signing secret given by mistake is named as such, and never echoed.
  if (given.trim().startsWith("S1JTS")) {
    throw new IntegrityError(
      "Cannot use the public key given: it is a Krepis signing secret (the KREPIS_SIGNING_KEY text), not a public key",
      {
        hint:
          "give the release's public key (the RW… line of its .pub file, or the file's path); keep the secret out of places a loader reads",
      },
    );
  }
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(given);
    if (!info.isFile || info.size > MAX_KEY_FILE_SIZE) throw new Error("not a .pub file");
    bytes = Deno.readFileSync(given);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    // Only a file name is echoed: the value may be a secret pasted by mistake.
    const what = /\.pub$/i.test(given.trim())
      ? `file ${JSON.stringify(given)}`
      : `given (${given.length} characters)`;
    const why = error instanceof Deno.errors.NotFound ? "no such file" : "not a readable .pub file";
    throw new IntegrityError(
      `Cannot read the public key ${what}: it is neither a minisign public key nor a readable .pub file (${why})`,
      {
        hint:
          `give the key (the line after "untrusted comment:" in a minisign .pub file, starting with RW) or the .pub file's path`,
      },
    );
  }
  return new TextDecoder().decode(bytes);
}

/**
 * The trusted keys: the project's, then `extra`; `KREPIS_TRUSTED_KEY` is
 * added only when `extra` is not given (an explicit list is the whole list).
 * Each given key may be the path of a minisign `.pub` file.
 */
export function trustedKeys(extra: string[] | undefined): MinisignPublicKey[] {
  const texts = [...PROJECT_KEYS, ...(extra ?? []).map(keyText)];
  const fromEnv = readEnv("KREPIS_TRUSTED_KEY");
  if (fromEnv && extra === undefined) texts.push(keyText(fromEnv));
  return texts.map((text) => parseMinisignPublicKey(text));
}

/** Refuses a release whose declared ABI this loader cannot use. */
export function refuseAbi(abi: Manifest["abi"], version: string): void {
  if (abi.major === LOADER_ABI.major && abi.minor >= LOADER_ABI.minor) return;
  throw new AbiMismatchError(
    `Cannot install release ${version}: its ABI ${abi.major}.${abi.minor} does not fit this loader's ABI ${LOADER_ABI.major}.${LOADER_ABI.minor}`,
    `v${version}`,
    LOADER_ABI,
    abi,
    {
      hint: `use @krepis/loader ${version}, or install version ${VERSION} that matches this loader`,
    },
  );
}
