// Byte conversions the server needs in more than one place: Prisma's Bytes columns, and base64 for JSON payloads.

/** Prisma's Bytes columns want an ArrayBuffer-backed Uint8Array. */
export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b instanceof Uint8Array && b.buffer instanceof ArrayBuffer
    ? (b as Uint8Array<ArrayBuffer>)
    : new Uint8Array(b);
}

/** Standard base64 with padding, as the Bytes scalar carries bytes. */
export const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
