import assert from "node:assert/strict";
import { loadTargetTable } from "../matrix/targets.ts";
import {
  exitCode,
  formatPlatforms,
  hostCapability,
  type PlatformRow,
  runPlan,
  wineOutcome,
} from "./platforms.ts";

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

Deno.test("hostCapability() builds macOS and Windows rows off their OS only on Linux with apt", () => {
  const kinds = (host: Parameters<typeof hostCapability>[1]) =>
    Object.fromEntries(rows.map((row) => [row.triple, hostCapability(row, host) === null]));
  assert.deepEqual(kinds({ ...LINUX_X64, apt: true }), {
    "x86_64-unknown-linux-gnu": true,
    "aarch64-unknown-linux-gnu": true,
    "x86_64-apple-darwin": true,
    "aarch64-apple-darwin": true,
    "x86_64-pc-windows-msvc": true,
    "aarch64-pc-windows-msvc": true,
  });
  assert.deepEqual(kinds({ ...LINUX_X64, apt: false }), {
    "x86_64-unknown-linux-gnu": true,
    "aarch64-unknown-linux-gnu": true,
    "x86_64-apple-darwin": false,
    "aarch64-apple-darwin": false,
    "x86_64-pc-windows-msvc": false,
    "aarch64-pc-windows-msvc": false,
  });
  assert.deepEqual(kinds({ os: "darwin", arch: "aarch64", apt: false }), {
    "x86_64-unknown-linux-gnu": true,
    "aarch64-unknown-linux-gnu": true,
    "x86_64-apple-darwin": true,
    "aarch64-apple-darwin": true,
    "x86_64-pc-windows-msvc": false,
    "aarch64-pc-windows-msvc": false,
  });
  assert.deepEqual(kinds({ os: "windows", arch: "x86_64", apt: false }), {
    "x86_64-unknown-linux-gnu": true,
    "aarch64-unknown-linux-gnu": true,
    "x86_64-apple-darwin": false,
    "aarch64-apple-darwin": false,
    "x86_64-pc-windows-msvc": true,
    "aarch64-pc-windows-msvc": true,
  });
  const msvc = rows.find((r) => r.triple === "x86_64-pc-windows-msvc")!;
  const mac = rows.find((r) => r.triple === "aarch64-apple-darwin")!;
  assert.match(
    hostCapability(msvc, { os: "darwin", arch: "aarch64", apt: false })!.cannot,
    /^a Windows row off Windows is built only on Linux with apt and a Debian archive .*darwin$/,
  );
  assert.match(hostCapability(mac, { ...LINUX_X64, apt: false })!.cannot, /no apt/);
  // What cannot be done here is never a failure.
  const cannot = hostCapability(mac, { os: "windows", arch: "x86_64", apt: false })!;
  assert.equal(
    exitCode([{ triple: mac.triple, built: cannot, checked: cannot, ran: cannot }]),
    0,
  );
});

Deno.test("runPlan() on a Mac never says that nothing here runs a Mach-O file", () => {
  for (const arch of ["aarch64", "x86_64"] as const) {
    for (const row of rows.filter((r) => r.os === "darwin")) {
      const plan = runPlan(row, { os: "darwin", arch });
      if (row.arch === arch) assert.equal(plan.how, "native");
      else assert.ok(plan.how === "cannot" && !/Mach-O/.test(plan.why), JSON.stringify(plan));
    }
  }
});

Deno.test("wineOutcome() fails with the setup hint for a part setup makes, else cannot here", () => {
  assert.deepEqual(wineOutcome({ missing: "no Wine root at /t/wine-trixie", setup: true }), {
    failed: "not set up: run deno task setup (no Wine root at /t/wine-trixie)",
  });
  assert.deepEqual(wineOutcome({ missing: "no user and mount namespaces here" }), {
    cannot: "no user and mount namespaces here",
  });
  assert.deepEqual(wineOutcome({ broken: "exit 3" }), { failed: "exit 3" });
});
