/**
 * Renders TypeScript encoders and decoders for every message of a proto3
 * file: `proto/krepis.proto` → `loader/_gen/messages.ts` (what the loader uses)
 * and `proto/conformance.proto` → `tests/conformance/_messages.ts` (what the
 * conformance tests compare with protobufjs and prost). The output imports
 * only `loader/_codec/wire.ts`, so nothing from npm is on the loader's run-time
 * path; protobufjs parses the `.proto` here, at generation time only.
 *
 * Supported: every scalar type, enums, nested messages, `repeated` (numbers
 * packed, as proto3 does by default; both forms accepted when reading) and
 * `oneof`. Refused with an error naming the field: maps, `optional` (proto3
 * presence), groups and proto2.
 *
 * Per message `M` it renders: `interface M` (decoded: every scalar with its
 * default, messages and oneof members optional, the oneof's name holding
 * which member is set), `interface MInit` (for encoding: everything
 * optional), `encodeM`, `decodeM`, and the `writeM`/`readM` they share.
 * Fields are written in field-number order, defaults of plain fields are
 * not written, a set oneof member always is; unknown fields are skipped.
 * Encoding writes nested messages in place into one scratch buffer and
 * allocates only the result; decoded `bytes` are views into the input.
 *
 * @module
 */

import protobuf from "npm:protobufjs@^8.8.1";

interface Scalar {
  ts: string;
  wire: number;
  /** Writer/Reader method. */
  method: string;
  zero: string;
  /** A condition on `v` that is true when it is not the default. */
  nonDefault: (v: string) => string;
  packable: boolean;
}

const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;
const num = (v: string) => `${v} !== 0`;
const big = (v: string) => `${v} !== 0n`;

const SCALARS: Record<string, Scalar> = {
  int32: {
    ts: "number",
    wire: VARINT,
    method: "int32",
    zero: "0",
    nonDefault: num,
    packable: true,
  },
  uint32: {
    ts: "number",
    wire: VARINT,
    method: "uint32",
    zero: "0",
    nonDefault: num,
    packable: true,
  },
  sint32: {
    ts: "number",
    wire: VARINT,
    method: "sint32",
    zero: "0",
    nonDefault: num,
    packable: true,
  },
  fixed32: {
    ts: "number",
    wire: I32,
    method: "fixed32",
    zero: "0",
    nonDefault: num,
    packable: true,
  },
  sfixed32: {
    ts: "number",
    wire: I32,
    method: "sfixed32",
    zero: "0",
    nonDefault: num,
    packable: true,
  },
  float: { ts: "number", wire: I32, method: "float", zero: "0", nonDefault: num, packable: true },
  double: { ts: "number", wire: I64, method: "double", zero: "0", nonDefault: num, packable: true },
  int64: {
    ts: "bigint",
    wire: VARINT,
    method: "int64",
    zero: "0n",
    nonDefault: big,
    packable: true,
  },
  uint64: {
    ts: "bigint",
    wire: VARINT,
    method: "uint64",
    zero: "0n",
    nonDefault: big,
    packable: true,
  },
  sint64: {
    ts: "bigint",
    wire: VARINT,
    method: "sint64",
    zero: "0n",
    nonDefault: big,
    packable: true,
  },
  fixed64: {
    ts: "bigint",
    wire: I64,
    method: "fixed64",
    zero: "0n",
    nonDefault: big,
    packable: true,
  },
  sfixed64: {
    ts: "bigint",
    wire: I64,
    method: "sfixed64",
    zero: "0n",
    nonDefault: big,
    packable: true,
  },
  bool: {
    ts: "boolean",
    wire: VARINT,
    method: "bool",
    zero: "false",
    nonDefault: (v) => v,
    packable: true,
  },
  string: {
    ts: "string",
    wire: LEN,
    method: "string",
    zero: '""',
    nonDefault: (v) => `${v} !== ""`,
    packable: false,
  },
  bytes: {
    ts: "Uint8Array",
    wire: LEN,
    method: "bytes",
    zero: "emptyBytes()",
    nonDefault: (v) => `${v}.length !== 0`,
    packable: false,
  },
};

/** An enum is an int32 on the wire. */
const ENUM: Scalar = { ...SCALARS.int32 };

/**
 * Renders the codec module for a proto3 file.
 *
 * @param proto The `.proto` text.
 * @param options `source`: the path named in the header; `wire`: the import
 *   specifier of `loader/_codec/wire.ts` from the output file.
 * @returns TypeScript source (unformatted; `deno fmt` it).
 * @throws {Error} On a construct the generator does not support.
 */
export function renderCodecModule(
  proto: string,
  options: { source: string; wire: string },
): string {
  const parsed = protobuf.parse(proto, { keepCase: false });
  if (!/^\s*syntax\s*=\s*"proto3"\s*;/m.test(proto)) {
    throw new Error(`Cannot generate ${options.source}: proto3 only`);
  }
  const root = parsed.root;
  root.resolveAll();
  const pkg = parsed.package ?? "";
  const namespace = pkg ? root.lookup(pkg) as protobuf.Namespace : root;
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  for (const nested of namespace.nestedArray) {
    if (nested instanceof protobuf.Type) {
      if (nested.nestedArray.length) {
        throw new Error(
          `Cannot generate ${nested.fullName}: nested declarations are not supported`,
        );
      }
      types.push(nested);
    } else if (nested instanceof protobuf.Enum) enums.push(nested);
  }
  const body: string[] = [];
  for (const e of enums) body.push(...renderEnum(e));
  for (const type of types) body.push(...renderType(type));
  body.push(...renderExpectWire());
  const text = body.join("\n");
  const wireTypes = ["I32", "I64", "LEN", "VARINT"].filter((w) =>
    new RegExp(`\\b${w}\\b`).test(text)
  );
  const out: string[] = [
    `// Generated by tools/gen_codec.ts from ${options.source}.`,
    "// Do not edit: run `deno task gen`. tests/codegen_test.ts fails when stale.",
    "",
    "/**",
    ` * Encoders and decoders for the messages of \`${options.source}\` (package`,
    ` * \`${pkg}\`).`,
    " *",
    " * @module",
    " */",
    "",
    `import { ${
      [
        ...wireTypes,
        ...(/\bemptyBytes\(\)/.test(text) ? ["emptyBytes"] : []),
        "Reader",
        "scratchWriter",
        "type Writer",
        "WireError",
      ].join(", ")
    } } from "${options.wire}";`,
    "",
  ];
  return out.join("\n") + "\n" + text + "\n";
}

function renderEnum(e: protobuf.Enum): string[] {
  const lines = [
    `/** \`${e.fullName.slice(1)}\` (an int32 on the wire; unknown values are kept). */`,
  ];
  lines.push(`export const ${e.name} = {`);
  for (const [name, value] of Object.entries(e.values)) lines.push(`  ${name}: ${value},`);
  lines.push("} as const;", "");
  return lines;
}

interface FieldPlan {
  field: protobuf.Field;
  name: string;
  id: number;
  repeated: boolean;
  scalar: Scalar | null;
  message: string | null;
  oneof: string | null;
}

function plan(type: protobuf.Type): FieldPlan[] {
  return [...type.fieldsArray].sort((a, b) => a.id - b.id).map((field) => {
    const where = `${type.fullName.slice(1)}.${field.name}`;
    if (field.map) throw new Error(`Cannot generate ${where}: maps are not supported`);
    if (field.options?.proto3_optional) {
      throw new Error(`Cannot generate ${where}: proto3 \`optional\` is not supported`);
    }
    const resolved = field.resolvedType;
    const scalar = resolved instanceof protobuf.Enum ? ENUM : SCALARS[field.type] ?? null;
    const message = resolved instanceof protobuf.Type ? resolved.name : null;
    if (!scalar && !message) {
      throw new Error(`Cannot generate ${where}: unknown type ${field.type}`);
    }
    return {
      field,
      name: field.name,
      id: field.id,
      repeated: field.repeated,
      scalar,
      message,
      oneof: field.partOf ? field.partOf.name : null,
    };
  });
}

function tsType(f: FieldPlan, init: boolean): string {
  const base = f.message ? (init ? `${f.message}Init` : f.message) : f.scalar!.ts;
  return f.repeated ? (init ? `readonly ${base}[]` : `${base}[]`) : base;
}

function renderType(type: protobuf.Type): string[] {
  const fields = plan(type);
  const full = type.fullName.slice(1);
  const name = type.name;
  const oneofs = type.oneofsArray.map((o) => ({
    name: o.name,
    members: fields.filter((f) => f.oneof === o.name),
  }));
  const lines: string[] = [];

  // The decoded shape.
  // An empty message is an empty interface, which is what it is.
  const empty = fields.length === 0 ? ["// deno-lint-ignore no-empty-interface"] : [];
  lines.push(`/** A decoded \`${full}\`. */`, ...empty, `export interface ${name} {`);
  for (const o of oneofs) {
    lines.push(
      `  /** Which member of the oneof \`${o.name}\` is set, if any. */`,
      `  ${o.name}?: ${o.members.map((m) => JSON.stringify(m.name)).join(" | ")};`,
    );
  }
  for (const f of fields) {
    const optional = f.oneof !== null || (f.message !== null && !f.repeated);
    lines.push(`  ${f.name}${optional ? "?" : ""}: ${tsType(f, false)};`);
  }
  lines.push("}", "");

  // What encoding accepts.
  lines.push(
    `/** A \`${full}\` to encode: every field may be left out. */`,
    ...empty,
    `export interface ${name}Init {`,
  );
  for (const o of oneofs) {
    lines.push(
      `  /** Ignored when encoding: the member that is set decides. */`,
      `  ${o.name}?: ${o.members.map((m) => JSON.stringify(m.name)).join(" | ")};`,
    );
  }
  for (const f of fields) lines.push(`  ${f.name}?: ${tsType(f, true)};`);
  lines.push("}", "");

  // Writer.
  lines.push(
    `/** Writes the fields of a \`${full}\` (without a length prefix). */`,
    fields.length === 0
      ? `export function write${name}(_w: Writer, _m: ${name}Init): void {`
      : `export function write${name}(w: Writer, m: ${name}Init): void {`,
  );
  for (const f of fields) lines.push(...renderWrite(f));
  lines.push("}", "");
  lines.push(
    `/** Encodes a \`${full}\`. */`,
    `export function encode${name}(m: ${name}Init): Uint8Array {`,
    "  const w = scratchWriter();",
    `  write${name}(w, m);`,
    "  return w.finish();",
    "}",
    "",
  );

  // Reader.
  lines.push(
    `/** Reads the fields of a \`${full}\` up to \`end\`, into \`m\` (merging, as protobuf does). */`,
    `export function read${name}(r: Reader, end: number, m: ${name} = new${name}()): ${name} {`,
    "  while (r.pos < end) {",
    "    const key = r.uint32(end);",
    "    const wire = key & 7;",
    "    switch (key >>> 3) {",
  );
  for (const f of fields) {
    lines.push(...renderRead(f, full, oneofs.find((o) => o.name === f.oneof)));
  }
  lines.push(
    "      case 0:",
    `        throw new WireError(\`field number 0 in ${full} at byte \${r.pos}\`);`,
    "      default:",
    "        r.skip(wire, end);",
    "    }",
    "  }",
    "  if (r.pos !== end) {",
    `    throw new WireError(\`a field runs past the end of ${full} at byte \${r.pos}\`);`,
    "  }",
    "  return m;",
    "}",
    "",
    `/** A \`${full}\` with every field at its default. */`,
    `export function new${name}(): ${name} {`,
    `  return { ${
      fields.filter((f) => f.oneof === null && (f.repeated || !f.message)).map((f) =>
        `${f.name}: ${f.repeated ? "[]" : f.scalar!.zero}`
      ).join(", ")
    } };`,
    "}",
    "",
    `/**`,
    ` * Decodes a \`${full}\`.`,
    ` *`,
    ` * @throws {WireError} When the bytes are not a valid \`${full}\`.`,
    ` */`,
    `export function decode${name}(bytes: Uint8Array): ${name} {`,
    `  return read${name}(new Reader(bytes), bytes.length);`,
    "}",
    "",
  );
  return lines;
}

function renderWrite(f: FieldPlan): string[] {
  const v = `m.${f.name}`;
  if (f.message) {
    const sub = [
      `    w.tag(${f.id}, LEN);`,
      "    const at = w.fork();",
      `    write${f.message}(w, VALUE);`,
      "    w.join(at);",
    ];
    if (f.repeated) {
      return [
        `  if (${v} !== undefined) {`,
        `    for (const item of ${v}) {`,
        ...sub.map((l) => "  " + l.replace("VALUE", "item")),
        "    }",
        "  }",
      ];
    }
    return [`  if (${v} !== undefined) {`, ...sub.map((l) => l.replace("VALUE", v)), "  }"];
  }
  const s = f.scalar!;
  if (f.repeated) {
    if (s.packable) {
      return [
        `  if (${v} !== undefined && ${v}.length !== 0) {`,
        `    w.tag(${f.id}, LEN);`,
        "    const at = w.fork();",
        `    for (const item of ${v}) w.${s.method}(item);`,
        "    w.join(at);",
        "  }",
      ];
    }
    return [
      `  if (${v} !== undefined) {`,
      `    for (const item of ${v}) {`,
      `      w.tag(${f.id}, ${wireName(s.wire)});`,
      `      w.${s.method}(item);`,
      "    }",
      "  }",
    ];
  }
  // A oneof member is written whenever it is set; a plain field only when not the default.
  const condition = f.oneof ? `${v} !== undefined` : `${v} !== undefined && ${s.nonDefault(v)}`;
  return [
    `  if (${condition}) {`,
    `    w.tag(${f.id}, ${wireName(s.wire)});`,
    `    w.${s.method}(${v});`,
    "  }",
  ];
}

function renderRead(
  f: FieldPlan,
  full: string,
  oneof: { name: string; members: FieldPlan[] } | undefined,
): string[] {
  const where = `${full}.${f.field.name}`;
  const lines = [`      case ${f.id}: {`];
  const select = oneof
    ? [
      ...oneof.members.filter((m) => m !== f).map((m) => `        delete m.${m.name};`),
      `        m.${oneof.name} = ${JSON.stringify(f.name)};`,
    ]
    : [];
  if (f.message) {
    lines.push(
      `        expectWire(wire, LEN, "${where}", r.pos);`,
      "        const stop = r.delimited(end);",
    );
    if (f.repeated) lines.push(`        m.${f.name}.push(read${f.message}(r, stop));`);
    else {
      lines.push(...select);
      lines.push(`        m.${f.name} = read${f.message}(r, stop, m.${f.name});`);
    }
  } else {
    const s = f.scalar!;
    if (f.repeated && s.packable) {
      lines.push(
        `        if (wire !== LEN) expectWire(wire, ${wireName(s.wire)}, "${where}", r.pos);`,
        `        r.repeated(wire, end, (e) => r.${s.method}(e), m.${f.name});`,
      );
    } else if (f.repeated) {
      lines.push(
        `        expectWire(wire, ${wireName(s.wire)}, "${where}", r.pos);`,
        `        m.${f.name}.push(r.${s.method}(end));`,
      );
    } else {
      lines.push(`        expectWire(wire, ${wireName(s.wire)}, "${where}", r.pos);`, ...select);
      lines.push(`        m.${f.name} = r.${s.method}(end);`);
    }
  }
  lines.push("        break;", "      }");
  return lines;
}

function wireName(wire: number): string {
  return ({ [VARINT]: "VARINT", [I64]: "I64", [LEN]: "LEN", [I32]: "I32" } as Record<
    number,
    string
  >)[
    wire
  ];
}

function renderExpectWire(): string[] {
  return [
    "function expectWire(found: number, expected: number, field: string, at: number): void {",
    "  if (found !== expected) {",
    "    throw new WireError(`wire type ${found} for ${field} (expected ${expected}) at byte ${at}`);",
    "  }",
    "}",
  ];
}
