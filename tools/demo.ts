/**
 * `deno task demo`: builds the kernel for this machine (release profile),
 * loads it through the loader, and prints its build info and the ABI the
 * loader verified.
 *
 * @module
 */

import { cargoBuild } from "./cargo_build.ts";
import { load, LOADER_ABI } from "../loader/mod.ts";

const started = performance.now();
const { library } = await cargoBuild({ profile: "release" });
const built = performance.now();
using kernel = await load({ path: library });
const loaded = performance.now();
const info = kernel.buildInfo();
const echoed = new TextDecoder().decode(kernel.echo(new TextEncoder().encode("hello, kernel")));

const ms = (a: number, b: number) => `${(b - a).toFixed(1)} ms`;
console.log(`
krepis ${kernel.version}
  library      ${kernel.path}
  ABI verified ${kernel.abi.major}.${kernel.abi.minor} (loader needs ${LOADER_ABI.major}.${LOADER_ABI.minor})
  fingerprint  ${kernel.abi.fingerprint}
  target       ${info.target}
  profile      ${info.profile}
  rustc        ${info.rustc}
  git commit   ${info.gitCommit}
  features     ${info.features.length ? info.features.join(", ") : "(none)"}
  echo         ${JSON.stringify(echoed)}
  timings      build ${ms(started, built)}, load + ABI check ${ms(built, loaded)}
`);
