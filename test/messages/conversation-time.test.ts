// A conversation's activity time (lastMessageAt) is its latest message's, read at listing time: no send moves the
// pair's row (src/messages/store.ts, writeSendsStatement and CONVERSATION_ROWS). Concurrent batches over overlapping
// pairs, in every order, must all be stored, each conversation listed at its latest message's time, and the list
// ordered by it; a conversation whose latest message is swept keeps that message's time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConversationsDocument, SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { opaqueInput, sendOpaque } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

describe("a conversation's last message time", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ SWEEP_INTERVAL_MS: "3600000" });
  });
  afterAll(() => server.close());

  const listed = async (d: TestDevice) =>
    (await d.http.request(ConversationsDocument, { first: 50 })).conversations.edges.map((e) => e.node);

  it("is each pair's latest message's, with every send of overlapping concurrent batches stored", async () => {
    const users: TestDevice[] = [];
    for (let i = 0; i < 5; i++) users.push(await registerDevice(server.url));
    const pairs = users.flatMap((a, i) => users.slice(i + 1).map((b) => [a, b] as const));
    const inputs = await Promise.all(
      pairs.flatMap(([a, b]) =>
        [0, 1, 2, 3].map(async (k) => {
          const [from, to] = k % 2 ? [b, a] : [a, b];
          return { from, input: await opaqueInput(from, to.userId, `m${k}`) };
        }),
      ),
    );
    // Rounds of all pairs' sends at once, each round in another order, so batches meet on overlapping pairs.
    for (let round = 0; round < 3; round++) {
      const order = round % 2 ? [...inputs].reverse() : inputs;
      const answers = await Promise.all(
        order.map(({ from, input }) => from.http.request(SendMessageDocument, { input: { ...input, clientMessageId: `${input.clientMessageId}-${round}` } })),
      );
      expect(answers.every((a) => a.sendMessage.messageId)).toBe(true);
    }

    const p = server.app.prisma;
    for (const user of users) {
      const list = await listed(user);
      expect(list).toHaveLength(4);
      const times = list.map((c) => Date.parse(c.lastMessageAt));
      expect(times).toEqual([...times].sort((x, y) => y - x));
      for (const c of list) {
        const messages = await p.message.findMany({ where: { conversationId: c.id }, orderBy: { seq: "desc" } });
        expect(messages).toHaveLength(4 * 3);
        expect(new Date(c.lastMessageAt)).toEqual(messages[0].createdAt);
      }
    }
  });

  it("keeps the time of a latest message that expired and was swept", async () => {
    const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => registerDevice(server.url)));
    await sendOpaque(alice, bob.userId, "old");
    await sendOpaque(alice, carol.userId, "between");
    const brief = await sendOpaque(alice, bob.userId, "vanishes", { expiresInSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await server.app.services.messages.sweep()).toBeGreaterThanOrEqual(1);

    const list = await listed(alice);
    expect(list.map((c) => c.peerUserId)).toEqual([bob.userId, carol.userId]);
    expect(list[0].lastMessageAt).toBe(brief.serverTimestamp);
  });
});
