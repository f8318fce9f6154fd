import assert from "node:assert/strict";
import { barLine, formatBytes, progressView } from "./progress.ts";

const MiB = 1024 * 1024;
const NAME = "libkrepis_kernel-x86_64-unknown-linux-gnu.so.zst";
const REDRAW = "\r\x1b[2K";
/** NAME shortened to 24 characters. */
const shortName = "libkrepis_...-gnu.so.zst";

/** A view writing into a string, with an injected width and clock. */
function capture(tty: boolean, quiet = false) {
  const clock = { now: 0, columns: 80, columnsRead: 0 };
  let text = "";
  const decoder = new TextDecoder();
  const view = progressView(
    {
      writeSync(p) {
        text += decoder.decode(p);
        return p.length;
      },
    },
    tty,
    quiet,
    {
      columns: () => {
        clock.columnsRead++;
        return clock.columns;
      },
      now: () => clock.now,
    },
  );
  return { view, clock, text: () => text };
}

/** The redraws in a TTY output: what follows each `\r\x1b[2K`. */
function redraws(text: string): string[] {
  assert.ok(text.startsWith(REDRAW), JSON.stringify(text.slice(0, 40)));
  return text.split(REDRAW).slice(1);
}

/** Reports `total` bytes in `steps` equal parts, `stepMs` apart (from `start` bytes). */
function download(
  t: ReturnType<typeof capture>,
  opts: { file?: string; start?: number; total: number; steps: number; stepMs: number },
) {
  const { file = NAME, start = 0, total, steps, stepMs } = opts;
  for (let i = 0; i <= steps; i++) {
    t.view.update({ file, received: start + Math.round(((total - start) * i) / steps), total });
    t.clock.now += stepMs;
  }
}

for (const width of [40, 80, 120]) {
  Deno.test(`a TTY bar at ${width} columns: every redraw fits in ${width - 1}, in place on one line`, () => {
    const t = capture(true);
    t.clock.columns = width;
    download(t, { total: 46 * MiB, steps: 20, stepMs: 150 });
    t.view.done();
    const text = t.text();
    assert.ok(text.endsWith("\n"));
    const lines = redraws(text.slice(0, -1));
    // Reports 150 ms apart are each drawn (the limit is one per 100 ms).
    assert.equal(lines.length, 21);
    for (const line of lines) {
      assert.ok(!/[\r\n]/.test(line), JSON.stringify(line));
      assert.ok(line.length <= width - 1, `${line.length} > ${width - 1}: ${line}`);
    }
    const lastLine = lines.at(-1)!;
    if (width === 120) {
      assert.ok(lastLine.startsWith(`${NAME} [${"#".repeat(24)}] 46.0 MiB/46.0 MiB `), lastLine);
      assert.match(lastLine, / \d+\.\d MiB\/s ETA 0s$/);
    } else if (width === 80) {
      // The name gives way first (ellipsis in the middle); sizes, rate and ETA stay.
      assert.match(
        lastLine,
        /^libkrepis_\.\.\.-gnu\.so\.zst \[#+\] 46\.0 MiB\/46\.0 MiB \S+ MiB\/s ETA 0s$/,
      );
    } else {
      // Too narrow for a bar beside the sizes: the name, shortened, and a percentage.
      assert.equal(lastLine, "libkrepis_kerne...linux-gnu.so.zst 100%");
    }
  });
}

Deno.test("an exact bar line at 80 columns, with an injected clock", () => {
  const t = capture(true);
  t.view.update({ file: NAME, received: 0, total: 8 * MiB });
  t.clock.now = 1000;
  t.view.update({ file: NAME, received: 2 * MiB, total: 8 * MiB });
  assert.deepEqual(redraws(t.text()), [
    // Short fields leave room for more of the name.
    "libkrepis_kernel-x...wn-linux-gnu.so.zst [------------------------] 0 B/8.0 MiB",
    `${shortName} [####---------------] 2.0 MiB/8.0 MiB 2.0 MiB/s ETA 3s`,
  ]);
  assert.equal(redraws(t.text())[1].length, 79);
});

Deno.test("the terminal width is read on every redraw and followed when it changes", () => {
  const t = capture(true);
  const widths = [120, 60, 30, 100, 45, 200, 80, 20];
  for (const [i, width] of widths.entries()) {
    t.clock.columns = width;
    t.view.update({ file: NAME, received: (i + 1) * MiB, total: widths.length * MiB });
    t.clock.now += 600;
  }
  const lines = redraws(t.text());
  assert.equal(t.clock.columnsRead, widths.length);
  assert.equal(lines.length, widths.length);
  for (const [i, line] of lines.entries()) {
    assert.ok(line.length <= widths[i] - 1, `${line.length} > ${widths[i] - 1}: ${line}`);
    assert.ok(!line.includes("\n"));
  }
  assert.ok(lines[0].startsWith(`${NAME} [`), "at 120 the whole name shows");
  assert.ok(lines[5].startsWith(`${NAME} [`), "at 200 the whole name shows again");
  assert.ok(!lines[1].includes(NAME), "at 60 it is shortened");
});

Deno.test("a resumed download's rate and ETA count only the bytes of this run", () => {
  const t = capture(true);
  t.clock.columns = 120;
  // 7 MiB were on disk; the first report of this run already counts them.
  t.view.update({ file: NAME, received: 7 * MiB, total: 25 * MiB });
  t.clock.now = 200;
  t.view.update({ file: NAME, received: 7.4 * MiB, total: 25 * MiB });
  t.clock.now = 1000;
  t.view.update({ file: NAME, received: 9 * MiB, total: 25 * MiB });
  t.clock.now = 4000;
  t.view.update({ file: NAME, received: 15 * MiB, total: 25 * MiB });
  const lines = redraws(t.text());
  assert.equal(lines.length, 4);
  // No sample yet: sizes only, no rate and no (wrong) ETA.
  assert.ok(lines[0].endsWith("] 7.0 MiB/25.0 MiB"), lines[0]);
  assert.ok(lines[1].endsWith("] 7.4 MiB/25.0 MiB"), lines[1]);
  // 2 MiB in 1 s: 2 MiB/s, 16 MiB left → 8 s (not 9 MiB/s and 2 s).
  assert.ok(lines[2].endsWith("] 9.0 MiB/25.0 MiB 2.0 MiB/s ETA 8s"), lines[2]);
  // 8 MiB in 4 s: 2 MiB/s, 10 MiB left → 5 s.
  assert.ok(lines[3].endsWith("] 15.0 MiB/25.0 MiB 2.0 MiB/s ETA 5s"), lines[3]);
});

Deno.test("a download that starts over from byte 0 in the same run restarts the sample", () => {
  const t = capture(true);
  t.clock.columns = 120;
  t.view.update({ file: NAME, received: 4 * MiB, total: 20 * MiB });
  t.clock.now = 1000;
  t.view.update({ file: NAME, received: 1 * MiB, total: 20 * MiB });
  t.clock.now = 3000;
  t.view.update({ file: NAME, received: 5 * MiB, total: 20 * MiB });
  const lines = redraws(t.text());
  assert.ok(lines[2].endsWith("] 5.0 MiB/20.0 MiB 2.0 MiB/s ETA 8s"), lines[2]);
});

Deno.test("long ETAs read as minutes and hours", () => {
  const t = capture(true);
  t.clock.columns = 120;
  t.view.update({ file: "a.zst", received: 0, total: 10000 * MiB });
  t.clock.now = 1000;
  t.view.update({ file: "a.zst", received: 1 * MiB, total: 10000 * MiB });
  t.clock.now = 2000;
  t.view.update({ file: "a.zst", received: 100 * MiB, total: 10000 * MiB });
  t.clock.now = 4000;
  t.view.update({ file: "a.zst", received: 9800 * MiB, total: 10000 * MiB });
  const lines = redraws(t.text());
  // 9999 s, 198 s, 1 s.
  assert.ok(lines[1].endsWith(" 1.0 MiB/s ETA 2h46m"), lines[1]);
  assert.ok(lines[2].endsWith(" 50.0 MiB/s ETA 3m18s"), lines[2]);
  assert.ok(lines[3].endsWith(" 2450.0 MiB/s ETA 1s"), lines[3]);
});

Deno.test("redraws are limited to ten a second; the last one always shows", () => {
  const t = capture(true);
  t.clock.columns = 120;
  download(t, { total: 10 * MiB, steps: 100, stepMs: 10 });
  t.view.done();
  const lines = redraws(t.text().slice(0, -1));
  // t = 0, 100, ..., 1000 ms; the last report (at 1000) is complete.
  assert.equal(lines.length, 11);
  assert.ok(lines.at(-1)!.includes("] 10.0 MiB/10.0 MiB "), lines.at(-1));
});

Deno.test("a second file starts on a new line; the first file's redraws have no newline", () => {
  const t = capture(true);
  download(t, { file: "a.zst", total: MiB, steps: 3, stepMs: 150 });
  download(t, { file: "b.zst", total: MiB, steps: 3, stepMs: 150 });
  t.view.done();
  const [a, b, end] = t.text().split("\n");
  assert.equal(end, "");
  assert.equal(redraws(a).length, 4);
  assert.ok(redraws(a).every((line) => line.startsWith("a.zst [")));
  assert.equal(redraws(b).length, 4);
  assert.ok(redraws(b).every((line) => line.startsWith("b.zst [")));
});

Deno.test("not a TTY: one line when a file starts and one when it ends, no width read", () => {
  const t = capture(false);
  download(t, { total: 8 * MiB, steps: 10, stepMs: 150 });
  t.view.done();
  download(t, { file: "other.gz", start: 1024, total: 4096, steps: 2, stepMs: 150 });
  t.view.done();
  assert.equal(
    t.text(),
    `downloading ${NAME} (8.0 MiB)\ndownloaded ${NAME} (8.0 MiB)\n` +
      "downloading other.gz (4.0 KiB)\ndownloaded other.gz (4.0 KiB)\n",
  );
  assert.equal(t.clock.columnsRead, 0);
});

Deno.test("not a TTY: a download that failed ends with what it got, not with downloaded", () => {
  const t = capture(false);
  t.view.update({ file: NAME, received: 0, total: 8 * MiB });
  t.view.update({ file: NAME, received: 3 * MiB, total: 8 * MiB });
  t.view.done(true);
  assert.equal(
    t.text(),
    `downloading ${NAME} (8.0 MiB)\nstopped ${NAME} after 3.0 MiB of 8.0 MiB\n`,
  );
});

Deno.test("quiet prints nothing, on a TTY or not", () => {
  for (const tty of [true, false]) {
    const t = capture(tty, true);
    download(t, { total: 8 * MiB, steps: 10, stepMs: 150 });
    t.view.done();
    assert.equal(t.text(), "");
  }
});

Deno.test("done() without a report prints nothing", () => {
  for (const tty of [true, false]) {
    const t = capture(tty);
    t.view.done();
    assert.equal(t.text(), "");
  }
});

Deno.test("the 3-argument form reads the console's width (80 when there is none)", () => {
  let text = "";
  const view = progressView(
    { writeSync: (p) => (text += new TextDecoder().decode(p), p.length) },
    true,
    false,
  );
  view.update({ file: NAME, received: MiB, total: 2 * MiB });
  view.update({ file: NAME, received: 2 * MiB, total: 2 * MiB });
  view.done();
  let columns: number;
  try {
    columns = Deno.consoleSize().columns || 80;
  } catch {
    columns = 80;
  }
  const lines = redraws(text.slice(0, -1));
  assert.equal(lines.length, 2);
  for (const line of lines) assert.ok(line.length <= columns - 1, `${line.length}: ${line}`);
});

Deno.test("a bar line fits any width, down to none", () => {
  const fields = {
    name: NAME,
    fraction: 0.5,
    bytes: "23.0 MiB/46.0 MiB",
    rate: "12.5 MiB/s",
    eta: "ETA 2m05s",
  };
  for (let budget = 0; budget <= 140; budget++) {
    const line = barLine(fields, budget);
    assert.ok(line.length <= budget, `${budget}: ${line}`);
    if (budget >= 10) assert.ok(line.endsWith("%") || line.includes("MiB"), `${budget}: ${line}`);
  }
  // The order of giving way: name, then bar, then rate, then ETA, then sizes and bar.
  const bar = (filled: number, empty: number) => `[${"#".repeat(filled)}${"-".repeat(empty)}]`;
  const expected: [number, string][] = [
    [140, `${NAME} ${bar(12, 12)} 23.0 MiB/46.0 MiB 12.5 MiB/s ETA 2m05s`],
    [
      100,
      `libkrepis_kerne...linux-gnu.so.zst ${bar(12, 12)} 23.0 MiB/46.0 MiB 12.5 MiB/s ETA 2m05s`,
    ],
    [79, `${shortName} ${bar(6, 7)} 23.0 MiB/46.0 MiB 12.5 MiB/s ETA 2m05s`],
    [70, `${shortName} ${bar(7, 8)} 23.0 MiB/46.0 MiB ETA 2m05s`],
    [55, `${shortName} ${bar(5, 5)} 23.0 MiB/46.0 MiB`],
    [45, `${shortName} ${bar(7, 7)} 50%`],
    [39, "libkrepis_kernel...linux-gnu.so.zst 50%"],
    [12, "li...zst 50%"],
    [8, "50%"],
    [2, "50"],
  ];
  for (const [budget, line] of expected) assert.equal(barLine(fields, budget), line, `${budget}`);
  assert.equal(formatBytes(1536), "1.5 KiB");
});

Deno.test("control characters in a file name do not reach the terminal", () => {
  const t = capture(true);
  t.view.update({ file: "evil\x1b[2J\x07.zst", received: 1, total: 2 });
  assert.deepEqual(redraws(t.text()), ["evil?[2J?.zst [############------------] 1 B/2 B"]);
});
