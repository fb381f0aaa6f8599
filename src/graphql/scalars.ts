// The Bytes (canonical base64) and DateTime scalars, with their bounds.
import { GraphQLError, Kind } from "graphql";
import { base64 } from "../bytes.ts";
import { builder } from "./builder.ts";

// The largest single value any field accepts; fields bound themselves tighter where they know better.
export const MAX_BYTES_VALUE = 4 * 1024 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseBytes(value: unknown): Uint8Array<ArrayBuffer> {
  if (typeof value !== "string") throw badBytes("Bytes must be a base64 string");
  if (value.length > Math.ceil(MAX_BYTES_VALUE / 3) * 4) throw badBytes(`Bytes value is over ${MAX_BYTES_VALUE} bytes`);
  if (!BASE64.test(value)) throw badBytes("Bytes must be standard base64 with padding");
  const bytes = Buffer.from(value, "base64");
  // "AB==" and "AA==" decode alike: only the canonical spelling (unused bits zero) is accepted, one string per value.
  if (bytes.toString("base64") !== value) throw badBytes("Bytes must be canonical base64 (unused bits zero)");
  return new Uint8Array(bytes);
}

function badBytes(message: string) {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });
}

builder.scalarType("Bytes", {
  description: "Binary data as standard base64 with padding.",
  serialize: (v) => (typeof v === "string" ? v : base64(v as Uint8Array)),
  parseValue: parseBytes,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw badBytes("Bytes must be a base64 string");
    return parseBytes(ast.value);
  },
});

builder.scalarType("DateTime", {
  description: "An ISO-8601 timestamp.",
  serialize: (v) => (typeof v === "string" ? v : (v as Date).toISOString()),
  parseValue: (v) => {
    const d = typeof v === "string" && v.length <= 40 ? new Date(v) : new Date(NaN);
    if (Number.isNaN(d.getTime())) throw badBytes("DateTime must be an ISO-8601 string");
    return d;
  },
});
