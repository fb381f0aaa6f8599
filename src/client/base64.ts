// The SDK's base64: GraphQL's Bytes scalar is standard base64 with padding.

export const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");

export const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
