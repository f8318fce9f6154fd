/**
 * Test helper: response bodies that break off.
 *
 * @module
 */

/**
 * A body that sends `bytes`, then either ends early (`"close"`: the
 * connection drops) or stalls (`"stall"`: sends nothing more until `signal`).
 */
export function partialBody(
  bytes: Uint8Array,
  then: "close" | "stall",
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      const end = () => {
        try {
          if (then === "close") controller.error(new Error("connection dropped by the test host"));
          else controller.close();
        } catch {
          // the client already went away
        }
      };
      // Let the first bytes reach the client before the connection drops.
      if (then === "close") setTimeout(end, 50);
      else signal?.addEventListener("abort", end);
    },
  });
}
