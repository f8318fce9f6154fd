/**
 * What each `krepis` command accepts: the specs its `--help`, its checks
 * and its suggestions are made from (see `command_line.ts`).
 *
 * @module
 */

import type { CommandSpec, OptionSpec } from "./command_line.ts";
import { VERSION } from "../version.ts";
import { codes, MEANING } from "./exit_codes.ts";

const json: OptionSpec = {
  type: "boolean",
  help: "print one JSON document on stdout: {ok, code, command, …} (with --help: {…, help})",
};
const cacheDir: OptionSpec = {
  type: "string",
  value: "<dir>",
  help: "the cache root (default: KREPIS_CACHE_DIR, else the OS cache folder)",
};
const mirror: OptionSpec = {
  type: "string",
  value: "<url>",
  help: "the release host, e.g. http://127.0.0.1:8765 (default: KREPIS_MIRROR, else GitHub)",
};
const offline: OptionSpec = { type: "boolean", help: "use the cache only, never the network" };
const trustedKey: OptionSpec = {
  type: "string",
  multiple: true,
  value: "<key|file>",
  help: "trust this minisign public key too: the key (RW…) or a .pub file",
};

const CACHE_ENV = { KREPIS_CACHE_DIR: "the cache root (--cache-dir wins)" };
const FETCH_ENV = {
  ...CACHE_ENV,
  KREPIS_MIRROR: "the release host (--mirror wins)",
  KREPIS_OFFLINE: "1, true or yes: use the cache only (as --offline); 0, false, no or unset: not",
  KREPIS_TRUSTED_KEY: "one more trusted public key (the RW… line, or a .pub file's path)",
  "HTTPS_PROXY, NO_PROXY": "proxy settings, as for any Deno program",
  NO_COLOR: "no colour in messages",
};

/** Every `krepis` command, by the word that names it. */
export const COMMANDS = {
  init: {
    name: "krepis init",
    summary: "fetch, verify and cache the kernel for this machine (or --target, or --all)",
    usage: [
      "[--target <triple> | --all] [--offline] [--mirror <url>] [--cache-dir <dir>] [--trusted-key <key|file>]… [--verify stamp|full] [--json]",
    ],
    options: {
      target: { type: "string", value: "<triple>", help: "a target other than this machine's" },
      all: { type: "boolean", help: "every target the release ships (e.g. in an image build)" },
      offline,
      mirror,
      "cache-dir": cacheDir,
      "trusted-key": trustedKey,
      verify: {
        type: "string",
        value: "<mode>",
        choices: ["stamp", "full"],
        help: "how a cached copy is checked: the stamp (default), or re-hash it",
      },
      json,
    },
    env: FETCH_ENV,
    exitCodes: codes(3, 4, 5, 6, 7, 8, 9),
    more:
      "Needs --allow-net (the release host), --allow-read and --allow-write (the cache),\n--allow-env and --allow-sys (the platform); `deno install -g -A` gives them all.",
  },
  info: {
    name: "krepis info",
    summary: "show platform, target, cache root, cached versions and the ABI; changes nothing",
    usage: ["[--cache-dir <dir>] [--trusted-key <key|file>]… [--json]"],
    options: { "cache-dir": cacheDir, "trusted-key": trustedKey, json },
    env: { ...CACHE_ENV, KREPIS_TRUSTED_KEY: FETCH_ENV.KREPIS_TRUSTED_KEY },
    exitCodes: codes(4, 8, 9),
    more: "Opens the cached kernel of this version, if any, to report its ABI and capabilities.",
  },
  verify: {
    name: "krepis verify",
    summary: "re-hash every cached kernel; a damaged one is removed (krepis init fetches it again)",
    usage: ["[--cache-dir <dir>] [--json]"],
    options: { "cache-dir": cacheDir, json },
    env: CACHE_ENV,
    exitCodes: codes(4, 8, 9),
  },
  cache: {
    name: "krepis cache",
    summary: "list or remove cached kernels",
    usage: [
      "ls [--cache-dir <dir>] [--json]",
      "prune [--cache-dir <dir>] [--json]",
      "clean [--cache-dir <dir>] [--json]",
    ],
    commands: {
      ls: "list cached versions and targets, partial downloads, and what is not Krepis's",
      prune: `remove every version but ${VERSION}, and leftovers of failed downloads`,
      clean: "remove every cached kernel (only in a cache Krepis made)",
    },
    options: { "cache-dir": cacheDir, json },
    env: CACHE_ENV,
    exitCodes: codes(8, 9),
  },
  undo: {
    name: "krepis undo",
    summary: "undo the last transaction recorded in this project's journal (.krepis/)",
    usage: [
      "[--steps <n>] [--force] [--dry-run] [--project <dir>] [--offline] [--mirror <url>] [--cache-dir <dir>] [--trusted-key <key|file>]… [--json]",
      "--list [--project <dir>] [--json]",
      "--prune --keep <n> [--project <dir>] [--offline] [--mirror <url>] [--cache-dir <dir>] [--trusted-key <key|file>]… [--json]",
      "--repair [--project <dir>] [--offline] [--mirror <url>] [--cache-dir <dir>] [--trusted-key <key|file>]… [--json]",
    ],
    options: {
      steps: {
        type: "string",
        value: "<n>",
        help: "undo the last n transactions, all or nothing (default 1)",
      },
      force: {
        type: "boolean",
        help:
          "undo files changed since the transaction too; their content is kept first as a new transaction (krepis undo again brings it back)",
      },
      "dry-run": {
        type: "boolean",
        help:
          "show what the undo would restore and remove, and which files changed since; change nothing",
      },
      list: {
        type: "boolean",
        help:
          "show the journal's transactions, newest first; change nothing (works while another process holds the journal)",
      },
      prune: {
        type: "boolean",
        help: "forget the oldest transactions and free their snapshots (with --keep)",
      },
      keep: {
        type: "string",
        value: "<n>",
        help: "with --prune: how many of the newest transactions to keep",
      },
      repair: {
        type: "boolean",
        help:
          "rebuild a damaged journal store from its commit record, keeping every snapshot (the damaged store is kept beside it)",
      },
      project: {
        type: "string",
        value: "<dir>",
        help: "the project (default: the nearest folder up that has .krepis/)",
      },
      offline,
      mirror,
      "cache-dir": cacheDir,
      "trusted-key": trustedKey,
      json,
    },
    env: FETCH_ENV,
    exitCodes: codes(3, 4, 5, 6, 7, 8, 9, 10),
  },
  version: {
    name: "krepis version",
    summary: "print the loader version, the kernel ABI it needs and the Deno version",
    usage: ["[--json]"],
    options: { json },
    exitCodes: { 0: "success", 2: MEANING[2] },
  },
  help: {
    name: "krepis help",
    summary: "show the help of krepis or of one command",
    usage: ["[<command>] [--json]"],
    options: { json },
    maxPositionals: 1,
    exitCodes: { 0: "success", 2: MEANING[2] },
  },
} satisfies Record<string, CommandSpec>;

/** `krepis` itself: the commands and the options that need no command. */
export const KREPIS = {
  name: "krepis",
  summary: "fetch, verify, cache and inspect the Krepis kernel",
  usage: ["<command> [options]", "--version [--json]"],
  commands: Object.fromEntries(
    Object.entries(COMMANDS).map(([word, spec]) => [word, spec.summary]),
  ),
  options: {
    version: { type: "boolean", short: "V", help: "the same as `krepis version`" },
    json,
  },
  maxPositionals: Infinity,
  env: FETCH_ENV,
  exitCodes: MEANING,
  more:
    "`krepis <command> --help` shows a command's options. With --json every command prints\none JSON document with `ok` (true or false) and `code` (the exit code), and `error`\nwhen it failed.",
} satisfies CommandSpec;
