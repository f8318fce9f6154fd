/**
 * `tools/bootstrap.sh` fails as every Krepis command does: on stderr,
 * `error: Cannot …` with the hint on the next line; a missing task is a
 * usage error (exit 2). Run with real bash, in a PATH made for the case.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { skipIf, when, which, WINDOWS } from "../tests/_tools.ts";

const SCRIPT = join(REPO_ROOT, "tools", "bootstrap.sh");
/** Commands bootstrap.sh installs with apt when missing, then the utilities it runs. */
const PRESENT = ["git", "npm", "cc", "python3", "sha256sum", "unshare", "openssl", "go"];
const UTILITIES = ["bash", "dirname", "uname"];

async function bootstrap(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command("bash", {
    args: [SCRIPT, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

const NO_BASH = when(
  WINDOWS,
  "bash scripts are tested on Linux and macOS (Git Bash runs them on Windows CI)",
);

Deno.test(
  skipIf("bash tools/bootstrap.sh with no task is a usage error in the one shape", NO_BASH),
  async () => {
    const run = await bootstrap([], {});
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^error: Cannot run tools\/bootstrap\.sh: no task given\nHint: /);
    const help = await bootstrap(["--help"], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: bash tools\/bootstrap\.sh <task>/);
  },
);

const missing = [...PRESENT, ...UTILITIES].filter((c) => which(c) === null);
Deno.test(
  skipIf(
    "bash tools/bootstrap.sh without cargo fails in the one shape, naming what to install",
    NO_BASH ??
      (missing.length
        ? `${missing.join(", ")} not installed here (bootstrap.sh would install it first)`
        : null),
  ),
  async () => {
    // A PATH of just what bootstrap.sh looks for before Rust, and a HOME and
    // CARGO_HOME without rustup: cargo is what it cannot find.
    const dir = await Deno.makeTempDir({ prefix: "krepis-bootstrap-" });
    try {
      const bin = join(dir, "bin");
      await Deno.mkdir(bin);
      for (const command of [...PRESENT, ...UTILITIES]) {
        await Deno.symlink(which(command)!, join(bin, command));
      }
      const run = await bootstrap(["versions"], {
        PATH: bin,
        HOME: dir,
        CARGO_HOME: join(dir, "cargo"),
      });
      assert.equal(run.code, 1, run.stderr);
      assert.equal(
        run.stderr,
        "error: Cannot set up this machine: cargo is not installed\nHint: install Rust with rustup (stable, with rustfmt and clippy)\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
