import assert from "node:assert/strict";
import { isRetryable, Retryable, retryDelay, withRetries } from "./retry.ts";
import { HttpStatusError, TimeoutError } from "./http.ts";
import { IntegrityError } from "../errors.ts";

const policy = (attempts: number, deadline = Date.now() + 60_000) => ({
  attempts,
  baseDelayMs: 1,
  deadline,
});

Deno.test("one policy: network failures, timeouts, truncation and 5xx retry; 4xx, integrity and permissions do not", () => {
  for (
    const error of [
      new TypeError("fetch failed"),
      new Deno.errors.ConnectionReset("reset"),
      new Deno.errors.ConnectionRefused("refused"),
      new Deno.errors.UnexpectedEof("eof"),
      new TimeoutError("slow"),
      new Retryable("cut short"),
      new HttpStatusError("503", 503),
      Object.assign(new Error("aborted"), { name: "AbortError" }),
    ]
  ) assert.equal(isRetryable(error), true, String(error));
  for (
    const error of [
      new HttpStatusError("404", 404),
      new IntegrityError("bad bytes"),
      new Deno.errors.NotCapable("no --allow-net"),
      new Error("anything else"),
    ]
  ) assert.equal(isRetryable(error), false, String(error));
});

Deno.test("withRetries() retries what may pass, up to the attempts, and stops at the first final failure", async () => {
  let calls = 0;
  const flaky = await withRetries(policy(4), (n) => {
    calls++;
    if (n < 3) throw new TypeError("fetch failed");
    return Promise.resolve("ok");
  });
  assert.deepEqual([flaky, calls], [{ ok: true, value: "ok" }, 3]);

  calls = 0;
  const down = await withRetries(policy(3), () => {
    calls++;
    throw new HttpStatusError("502", 502);
  });
  assert.equal(down.ok, false);
  assert.equal(calls, 3);

  calls = 0;
  await assert.rejects(
    () =>
      withRetries(policy(5), () => {
        calls++;
        throw new HttpStatusError("404", 404);
      }),
    HttpStatusError,
  );
  assert.equal(calls, 1, "a 4xx is never retried");
});

Deno.test("withRetries() starts nothing after the deadline, and 'again' does not use up an attempt", async () => {
  let calls = 0;
  const late = await withRetries(policy(5, Date.now() - 1), () => {
    calls++;
    return Promise.resolve(1);
  });
  assert.deepEqual([late, calls], [{ ok: false, lastError: undefined }, 0]);

  calls = 0;
  let again = true;
  const result = await withRetries(policy(1), () => {
    calls++;
    if (calls === 1) throw new IntegrityError("resumed bytes were bad");
    return Promise.resolve("fresh");
  }, () => {
    if (!again) return;
    again = false;
    return "again";
  });
  assert.deepEqual([result, calls], [{ ok: true, value: "fresh" }, 2]);
});

Deno.test("retryDelay() doubles with jitter and never waits past the deadline", () => {
  const p = { attempts: 9, baseDelayMs: 100, deadline: 1_000_050 };
  for (let i = 0; i < 50; i++) {
    assert.ok(retryDelay(p, 1, 0) <= 100);
    assert.ok(retryDelay(p, 4, 0) <= 800);
    assert.ok(retryDelay(p, 30, 1_000_000) <= 50, "clamped to the deadline");
    assert.equal(retryDelay(p, 3, 2_000_000), 0, "past the deadline: no wait");
  }
});
