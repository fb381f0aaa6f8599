// Attachments through the SDK on both blob stores: a 50 MiB file whose upload is cut at about half and resumes,
// sent as a message and downloaded byte-equal on the recipient's two devices; afterwards no plaintext and no key in
// any stored blob or database column; a flipped byte or a cut-off blob in the store is refused, nothing written.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, stat, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AttachmentIntegrityError, VignetteClient, type AttachmentPointer, type ReceivedMessage } from "vignette-messaging/client";
import { blobSize } from "../../src/client/attachments/crypto.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startAttachmentServer, STORES, type AttachmentServer } from "../helpers/attachments.ts";
import { startCutProxy } from "../helpers/cut-proxy.ts";
import { scanDatabase } from "../helpers/scan.ts";
import { filesContaining } from "../helpers/s3.ts";
import { record, removeTempDirs, tempDir, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

const BIG = 50 * 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe.each(STORES)("SDK attachments on the %s store", (store) => {
  let server: AttachmentServer;
  let alice: VignetteClient, bob: VignetteClient, bob2: VignetteClient;
  let rb: Recorded, rb2: Recorded;
  const clients: VignetteClient[] = [];
  const pointers: AttachmentPointer[] = [];
  const plaintextSamples: Uint8Array[] = [];
  let bigSha = "";

  beforeAll(async () => {
    server = await startAttachmentServer(store);
    const open = async (c: VignetteClient) => (clients.push(c), c);
    alice = await open(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") }));
    bob = await open(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("bob") }));
    const { token } = await bob.createLinkToken();
    bob2 = await open(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token }));
    rb = record(bob);
    rb2 = record(bob2);
    await bob.start();
    await bob2.start();
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  const received = (r: Recorded, id: string) => waitFor(() => r.messages.find((m) => m.messageId === id), "the attachment message");

  it("uploads 50 MiB through a connection cut at about half, resumes, and both recipient devices download it byte-equal", async () => {
    const dir = await tempDir();
    const file = path.join(dir, "big.bin");
    const plain = randomBytes(BIG);
    bigSha = sha(plain);
    await writeFile(file, plain);
    for (const at of [0, BIG / 2, BIG - 64]) plaintextSamples.push(plain.subarray(at, at + 64));

    // Alice's client goes through a proxy that drops the connection after ~25 MiB of the upload.
    const proxy = await startCutProxy(server.app.port, BIG / 2);
    const viaProxy = await VignetteClient.open(alice.directory.dir);
    (viaProxy.http as { url: string }).url = proxy.url(server.url);
    const progress: number[] = [];
    try {
      const pointer = await viaProxy.attachments.upload(file, {
        contentType: "application/octet-stream",
        fileName: "big.bin",
        onProgress: (p) => progress.push(p.bytesSent),
      });
      expect(proxy.cuts).toBe(1);
      // Resumed, not restarted: the proxy carried the blob about once, not once and a half.
      expect(proxy.forwarded).toBeLessThan(blobSize(BIG) * 1.35);
      expect(progress.at(-1)).toBe(blobSize(BIG));
      expect(pointer.size).toBe(BIG);
      pointers.push(pointer);

      const sent = await alice.send(bob.username!, { kind: "file", attachment: pointer, caption: "the big one" });
      const outDir = await tempDir();
      for (const [r, c] of [[rb, bob], [rb2, bob2]] as const) {
        const m: ReceivedMessage = await received(r, sent.messageId);
        expect(m.body.kind).toBe("file");
        if (m.body.kind !== "file") return;
        expect(m.body.caption).toBe("the big one");
        const to = path.join(outDir, `${c.deviceId}-${c.userId}.bin`);
        expect(await c.attachments.download(m.body.attachment, { to })).toBe(to);
        expect((await stat(to)).size).toBe(BIG);
        expect(sha(await readFile(to))).toBe(sha(plain));
      }
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("a download cut at about half resumes with Range and still verifies", async () => {
    const proxy = await startCutProxy(server.app.port, BIG / 2, "down");
    const viaProxy = await VignetteClient.open(bob.directory.dir);
    (viaProxy.http as { url: string }).url = proxy.url(server.url);
    try {
      const to = path.join(await tempDir(), "resumed.bin");
      await viaProxy.attachments.download(pointers[0], { to });
      expect(proxy.cuts).toBe(1);
      expect(proxy.forwarded).toBeLessThan(blobSize(BIG) * 1.2);
      expect((await stat(to)).size).toBe(BIG);
      expect(sha(await readFile(to))).toBe(bigSha);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("sends image, video and voice kinds with their metadata, bytes in and bytes out", async () => {
    const image = Buffer.from("PNG?".repeat(3000) + "a very recognisable plaintext sentence for the scan");
    plaintextSamples.push(image.subarray(image.length - 40));
    const thumb = randomBytes(900);
    const a = await alice.attachments.upload(image, { contentType: "image/png", fileName: "cat.png", width: 640, height: 480, thumbnail: thumb });
    pointers.push(a);
    const v = await alice.attachments.upload(randomBytes(10_000), { contentType: "video/mp4", width: 1280, height: 720, durationMs: 3000 });
    const n = await alice.attachments.upload(randomBytes(2_000), { contentType: "audio/ogg", durationMs: 1500 });
    pointers.push(v, n);
    const ids = [
      await alice.send(bob.username!, { kind: "image", attachment: a, caption: "our cat" }),
      await alice.send(bob.username!, { kind: "video", attachment: v }),
      await alice.send(bob.username!, { kind: "voice", attachment: n }),
    ].map((s) => s.messageId);
    const [mi, mv, mn] = await Promise.all(ids.map((id) => received(rb, id)));
    expect(mi.body).toMatchObject({ kind: "image", caption: "our cat", attachment: { contentType: "image/png", fileName: "cat.png", width: 640, height: 480 } });
    expect(mv.body).toMatchObject({ kind: "video", attachment: { width: 1280, height: 720, durationMs: 3000 } });
    expect(mn.body).toMatchObject({ kind: "voice", attachment: { durationMs: 1500 } });
    if (mi.body.kind !== "image") return;
    expect(Buffer.from(mi.body.attachment.thumbnail!, "base64").equals(thumb)).toBe(true);
    expect(Buffer.from(await bob.attachments.download(mi.body.attachment)).equals(image)).toBe(true);
  });

  it("leaves no plaintext and no key in any stored blob or database column", async () => {
    expect(pointers.length).toBeGreaterThan(0);
    const keys = pointers.map((p) => Buffer.from(p.key, "base64"));
    const needles = [
      ...plaintextSamples,
      ...keys.flatMap((k) => [k.subarray(0, 32), k.subarray(32), Buffer.from(k.toString("base64")), Buffer.from(k.toString("hex"))]),
    ];
    const files = await server.storedFiles();
    expect(files.length).toBeGreaterThan(0);
    expect(await filesContaining(files, needles)).toEqual([]);
    const scan = await scanDatabase(server, [
      ...plaintextSamples.map((bytes, i) => ({ label: `plaintext ${i}`, bytes })),
      ...keys.map((bytes, i) => ({ label: `key ${i}`, bytes })),
      ...keys.map((k, i) => ({ label: `aes key ${i}`, bytes: k.subarray(0, 32) })),
    ]);
    expect(scan.tables).toContain("attachments");
    expect(scan.found).toEqual([]);
  });

  it("refuses a blob with one flipped byte, or cut short, and writes nothing", async () => {
    const plain = randomBytes(300_000);
    const p = await alice.attachments.upload(plain, { contentType: "application/octet-stream" });
    const blob = await blobFile(server, p.id);
    const original = await readFile(blob);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)] ^= 0x01;
    await writeFile(blob, flipped);
    const to = path.join(await tempDir(), "out.bin");
    await expect(bob.attachments.download(p, { to })).rejects.toThrow(AttachmentIntegrityError);
    expect(existsSync(to)).toBe(false);
    await expect(bob.attachments.download(p)).rejects.toThrow(/digest does not match/);

    await writeFile(blob, original);
    expect(Buffer.from(await bob.attachments.download(p)).equals(plain)).toBe(true);
    await truncate(blob, original.length - 1000);
    await expect(bob.attachments.download(p, { to })).rejects.toThrow(AttachmentIntegrityError);
    expect(existsSync(to)).toBe(false);
    // A pointer whose digest was swapped for another's: refused too.
    await writeFile(blob, original);
    const other = await alice.attachments.upload(randomBytes(1000), { contentType: "application/octet-stream" });
    await expect(bob.attachments.download({ ...p, digest: other.digest })).rejects.toThrow(AttachmentIntegrityError);
  });
});

/** The file holding a completed blob: the fs store's file, or s3rver's object file. */
async function blobFile(server: AttachmentServer, id: string): Promise<string> {
  const files = await server.storedFiles();
  const hit = files.filter((f) => (server.store === "fs" ? path.basename(f) === id : f.includes(id) && /object$/.test(f)));
  if (hit.length !== 1) throw new Error(`expected one stored file for the blob, found ${JSON.stringify(hit)} among ${files.length}`);
  return hit[0];
}
