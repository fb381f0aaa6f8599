// Two server processes on PostgreSQL + Redis + one S3 server (s3rver): an upload begun on node 1 resumes on node 2,
// and a file sent through the SDK from node 1 downloads on node 2. Skipped in embedded mode.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { CreateAttachmentUploadDocument } from "../../src/client/generated/graphql.ts";
import { registerDevice, uniqueUsername } from "../helpers/accounts.ts";
import { createTestDatabase, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { startS3, type TestS3 } from "../helpers/s3.ts";
import { record, removeTempDirs, tempDir } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { baseEnv, busPrefix, spawnNode, type NodeProcess } from "../helpers/server.ts";

const origin = (n: NodeProcess) => `http://127.0.0.1:${n.port}`;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe.skipIf(!usingPostgres || !usingRedis)("attachments across two nodes", () => {
  let db: TestDatabase;
  let s3: TestS3;
  let node1: NodeProcess;
  let node2: NodeProcess;
  const clients: VignetteClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    s3 = await startS3();
    const env = baseEnv(db, { BUS_PREFIX: busPrefix(), ...s3.env });
    node1 = await spawnNode(env);
    node2 = await spawnNode(env);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await Promise.all([node1?.stop(), node2?.stop()]);
    await s3?.close();
    await db?.drop();
    await removeTempDirs();
  });

  it("an upload begun on node 1 resumes on node 2 from the offset node 1 stored, and downloads from node 1", async () => {
    const d = await registerDevice(node1.url);
    const blob = randomBytes(12 * 1024 * 1024 + 99);
    const { createAttachmentUpload: g } = await d.http.request(CreateAttachmentUploadDocument, { input: { size: blob.length } });
    const patch = (node: NodeProcess, offset: number, bytes: Uint8Array) =>
      fetch(origin(node) + g.uploadUrl, {
        method: "PATCH",
        headers: {
          authorization: `Bearer ${d.token}`,
          "tus-resumable": "1.0.0",
          "content-type": "application/offset+octet-stream",
          "upload-offset": String(offset),
        },
        body: bytes as BodyInit,
      });
    const first = 7 * 1024 * 1024 + 3; // one 5 MiB part and a tail held in S3
    expect((await patch(node1, 0, blob.subarray(0, first))).status).toBe(204);
    const head = await fetch(origin(node2) + g.uploadUrl, {
      method: "HEAD",
      headers: { authorization: `Bearer ${d.token}`, "tus-resumable": "1.0.0" },
    });
    expect(head.headers.get("upload-offset")).toBe(String(first));
    const rest = await patch(node2, first, blob.subarray(first));
    expect(rest.status).toBe(204);
    expect(rest.headers.get("upload-offset")).toBe(String(blob.length));
    const got = await fetch(origin(node1) + g.uploadUrl, { headers: { authorization: `Bearer ${d.token}` } });
    expect(sha(new Uint8Array(await got.arrayBuffer()))).toBe(sha(blob));
  });

  it("a file sent with the SDK through node 1 is downloaded through node 2, byte-equal", async () => {
    const alice = await VignetteClient.register({ server: node1.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bob = await VignetteClient.register({ server: node2.url, dir: await tempDir(), username: uniqueUsername("bob") });
    clients.push(alice, bob);
    const rb = record(bob);
    await bob.start();
    const plain = randomBytes(20 * 1024 * 1024 + 17);
    const pointer = await alice.attachments.upload(plain, { contentType: "application/octet-stream", fileName: "x.bin" });
    const sent = await alice.send(bob.username!, { kind: "file", attachment: pointer });
    const m = await waitFor(() => rb.messages.find((x) => x.messageId === sent.messageId), "the message on node 2");
    if (m.body.kind !== "file") throw new Error(`unexpected kind ${m.body.kind}`);
    expect(sha(await bob.attachments.download(m.body.attachment))).toBe(sha(plain));
  });
});
