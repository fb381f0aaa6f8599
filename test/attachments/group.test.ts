// One upload, one pointer, every member downloads the same blob: a 50 MiB file sent into a real MLS group of three
// (ts-mls), its upload cut at about half and resumed, the pointer inside the group's encrypted content.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Attachments } from "../../src/client/attachments/attachments.ts";
import { decodeContent, encodeContent } from "../../src/client/content.ts";
import { HttpTransport } from "../../src/client/transport.ts";
import { startAttachmentServer, type AttachmentServer } from "../helpers/attachments.ts";
import { startCutProxy } from "../helpers/cut-proxy.ts";
import { LiveMember, mlsMember } from "../helpers/groups.ts";
import { removeTempDirs, tempDir } from "../helpers/sdk.ts";

const BIG = 50 * 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("attachments in a group of three", () => {
  let server: AttachmentServer;
  const live: LiveMember[] = [];
  beforeAll(async () => {
    server = await startAttachmentServer("fs");
  });
  afterAll(async () => {
    for (const m of live) await m.close();
    await server?.close();
    await removeTempDirs();
  });

  it("uploads once (cut at half, resumed) and each of the other two members downloads the same blob byte-equal", async () => {
    const [a, b, c] = [await mlsMember(server.url), await mlsMember(server.url), await mlsMember(server.url)];
    live.push(...[a, b, c].map((m) => new LiveMember(m, server.url)));
    await Promise.all(live.map((m) => m.feed.connected));
    const groupId = await a.mls.createGroup({ name: "three", memberUserIds: [b.userId, c.userId] });

    const plain = randomBytes(BIG);
    const proxy = await startCutProxy(server.app.port, BIG / 2);
    try {
      const uploader = new Attachments(new HttpTransport(proxy.url(server.url), a.token), await tempDir());
      const pointer = await uploader.upload(plain, { contentType: "application/octet-stream", fileName: "big.bin" });
      expect(proxy.cuts).toBe(1);
      await a.mls.send(groupId, encodeContent({ sentAt: Date.now(), body: { kind: "file", attachment: pointer, caption: "for all" } }));
    } finally {
      await proxy.close();
    }
    expect(await server.app.prisma.attachment.count()).toBe(1);
    for (const member of live.slice(1)) {
      const u = await member.waitForUpdate((x) => x.groupId === groupId && !!x.plaintext, 30_000);
      const content = decodeContent(u.plaintext!);
      if (content.body.kind !== "file") throw new Error(`unexpected kind ${content.body.kind}`);
      expect(content.body.caption).toBe("for all");
      const bytes = await new Attachments(member.m.http, await tempDir()).download(content.body.attachment);
      expect(sha(bytes)).toBe(sha(plain));
    }
  });
});
