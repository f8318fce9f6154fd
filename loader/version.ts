/**
 * The lock-step version of this loader and of the kernel it loads.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };

/** The version of this loader, and of the kernel it loads (lock-step). */
export const VERSION: string = denoJson.version;
