// The SDK's attachment crypto without a server: bucket sizes, blob sizes that match what is written, round trips
// of edge sizes, and pointers from a hostile peer refused.
import { randomBytes } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { AttachmentIntegrityError, blobSize, decryptFile, encryptToFile, paddedSize, verifyFile } from "../../src/client/attachments/crypto.ts";
import { checkPointer } from "../../src/client/attachments/pointer.ts";
import { removeTempDirs, tempDir } from "../helpers/sdk.ts";

afterAll(() => removeTempDirs());

async function roundTrip(plain: Buffer, dir: string) {
  const blob = path.join(dir, `b-${plain.length}`);
  const enc = await encryptToFile(Readable.from([plain]), plain.length, blob);
  expect((await stat(blob)).size).toBe(blobSize(plain.length));
  expect(enc.blobSize).toBe(blobSize(plain.length));
  await verifyFile(blob, enc.key, enc.digest, plain.length);
  const parts: Buffer[] = [];
  await decryptFile(blob, enc.key, plain.length, new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) }));
  return { blob, enc, out: Buffer.concat(parts) };
}

describe("attachment crypto", () => {
  it("pads to buckets that never shrink a file and grow it by at most about 5%", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (n) => {
        const p = paddedSize(n);
        expect(p).toBeGreaterThanOrEqual(Math.max(n, 541));
        if (n > 541) expect(p).toBeLessThanOrEqual(Math.ceil(n * 1.05) + 1);
      }),
    );
    // Files of nearby sizes share a bucket: the stored size does not tell them apart.
    expect(paddedSize(1_000_000)).toBe(paddedSize(1_000_001));
  });

  it("round-trips edge sizes and writes exactly blobSize bytes", async () => {
    const dir = await tempDir();
    for (const n of [0, 1, 15, 16, 17, 540, 541, 542, 4096, 65_537, 1_000_003]) {
      const plain = randomBytes(n);
      const { out } = await roundTrip(plain, dir);
      expect(out.equals(plain), `size ${n}`).toBe(true);
    }
  });

  it("refuses any single flipped byte, a wrong key, a wrong size, a truncated or extended blob", async () => {
    const dir = await tempDir();
    const plain = randomBytes(10_000);
    const { blob, enc } = await roundTrip(plain, dir);
    const original = await readFile(blob);
    for (const at of [0, 15, 16, 5000, original.length - 33, original.length - 1]) {
      const bad = Buffer.from(original);
      bad[at] ^= 0x80;
      await writeFile(blob, bad);
      await expect(verifyFile(blob, enc.key, enc.digest, plain.length)).rejects.toThrow(AttachmentIntegrityError);
    }
    await writeFile(blob, original.subarray(0, original.length - 1));
    await expect(verifyFile(blob, enc.key, enc.digest, plain.length)).rejects.toThrow(/truncated or altered/);
    await writeFile(blob, Buffer.concat([original, Buffer.alloc(1)]));
    await expect(verifyFile(blob, enc.key, enc.digest, plain.length)).rejects.toThrow(AttachmentIntegrityError);
    await writeFile(blob, original);
    await expect(verifyFile(blob, randomBytes(64), enc.digest, plain.length)).rejects.toThrow(/MAC/);
    await expect(verifyFile(blob, enc.key, enc.digest, plain.length + 20_000)).rejects.toThrow(AttachmentIntegrityError);
  });

  it("accepts only well-formed pointers", () => {
    const good = { id: "A".repeat(24), key: randomBytes(64).toString("base64"), digest: randomBytes(32).toString("base64"), size: 5, contentType: "image/png" };
    expect(checkPointer(good)).toEqual(good);
    expect(checkPointer({ ...good, width: 10, height: 20, fileName: "a.png", extra: "dropped" })).toEqual({ ...good, width: 10, height: 20, fileName: "a.png" });
    for (const bad of [
      null,
      "x",
      { ...good, id: "../../x" },
      { ...good, key: randomBytes(32).toString("base64") },
      { ...good, digest: "not base64!" },
      { ...good, size: -1 },
      { ...good, size: 1.5 },
      { ...good, contentType: "x".repeat(200) },
      { ...good, width: -3 },
      { ...good, fileName: "f".repeat(300) },
      { ...good, thumbnail: randomBytes(20_000).toString("base64") },
    ]) {
      expect(checkPointer(bad)).toBeNull();
    }
  });
});
