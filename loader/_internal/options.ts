/**
 * Checks of the options objects the public API takes: an unknown key is a
 * `TypeError` naming the nearest known one, a value of the wrong type a
 * `TypeError` saying what was expected. Nothing is coerced or ignored.
 *
 * @module
 */

import { nearest } from "./nearest.ts";

/** What a value was given as, for a message: `a string`, `null`, `an array`. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return type === "object" || type === "undefined" ? type : `a ${type}`;
}

/**
 * Refuses an options argument that is not a plain object, or that has a
 * key outside `known`.
 *
 * @param action What the call does, for the message: `start the server`.
 * @param options The argument as given.
 * @param known Every key the call reads.
 * @returns The options, typed as a record, for further checks.
 * @throws {TypeError} When `options` is not an object, or has an unknown key.
 */
export function checkKeys(
  action: string,
  options: unknown,
  known: readonly string[],
): Record<string, unknown> {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `Cannot ${action}: the options must be an object, not ${kindOf(options)}\nHint: pass { ${
        known.join(", ")
      } }`,
    );
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw new TypeError(
      `Cannot ${action}: unknown option ${JSON.stringify(key)}\nHint: ${
        near === undefined
          ? `the options are ${known.join(", ")}`
          : `did you mean ${near}? The options are ${known.join(", ")}`
      }`,
    );
  }
  return options as Record<string, unknown>;
}

/**
 * Refuses a value that is neither `undefined` nor an integer from `min` to
 * `max`: a non-number is a `TypeError`, a number out of range a `RangeError`.
 *
 * @param action What the call does, for the message.
 * @param name The option's name.
 * @param value The value given.
 * @param min The least value allowed.
 * @param max The greatest value allowed.
 * @param hint A hint for the message, if any.
 * @returns The value, or `undefined` when not given.
 * @throws {TypeError} When the value is not a number.
 * @throws {RangeError} When it is not an integer from `min` to `max`.
 */
export function integerOption(
  action: string,
  name: string,
  value: unknown,
  min: number,
  max: number,
  hint?: string,
): number | undefined {
  if (value === undefined) return undefined;
  const tail = hint === undefined ? "" : `\nHint: ${hint}`;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action}: ${name} must be an integer from ${min} to ${max}, not ${
        kindOf(value)
      }${tail}`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be an integer from ${min} to ${max}, not ${value}${tail}`,
    );
  }
  return value;
}

/**
 * Refuses a value that is neither `undefined` nor a boolean: nothing else is
 * read as true or false.
 *
 * @param action What the call does, for the message.
 * @param name The option's name.
 * @param value The value given.
 * @returns The value, or `undefined` when not given.
 * @throws {TypeError} When the value is not a boolean.
 */
export function booleanOption(action: string, name: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(`Cannot ${action}: ${name} must be true or false, not ${kindOf(value)}`);
}
