import assert from "node:assert/strict";
import { loadTargetTable } from "../matrix/targets.ts";
import { exitCode, formatPlatforms, type PlatformRow, runPlan } from "./platforms.ts";

const rows = await loadTargetTable();
const LINUX_X64 = { os: "linux", arch: "x86_64" } as const;

Deno.test("runPlan() runs each target natively, under qemu, under Wine, or says why not", () => {
  const plans = Object.fromEntries(rows.map((row) => [row.triple, runPlan(row, LINUX_X64).how]));
  assert.deepEqual(plans, {
    "x86_64-unknown-linux-gnu": "native",
    "aarch64-unknown-linux-gnu": "qemu",
    "x86_64-apple-darwin": "cannot",
    "aarch64-apple-darwin": "cannot",
    "x86_64-pc-windows-msvc": "wine",
    "aarch64-pc-windows-msvc": "cannot",
  });
  // On a Mac, its own row is native and Wine is not offered.
  const mac = { os: "darwin", arch: "aarch64" } as const;
  assert.equal(runPlan(rows.find((r) => r.triple === "aarch64-apple-darwin")!, mac).how, "native");
  assert.equal(
    runPlan(rows.find((r) => r.triple === "x86_64-pc-windows-msvc")!, mac).how,
    "cannot",
  );
});

Deno.test("the platforms table has one row per target and fails only on what could be done", () => {
  const report: PlatformRow[] = [
    { triple: "a", built: { ok: "a.so" }, checked: { ok: "all" }, ran: { ok: "natively" } },
    {
      triple: "b",
      built: { ok: "twin" },
      checked: { ok: "pe" },
      ran: { cannot: "nothing here runs a | pipe" },
    },
  ];
  const table = formatPlatforms(report).split("\n");
  assert.equal(table.length, 2 + report.length);
  assert.equal(table[0], "| target | built | checked | ran |");
  assert.equal(table[3], "| b | yes: twin | yes: pe | cannot here: nothing here runs a \\| pipe |");
  assert.equal(exitCode(report), 0, "what cannot be done here is not a failure");
  report[1].ran = { failed: "smoke: 14 passed, 1 failed" };
  assert.equal(exitCode(report), 1);
  assert.match(formatPlatforms(report), /\| FAILED: smoke: 14 passed, 1 failed \|$/);
});
