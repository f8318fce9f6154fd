/**
 * `deno task gen`: regenerates every committed generated file.
 *
 * 1. builds the kernel, whose build script renders `krepis.h` with cbindgen,
 *    and copies it to `crates/krepis-kernel/include/krepis.h`;
 * 2. renders `loader/_gen/ffi.ts` from that header;
 * 3. renders the protobuf codecs: `loader/_gen/messages.ts` from
 *    `proto/krepis.proto`, and `tests/conformance/_messages.ts` from
 *    `proto/conformance.proto` (the conformance tests' messages);
 * 4. renders `loader/_gen/targets.ts` from `matrix/targets.json`.
 *
 * With `--check`, writes nothing and exits 1 naming the stale files.
 *
 * @module
 */

import { commandLine, printError } from "../lib/task.ts";
import { cargoBuild, REPO_ROOT } from "../lib/cargo_build.ts";
import { formatTs } from "../lib/format.ts";
import { renderFfiModule } from "./gen_ffi.ts";
import { renderCodecModule } from "./gen_codec.ts";
import { renderTargetsModule } from "./gen_targets.ts";

/** Repository-relative paths of the generated files. */
export const GENERATED = {
  header: "crates/krepis-kernel/include/krepis.h",
  ffi: "loader/_gen/ffi.ts",
  messages: "loader/_gen/messages.ts",
  proto: "proto/krepis.proto",
  conformanceMessages: "tests/conformance/_messages.ts",
  conformanceProto: "proto/conformance.proto",
  targetTable: "matrix/targets.json",
  targets: "loader/_gen/targets.ts",
} as const;

/**
 * Renders every generated file from its source.
 *
 * @param header The header text (as cbindgen renders it now).
 * @returns Map of repository-relative path to expected contents.
 */
export async function renderAll(header: string): Promise<Map<string, string>> {
  const proto = await Deno.readTextFile(`${REPO_ROOT}/${GENERATED.proto}`);
  const conformance = await Deno.readTextFile(`${REPO_ROOT}/${GENERATED.conformanceProto}`);
  const targetTable = await Deno.readTextFile(`${REPO_ROOT}/${GENERATED.targetTable}`);
  return new Map([
    [GENERATED.header, header],
    [GENERATED.ffi, await formatTs(await renderFfiModule(header, proto))],
    [
      GENERATED.messages,
      await formatTs(
        renderCodecModule(proto, { source: GENERATED.proto, wire: "../_codec/wire.ts" }),
      ),
    ],
    [
      GENERATED.conformanceMessages,
      await formatTs(
        renderCodecModule(conformance, {
          source: GENERATED.conformanceProto,
          wire: "../../loader/_codec/wire.ts",
        }),
      ),
    ],
    [GENERATED.targets, await formatTs(renderTargetsModule(targetTable))],
  ]);
}

if (import.meta.main) {
  const { values } = commandLine({
    name: "deno task gen",
    summary: "regenerate every committed generated file from its source",
    usage: ["[--check]"],
    options: {
      check: { type: "boolean", help: "write nothing; fail naming the stale files" },
    },
    exitCodes: {
      0: "everything is up to date (or was written)",
      1: "--check: a file is stale; or the kernel build failed",
      2: "usage error",
    },
    more: `Builds the kernel (its build script renders the header with cbindgen) and writes:
  ${GENERATED.header} (from the build)
  ${GENERATED.ffi} (from the header)
  ${GENERATED.messages} (from ${GENERATED.proto})
  ${GENERATED.conformanceMessages} (from ${GENERATED.conformanceProto})
  ${GENERATED.targets} (from ${GENERATED.targetTable})`,
  });
  const { outDir } = await cargoBuild();
  const files = await renderAll(await Deno.readTextFile(`${outDir}/krepis.h`));
  const stale: string[] = [];
  for (const [path, contents] of files) {
    const current = await Deno.readTextFile(`${REPO_ROOT}/${path}`).catch(() => null);
    if (current === contents) continue;
    stale.push(path);
    if (!values.check) await Deno.writeTextFile(`${REPO_ROOT}/${path}`, contents);
  }
  if (values.check && stale.length > 0) {
    printError(
      `Cannot accept generated files: stale ${
        stale.join(", ")
      }\nHint: run \`deno task gen\` and commit the result`,
    );
    Deno.exit(1);
  }
  console.log(stale.length ? `gen: wrote ${stale.join(", ")}` : "gen: everything up to date");
}
