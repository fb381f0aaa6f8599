// The server side of attachments over raw HTTP, on both blob stores: grants, tus HEAD/PATCH, ranged downloads, and
// every refusal (no token, another device, over size, over quota, bad tus headers) answered with a code and with
// nothing stored.
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateAttachmentUploadDocument } from "../../src/client/generated/graphql.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { origin, startAttachmentServer, STORES, type AttachmentServer } from "../helpers/attachments.ts";

const grant = (d: TestDevice, size: number) =>
  d.http.request(CreateAttachmentUploadDocument, { input: { size, contentType: "application/octet-stream" } }).then((r) => r.createAttachmentUpload);

function tus(server: AttachmentServer, url: string, token: string | null, init: { method: string; headers?: Record<string, string>; body?: Uint8Array }) {
  return fetch(origin(server) + url, {
    method: init.method,
    headers: { "tus-resumable": "1.0.0", ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
    body: init.body as BodyInit | undefined,
  });
}

const patch = (s: AttachmentServer, url: string, token: string | null, offset: number, body: Uint8Array, extra: Record<string, string> = {}) =>
  tus(s, url, token, {
    method: "PATCH",
    headers: { "content-type": "application/offset+octet-stream", "upload-offset": String(offset), ...extra },
    body,
  });

async function code(res: Response) {
  const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
  return body.errors[0].extensions.code;
}

const MAX = 8 * 1024 * 1024;

describe.each(STORES)("attachments over HTTP on the %s store", (store) => {
  let server: AttachmentServer;
  let alice: TestDevice;
  let bob: TestDevice;

  beforeAll(async () => {
    server = await startAttachmentServer(store, {
      MAX_ATTACHMENT_BYTES: String(MAX),
      ATTACHMENT_DAILY_UPLOADS: "8",
      ATTACHMENT_DAILY_BYTES: String(3 * MAX),
    });
    alice = await registerDevice(server.url);
    bob = await registerDevice(server.url);
  });
  afterAll(() => server?.close());

  it("uploads in two PATCHes with a HEAD between, and serves the blob whole and by range to another device", async () => {
    const blob = randomBytes(6 * 1024 * 1024 + 123);
    const g = await grant(alice, blob.length);
    expect(g.id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(g.uploadUrl).toBe(`/attachments/${g.id}`);
    expect(g.maxBytes).toBe(blob.length);
    expect(new Date(g.expiresAt).getTime()).toBeGreaterThan(Date.now());

    let head = await tus(server, g.uploadUrl, alice.token, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe("0");
    expect(head.headers.get("upload-length")).toBe(String(blob.length));

    const half = 3 * 1024 * 1024 + 7;
    let res = await patch(server, g.uploadUrl, alice.token, 0, blob.subarray(0, half));
    expect(res.status).toBe(204);
    expect(res.headers.get("upload-offset")).toBe(String(half));
    // Not downloadable before it is complete.
    expect((await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${bob.token}` } })).status).toBe(404);

    head = await tus(server, g.uploadUrl, alice.token, { method: "HEAD" });
    expect(head.headers.get("upload-offset")).toBe(String(half));
    // A PATCH at the wrong offset changes nothing.
    res = await patch(server, g.uploadUrl, alice.token, 0, blob.subarray(0, 10));
    expect(res.status).toBe(409);
    res = await patch(server, g.uploadUrl, alice.token, half, blob.subarray(half));
    expect(res.status).toBe(204);
    expect(res.headers.get("upload-offset")).toBe(String(blob.length));

    const get = await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${bob.token}` } });
    expect(get.status).toBe(200);
    expect(get.headers.get("accept-ranges")).toBe("bytes");
    expect(Buffer.from(await get.arrayBuffer()).equals(blob)).toBe(true);

    const ranged = await fetch(origin(server) + g.uploadUrl, {
      headers: { authorization: `Bearer ${bob.token}`, range: "bytes=1000-1999999" },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 1000-1999999/${blob.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(1000, 2_000_000))).toBe(true);
    const suffix = await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${bob.token}`, range: "bytes=-5" } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(blob.subarray(-5))).toBe(true);
    const beyond = await fetch(origin(server) + g.uploadUrl, {
      headers: { authorization: `Bearer ${bob.token}`, range: `bytes=${blob.length}-` },
    });
    expect(beyond.status).toBe(416);
    const h = await fetch(origin(server) + g.uploadUrl, { method: "HEAD", headers: { authorization: `Bearer ${bob.token}` } });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String(blob.length));

    // Complete: no more writes, and the uploader is no longer recorded against it.
    expect((await patch(server, g.uploadUrl, alice.token, blob.length, blob.subarray(0, 1))).status).toBe(409);
    const row = await server.app.prisma.attachment.findUnique({ where: { id: g.id } });
    expect(row?.completedAt).toBeTruthy();
    expect(row?.uploaderUserId).toBeNull();
    expect(row?.uploaderDeviceId).toBeNull();
  });

  it("refuses upload, download and HEAD without a valid token", async () => {
    const g = await grant(alice, 1000);
    const stranger = [null, "not-a-token", "x".repeat(64)];
    for (const token of stranger) {
      const p = await patch(server, g.uploadUrl, token, 0, randomBytes(1000));
      expect(p.status).toBe(401);
      expect(await code(p)).toBe("UNAUTHENTICATED");
      for (const method of ["GET", "HEAD"]) {
        const r = await tus(server, g.uploadUrl, token, { method });
        expect(r.status).toBe(401);
      }
    }
    const done = await patch(server, g.uploadUrl, alice.token, 0, randomBytes(1000));
    expect(done.status).toBe(204);
    for (const method of ["GET", "HEAD"]) {
      expect((await fetch(origin(server) + g.uploadUrl, { method })).status).toBe(401);
    }
  });

  it("lets only the device it was granted to write, and only to granted ids", async () => {
    const g = await grant(alice, 2000);
    const other = await patch(server, g.uploadUrl, bob.token, 0, randomBytes(2000));
    expect(other.status).toBe(403);
    expect(await code(other)).toBe("FORBIDDEN");
    const made = await tus(server, "/attachments/", alice.token, {
      method: "POST",
      headers: { "upload-length": "100" },
    });
    expect([404, 405]).toContain(made.status);
    const unknown = await patch(server, "/attachments/AAAAAAAAAAAAAAAAAAAAAAAA", alice.token, 0, randomBytes(10));
    expect(unknown.status).toBe(404);
    expect(await code(unknown)).toBe("NOT_FOUND");
    const traversal = await patch(server, "/attachments/..%2F..%2Fetc", alice.token, 0, randomBytes(10));
    expect(traversal.status).toBe(404);
    const head = await tus(server, g.uploadUrl, alice.token, { method: "HEAD" });
    expect(head.headers.get("upload-offset")).toBe("0");
  });

  it("refuses over-size and over-quota grants with a code, and bytes past the grant, storing nothing", async () => {
    const before = await server.storedFiles();
    const big = await grant(alice, MAX + 1).catch((e: GraphQLRequestError) => e);
    expect(big).toBeInstanceOf(GraphQLRequestError);
    expect((big as GraphQLRequestError).code).toBe("LIMIT_EXCEEDED");
    const zero = await grant(alice, 0).catch((e: GraphQLRequestError) => e);
    expect((zero as GraphQLRequestError).code).toBe("BAD_USER_INPUT");

    // Bob's day: 3 * MAX bytes. Two grants of MAX fit, a third of MAX + the small one do not.
    const fresh = await registerDevice(server.url);
    await grant(fresh, MAX);
    await grant(fresh, MAX);
    await grant(fresh, MAX - 10);
    const over = await grant(fresh, 11).catch((e: GraphQLRequestError) => e);
    expect((over as GraphQLRequestError).code).toBe("LIMIT_EXCEEDED");
    const rows = await server.app.prisma.attachment.count({ where: { uploaderUserId: fresh.userId } });
    expect(rows).toBe(3);

    // Count quota: 8 a day.
    const counted = await registerDevice(server.url);
    for (let i = 0; i < 8; i++) await grant(counted, 10);
    expect(((await grant(counted, 10).catch((e) => e)) as GraphQLRequestError).code).toBe("LIMIT_EXCEEDED");

    // Past the granted size: refused from Content-Length before a byte is written.
    const g = await grant(alice, 100);
    const past = await patch(server, g.uploadUrl, alice.token, 0, randomBytes(101));
    expect(past.status).toBe(413);
    expect(await code(past)).toBe("PAYLOAD_TOO_LARGE");
    expect((await tus(server, g.uploadUrl, alice.token, { method: "HEAD" })).headers.get("upload-offset")).toBe("0");

    // Bad tus headers: missing Tus-Resumable, wrong content type, no offset, a malformed offset.
    const noTus = await fetch(origin(server) + g.uploadUrl, {
      method: "PATCH",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/offset+octet-stream", "upload-offset": "0" },
      body: randomBytes(50),
    });
    expect(noTus.status).toBe(412);
    expect(await code(noTus)).toBe("BAD_REQUEST");
    const badType = await patch(server, g.uploadUrl, alice.token, 0, randomBytes(50), { "content-type": "text/plain" });
    expect(badType.status).toBe(415);
    expect(await code(badType)).toBe("BAD_REQUEST");
    const noOffset = await tus(server, g.uploadUrl, alice.token, {
      method: "PATCH",
      headers: { "content-type": "application/offset+octet-stream" },
      body: randomBytes(50),
    });
    expect(noOffset.status).toBe(400);
    expect(await code(noOffset)).toBe("BAD_REQUEST");
    const badOffset = await patch(server, g.uploadUrl, alice.token, 0, randomBytes(50), { "upload-offset": "-4" });
    expect(badOffset.status).toBe(400);
    expect(await code(badOffset)).toBe("BAD_REQUEST");
    expect((await tus(server, g.uploadUrl, alice.token, { method: "HEAD" })).headers.get("upload-offset")).toBe("0");

    // Nothing of all that reached the blob store (the fs store keeps an empty file per open grant).
    const after = await server.storedFiles();
    for (const f of after.filter((f) => !before.includes(f))) {
      if (f.endsWith(".json")) continue;
      expect((await stat(f)).size, f).toBe(0);
    }
  });

  it("deletes a blob when its retention ends, and an upload never completed, from the store and the database", async () => {
    const short = await startAttachmentServer(store, { ATTACHMENT_RETENTION_SECONDS: "1", ATTACHMENT_UPLOAD_TTL_SECONDS: "1", SWEEP_INTERVAL_MS: "200" });
    try {
      const d = await registerDevice(short.url);
      const blob = randomBytes(70_000);
      const g = await grant(d, blob.length);
      expect((await patch(short, g.uploadUrl, d.token, 0, blob)).status).toBe(204);
      const abandoned = await grant(d, 5000);
      expect((await patch(short, abandoned.uploadUrl, d.token, 0, blob.subarray(0, 1000))).status).toBe(204);
      const holding = async () => {
        const files = await short.storedFiles();
        const found = [];
        for (const f of files) if ((await readFile(f)).indexOf(blob.subarray(0, 1000)) >= 0) found.push(f);
        return found;
      };
      expect((await holding()).length).toBeGreaterThan(0);
      const deadline = Date.now() + 60_000;
      while ((await short.app.prisma.attachment.count()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await short.app.prisma.attachment.count()).toBe(0);
      expect(await holding()).toEqual([]);
      const gone = await fetch(origin(short) + g.uploadUrl, { headers: { authorization: `Bearer ${d.token}` } });
      expect(gone.status).toBe(404);
      expect(await code(gone)).toBe("NOT_FOUND");
    } finally {
      await short.close();
    }
  });
});

describe("attachment rate limits", () => {
  it("counts grants and /attachments/ requests in the attachments family, refused with RATE_LIMITED", async () => {
    const server = await startAttachmentServer("fs", {
      RATE_LIMITS: "true",
      RATE_LIMIT_ATTACHMENTS: "4/1m",
      RATE_LIMIT_ATTACHMENTS_IP: "off",
      RATE_LIMIT_REGISTRATIONS_IP: "off",
    });
    try {
      const d = await registerDevice(server.url);
      const g = await grant(d, 100);
      expect((await patch(server, g.uploadUrl, d.token, 0, randomBytes(100))).status).toBe(204);
      expect((await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${d.token}` } })).status).toBe(200);
      expect((await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${d.token}` } })).status).toBe(200);
      const limited = await fetch(origin(server) + g.uploadUrl, { headers: { authorization: `Bearer ${d.token}` } });
      expect(limited.status).toBe(429);
      expect(await code(limited)).toBe("RATE_LIMITED");
      const again = await grant(d, 100).catch((e: GraphQLRequestError) => e);
      expect((again as GraphQLRequestError).code).toBe("RATE_LIMITED");
    } finally {
      await server.close();
    }
  });
});
