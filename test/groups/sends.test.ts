// Batched group sends (src/groups/sends.ts): application messages sent together are numbered and stored in one
// statement. Concurrent sends to one group get consecutive, distinct sequence numbers in the order of their
// answers' numbers, each stored with its own bytes; refused messages in the same batch (framed for another group,
// from a non-member) get their own error and take no number from the others.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplicationMessage, encodeMlsMessage } from "ts-mls";
import { PendingGroupEventsDocument, SendGroupMessageDocument } from "../../src/client/generated/graphql.ts";
import { b64 } from "../../src/client/base64.ts";
import { mlsSuite } from "../../src/client/mls/key-packages.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

describe("batched group sends", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember, outsider: MlsMember;

  beforeAll(async () => {
    server = await startServer();
    [a, b, outsider] = await Promise.all([mlsMember(server.url, 3), mlsMember(server.url, 3), mlsMember(server.url, 0)]);
  }, 180_000);
  afterAll(() => server?.close());

  /** `n` application messages of a's in the group, encrypted in order ahead of sending. */
  async function encrypted(groupId: string, n: number, prefix: string): Promise<string[]> {
    const cs = await mlsSuite();
    let state = (await a.mls.state(groupId))!;
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const { newState, privateMessage } = await createApplicationMessage(state, text(`${prefix}${i}`), cs);
      state = newState;
      out.push(b64(encodeMlsMessage({ privateMessage, wireformat: "mls_private_message", version: "mls10" })));
    }
    return out;
  }

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => "stored",
      (e) => (e instanceof GraphQLRequestError ? e.code : String(e)),
    );

  it("forty sends at once with refused ones among them: the stored get distinct consecutive numbers and their own bytes", async () => {
    const groupId = await a.mls.createGroup({ name: "sends", memberUserIds: [b.userId] });
    const otherId = await a.mls.createGroup({ name: "other" });
    const good = await encrypted(groupId, 40, "m");
    const [elsewhere] = await encrypted(otherId, 1, "x");
    const before = (await server.app.prisma.group.findUniqueOrThrow({ where: { id: groupId } })).lastSeq;

    const sends = good.map((message) => a.http.request(SendGroupMessageDocument, { groupId, message }));
    const wrongFraming = a.http.request(SendGroupMessageDocument, { groupId, message: elsewhere });
    const notMember = outsider.http.request(SendGroupMessageDocument, { groupId, message: good[0] });
    const [answers, wrong, stranger] = await Promise.all([Promise.all(sends), codeOf(wrongFraming), codeOf(notMember)]);
    expect(wrong).toBe("BAD_USER_INPUT");
    expect(stranger).toBe("NOT_FOUND");

    const seqs = answers.map((r) => Number(r.sendGroupMessage.messageId.split(":").pop()));
    expect(new Set(seqs).size).toBe(40);
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => Number(before) + 1 + i));
    const after = (await server.app.prisma.group.findUniqueOrThrow({ where: { id: groupId } })).lastSeq;
    expect(after - before).toBe(40n);

    // Each number holds the bytes its answer was for.
    const { pendingGroupEvents } = await b.http.request(PendingGroupEventsDocument, { groupId, first: 100 });
    const bySeq = new Map(pendingGroupEvents.map((e) => [e.seq, e.message]));
    seqs.forEach((seq, i) => expect(bySeq.get(seq)).toBe(good[i]));
  });
});
