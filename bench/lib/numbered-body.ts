// Benchmark bodies carry their send's number in the first four bytes, so an arrival finds its send time.
export function numberedBody(idx: number, bytes: number): Buffer {
  const body = Buffer.alloc(bytes, 7);
  body.writeUInt32LE(idx, 0);
  return body;
}

/** The number of the envelope in an inbox subscription payload, or undefined for any other event. */
export function envelopeNumber(payload: { data?: unknown }): number | undefined {
  const e = (payload.data as { inbox?: { envelope?: { body: string } } })?.inbox?.envelope;
  return e ? Buffer.from(e.body, "base64").readUInt32LE(0) : undefined;
}
