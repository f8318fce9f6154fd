/**
 * The lock-step version contract: every copy of the version must agree.
 *
 * Copies: `[workspace.package] version` in Cargo.toml, each crate (which
 * must inherit it with `version.workspace = true`), and every deno.json
 * member of the Deno workspace. The kernel's compiled `krepis_version()` is
 * added by callers that have a build.
 *
 * @module
 */

import { parse as parseToml } from "npm:smol-toml@^1.9.1";
import { REPO_ROOT } from "./cargo_build.ts";

/** One place that states the version. */
export interface VersionCopy {
  /** Where it was read, e.g. `loader/deno.json`. */
  source: string;
  /** The version found there (or a description of what was found instead). */
  version: string;
}

/**
 * Reads every copy of the version in the repository at `root`.
 *
 * @param root The repository root.
 * @returns The copies, the workspace version first.
 */
export async function collectVersions(root: string = REPO_ROOT): Promise<VersionCopy[]> {
  const workspace = parseToml(await Deno.readTextFile(`${root}/Cargo.toml`)) as {
    workspace?: { members?: string[]; package?: { version?: string } };
  };
  const copies: VersionCopy[] = [{
    source: "Cargo.toml [workspace.package]",
    version: workspace.workspace?.package?.version ?? "(missing)",
  }];
  for (const pattern of workspace.workspace?.members ?? []) {
    for (const dir of await expandMember(root, pattern)) {
      const crate = parseToml(await Deno.readTextFile(`${root}/${dir}/Cargo.toml`)) as {
        package?: { version?: string | { workspace?: boolean } };
      };
      const version = crate.package?.version;
      copies.push({
        source: `${dir}/Cargo.toml`,
        version: typeof version === "object" && version.workspace === true
          ? copies[0].version
          : `${version ?? "(missing)"} (not inherited from the workspace)`,
      });
    }
  }
  const denoRoot = JSON.parse(await Deno.readTextFile(`${root}/deno.json`)) as {
    workspace?: string[];
  };
  for (const member of denoRoot.workspace ?? []) {
    const path = `${member.replace(/^\.\//, "")}/deno.json`;
    const config = JSON.parse(await Deno.readTextFile(`${root}/${path}`)) as { version?: string };
    copies.push({ source: path, version: config.version ?? "(missing)" });
  }
  return copies;
}

/**
 * Names the copies that disagree with the first one.
 *
 * @param copies Version copies; the first is the reference.
 * @returns An empty string when all agree, else a `Cannot …` message.
 */
export function describeDisagreement(copies: VersionCopy[]): string {
  const [reference, ...rest] = copies;
  const wrong = rest.filter((copy) => copy.version !== reference.version);
  if (wrong.length === 0) return "";
  const list = wrong.map((copy) => `  ${copy.source}: ${copy.version}`).join("\n");
  return `Cannot accept the versions: ${wrong.length} copies disagree with ${reference.source} (${reference.version})\n${list}\nHint: set every copy to one version (the release step bumps them together)`;
}

async function expandMember(root: string, pattern: string): Promise<string[]> {
  if (!pattern.endsWith("/*")) return [pattern];
  const parent = pattern.slice(0, -2);
  const dirs: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${parent}`)) {
    if (entry.isDirectory) dirs.push(`${parent}/${entry.name}`);
  }
  return dirs.sort();
}

if (import.meta.main) {
  // Loaded here, not at the top: importing this module stays free of the command line.
  const { commandLine, exitUsage, printError } = await import("./task.ts");
  const { values } = commandLine({
    name: "deno task versions",
    summary: "print every copy of the lock-step version and fail if any disagree",
    usage: ["[--tag vX.Y.Z]"],
    options: {
      tag: { type: "string", value: "<tag>", help: "a release tag (vX.Y.Z) that must agree too" },
    },
    exitCodes: { 0: "every copy agrees", 1: "a copy disagrees (each is listed)", 2: "usage error" },
    more: `Copies: Cargo.toml [workspace.package], each crate's Cargo.toml (which must inherit
it), and every deno.json of the Deno workspace.`,
  });
  if (values.tag !== undefined && !/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(values.tag)) {
    exitUsage(
      `Cannot run deno task versions: --tag takes a release tag vX.Y.Z, not "${values.tag}"\nHint: release tags are v and the version, e.g. v0.1.0`,
    );
  }
  const copies = await collectVersions();
  if (values.tag) copies.push({ source: "the tag", version: values.tag.replace(/^v/, "") });
  for (const copy of copies) console.log(`${copy.version.padEnd(12)} ${copy.source}`);
  const problem = describeDisagreement(copies);
  if (problem) {
    printError(problem);
    Deno.exit(1);
  }
}
