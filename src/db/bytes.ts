// Converting bytes for Prisma's Bytes columns.

/** Prisma's Bytes columns want an ArrayBuffer-backed Uint8Array. */
export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b instanceof Uint8Array && b.buffer instanceof ArrayBuffer
    ? (b as Uint8Array<ArrayBuffer>)
    : new Uint8Array(b);
}
