// Every batch of sends moves its pairs' conversation rows (last_message_at), locking them in a fixed order
// (src/messages/store.ts, writeSendsStatement). Concurrent batches over overlapping pairs, in every order, must all be
// stored (no deadlock, no lost update), and each conversation must end at its newest message's time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { opaqueInput } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

describe("a conversation's last message time under concurrent sends", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  it("ends at each pair's newest message, with every send of overlapping concurrent batches stored", async () => {
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
    // Rounds of all pairs' sends at once, each round in another order, so batches lock overlapping rows.
    for (let round = 0; round < 3; round++) {
      const order = round % 2 ? [...inputs].reverse() : inputs;
      const answers = await Promise.all(
        order.map(({ from, input }) => from.http.request(SendMessageDocument, { input: { ...input, clientMessageId: `${input.clientMessageId}-${round}` } })),
      );
      expect(answers.every((a) => a.sendMessage.messageId)).toBe(true);
    }

    const p = server.app.prisma;
    for (const [a, b] of pairs) {
      const [userA, userB] = [a.userId, b.userId].sort();
      const conversation = await p.conversation.findFirstOrThrow({ where: { userA, userB } });
      const messages = await p.message.findMany({ where: { conversationId: conversation.id }, orderBy: { createdAt: "asc" } });
      expect(messages).toHaveLength(4 * 3);
      // Not created_at against the first message: when batches race to create a pair's conversation, the row is the
      // first inserter's, whose time may be a little after a racing batch's message (it took its time earlier).
      expect(conversation.lastMessageAt).toEqual(messages.at(-1)!.createdAt);
    }
  });
});
