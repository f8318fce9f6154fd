import protobuf from "protobufjs/light.js";
import { SCHEMA } from "./_schema.ts";
import type { BuildInfo } from "./kernel.ts";

const root = protobuf.Root.fromJSON(SCHEMA as protobuf.INamespace);

/** `krepis.v1.Request`. */
export const RequestType: protobuf.Type = root.lookupType("krepis.v1.Request");
/** `krepis.v1.Response`. */
export const ResponseType: protobuf.Type = root.lookupType("krepis.v1.Response");

/** A decoded `krepis.v1.Response`: `kind` names the set oneof field. */
export interface ResponseMessage {
  kind?: "buildInfo" | "echo";
  buildInfo?: BuildInfo;
  echo?: { payload: Uint8Array | number[] };
}

/** Encodes a plain `krepis.v1.Request` object. */
export function encodeRequest(request: Record<string, unknown>): Uint8Array {
  return RequestType.encode(request).finish();
}

/** Decodes a `krepis.v1.Response`. */
export function decodeResponse(bytes: Uint8Array): ResponseMessage {
  return ResponseType.decode(bytes) as unknown as ResponseMessage;
}
