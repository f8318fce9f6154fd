/**
 * `krepis init`'s progress bar in a real pseudo-terminal of 80 and of 120
 * columns, against a signed release of the real kernel on loopback whose
 * host sends the library in paced chunks: every line the terminal receives
 * fits its width, the bar is redrawn in place, and a resumed download shows
 * the bytes from the partial file on and a rate of this run's bytes only.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveTarget } from "../loader/mod.ts";
import type { Fault } from "../release/serve_dir.ts";
import { CLI, cliEnv, spawnCli } from "./_cli.ts";
import { type HostedRelease, hostedRelease } from "./_hosted_release.ts";
import { partialBody } from "./_partial_body.ts";
import { NO_PTY, runInPty, shQuote, terminalLines } from "./_pty.ts";
import { skipIf } from "./_tools.ts";

const target = resolveTarget();
const MiB = 1024 * 1024;
/** Chunks the library is sent in, and the pause before each but the first. */
const CHUNKS = 10;
const PAUSE_MS = 150;

/** Whether `file` is a copy of this machine's library (zstd or gzip). */
const isLibrary = (file: string) => file.startsWith(`${target.file}.`);

/** Bytes in the download's `.partial` file: what the client has written so far. */
async function written(t: HostedRelease): Promise<number> {
  try {
    for await (const entry of Deno.readDir(t.entryDir)) {
      if (entry.name.endsWith(".partial")) {
        return (await Deno.stat(join(t.entryDir, entry.name))).size;
      }
    }
  } catch {
    // no entry directory yet
  }
  return 0;
}

/**
 * A fault hook sending the library (from a `Range` start, if asked) in
 * {@linkcode CHUNKS} chunks. Each chunk after the first is sent only once
 * the client has written everything before it to its `.partial` file, and
 * then after {@linkcode PAUSE_MS}: however fast or slow the client, the
 * reports of its first and last chunk are at least `(CHUNKS - 2) * PAUSE_MS`
 * apart, and the client reads at least one report per chunk.
 */
function paced(t: HostedRelease): Fault {
  return ({ file, body, request }) => {
    if (!isLibrary(file) || !body) return undefined;
    const start = Number(request.headers.get("range")?.match(/^bytes=(\d+)-$/)?.[1] ?? 0);
    const size = Math.ceil((body.length - start) / CHUNKS);
    let at = start;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= body.length) return controller.close();
        if (at > start) {
          const giveUp = Date.now() + 60_000;
          while (!cancelled && (await written(t)) < at) {
            if (Date.now() > giveUp) {
              return controller.error(new Error("the client stopped reading"));
            }
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
          if (cancelled) return;
        }
        const end = Math.min(at + size, body.length);
        controller.enqueue(body.slice(at, end));
        at = end;
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    const headers: Record<string, string> = { "content-length": String(body.length - start) };
    if (start === 0) return new Response(stream, { status: 200, headers });
    headers["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
    return new Response(stream, { status: 206, headers });
  };
}

/**
 * Runs `krepis init --cache-dir <cache> --mirror <host>` in a pty of `cols`
 * columns, its stdout to a file (the report names a long path and is not
 * the bar under test): returns the terminal's output and the report.
 */
async function initInPty(t: HostedRelease, cols: number) {
  const report = await Deno.makeTempFile({ prefix: "krepis-init-stdout-" });
  const command = [...CLI, "init", "--cache-dir", t.cacheDir, "--mirror", t.host.url]
    .map(shQuote).join(" ");
  const run = await runInPty(`${command} > ${shQuote(report)}`, {
    cols,
    rows: 24,
    env: cliEnv({ KREPIS_TRUSTED_KEY: t.fixture.publicKey }),
    limitMs: 120_000,
  });
  const stdout = await Deno.readTextFile(report).catch(() => "");
  await Deno.remove(report).catch(() => {});
  assert.equal(run.signal, null, `killed after the time limit:\n${JSON.stringify(run.output)}`);
  assert.equal(run.code, 0, `${run.stderr}\n${JSON.stringify(run.output)}`);
  assert.match(stdout, new RegExp(`^installed ${target.triple} `));
  return run.output;
}

/** One bar redraw of the library: `<name> [<bar>] <received>/<total> ...`. */
interface Bar {
  line: string;
  name: string;
  received: number;
  total: number;
  rate?: number;
}

const MIB_UNITS: Record<string, number> = { "B": 1, "KiB": 1024, "MiB": MiB };

/** The lines that are bars of the library, parsed (name possibly shortened with `...`). */
function libraryBars(lines: string[], file: string): Bar[] {
  const bars: Bar[] = [];
  for (const line of lines) {
    const match = line.match(
      /^(\S+) \[[#-]+\] ([\d.]+) (B|KiB|MiB)\/([\d.]+) (B|KiB|MiB)(?: ([\d.]+) (B|KiB|MiB)\/s)?(?: ETA \w+)?$/,
    );
    if (!match) continue;
    const name = match[1];
    const [head, tail] = name.includes("...") ? name.split("...") : [name, ""];
    if (name.includes("...") ? !(file.startsWith(head) && file.endsWith(tail)) : name !== file) {
      continue;
    }
    bars.push({
      line,
      name,
      received: Number(match[2]) * MIB_UNITS[match[3]],
      total: Number(match[4]) * MIB_UNITS[match[5]],
      rate: match[6] === undefined ? undefined : Number(match[6]) * MIB_UNITS[match[7]],
    });
  }
  return bars;
}

/** The checks every run makes: widths, in-place redraws, the library's bar. */
function checkTerminal(output: string, cols: number, file: string): Bar[] {
  const lines = terminalLines(output);
  for (const line of lines) {
    assert.ok(
      line.length <= cols - 1,
      `${line.length} > ${cols - 1} columns: ${JSON.stringify(line)}`,
    );
  }
  const bars = libraryBars(lines, file);
  assert.ok(bars.length >= 2, `at least 2 redraws of the bar:\n${lines.join("\n")}`);
  // Each redraw returns to the start of the row and clears it; no newline
  // comes between the first redraw and the last.
  const first = output.indexOf("\r\x1b[2K");
  const last = output.lastIndexOf("\r\x1b[2K");
  assert.ok(first >= 0 && last > first, JSON.stringify(output));
  assert.equal(output.slice(0, first), "", "nothing before the bar");
  assert.ok(!output.slice(first, last).includes("\n"), JSON.stringify(output.slice(first, last)));
  assert.equal(output.split("\r\x1b[2K").length - 1, bars.length, "every redraw is a bar");
  const final = bars.at(-1)!;
  assert.match(final.line, /\[#+\]/, "the last redraw shows a full bar");
  assert.equal(final.received, final.total, final.line);
  return bars;
}

for (const cols of [80, 120]) {
  Deno.test(
    skipIf(
      `krepis init in a ${cols}-column pseudo-terminal: the bar fits and is redrawn in place`,
      NO_PTY,
    ),
    async () => {
      await using t = await hostedRelease();
      t.host.fault = paced(t);
      const output = await initInPty(t, cols);
      const served = t.host.served.filter((s) => isLibrary(s.path.split("/").pop()!));
      assert.equal(served.length, 1);
      const file = served[0].path.split("/").pop()!;
      const bars = checkTerminal(output, cols, file);
      if (cols === 120) {
        // Room for the whole name: the pty's width was read (not 80 assumed).
        assert.ok(bars.every((bar) => bar.name === file), bars.map((b) => b.line).join("\n"));
        assert.ok(bars.some((bar) => bar.line.length > 79));
      } else {
        assert.ok(file.length > 40, file);
        assert.ok(bars.some((bar) => bar.name.includes("...")), "the long name is shortened");
      }
      // The first report of a fresh download counts one chunk at most.
      assert.ok(bars[0].received <= bars[0].total / CHUNKS + MiB / 10, bars[0].line);
    },
  );
}

Deno.test(
  skipIf(
    "a download resumed in a pseudo-terminal counts on from the partial file; its rate is this run's",
    NO_PTY,
  ),
  async () => {
    await using t = await hostedRelease();
    // A first installer receives half the library, stalls, and is killed.
    const release = new AbortController();
    let half = 0;
    t.host.fault = ({ file, body, count }) => {
      if (!isLibrary(file) || count > 0 || !body) return undefined;
      half = Math.floor(body.length / 2);
      return new Response(partialBody(body.slice(0, half), "stall", release.signal));
    };
    const child = spawnCli(["init"], t.env);
    try {
      for (let i = 0; i < 2400 && (half === 0 || (await written(t)) < half); i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      child.kill("SIGKILL");
      await child.output();
      release.abort();
    }
    // Sizes are shown to 0.1 MiB: half a MiB or more keeps the checks below meaningful (the
    // release kernel's .zst is about 2.6 MiB, the debug kernel's far more).
    assert.ok(half > MiB / 2, `a library of more than 1 MiB (${half * 2} bytes)`);
    assert.equal(await written(t), half, "half the library in the .partial file");

    t.host.fault = paced(t);
    const output = await initInPty(t, 120);
    const requests = t.host.served.filter((s) => isLibrary(s.path.split("/").pop()!));
    assert.deepEqual(requests.map((r) => r.range), [null, `bytes=${half}-`]);
    const file = requests[0].path.split("/").pop()!;
    const bars = checkTerminal(output, 120, file);
    const total = bars[0].total;
    // The bytes shown start from the partial file's (shown to 0.1 MiB).
    for (const bar of bars) assert.ok(bar.received >= half - 0.05 * MiB, bar.line);
    // The first report comes before the second chunk is sent: no rate yet.
    assert.equal(bars[0].rate, undefined, bars[0].line);
    assert.doesNotMatch(bars[0].line, /ETA/);
    // The last report comes at least (CHUNKS - 2) pauses after the first, so
    // it has a rate and an ETA; this run moved at most the half left, so
    // the rate is at most that over that time (counting the half on disk
    // too, it would be about twice as high).
    const final = bars.at(-1)!;
    assert.match(final.line, / [\d.]+ (B|KiB|MiB)\/s ETA 0s$/);
    // (A timer may fire a little early: 5 ms of slack per pause.)
    const bound = (total - half) / (((CHUNKS - 2) * (PAUSE_MS - 5)) / 1000);
    assert.ok(final.rate! <= bound + 0.05 * MiB, `${final.line}: at most ${bound} B/s`);
  },
);
