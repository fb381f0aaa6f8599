// A load process that only holds connections, for bench:connections past what one process may open (every socket is
// a file, and this container caps a process at 20,000). It connects the devices it is given, each with an `inbox`
// subscription, reports how that went, and holds them until its parent goes away.
import { InboxDocument } from "../../src/client/generated/graphql.ts";
import { connectGql, operation, type GqlSocket } from "./gqlws.ts";

export interface HoldOrder {
  url: string;
  tokens: string[];
  sources: string[];
  concurrency: number;
}

export interface HoldReport {
  connected: number;
  failed: number;
}

const held: GqlSocket[] = [];
const inbox = operation(InboxDocument);

process.on("message", async (order: HoldOrder) => {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: order.concurrency }, async () => {
      while (next < order.tokens.length) {
        const i = next++;
        try {
          const s = await connectGql(order.url, order.tokens[i], {
            localAddress: order.sources[i % order.sources.length],
            timeoutMs: 120_000,
          });
          s.subscribe(inbox, () => {});
          held.push(s);
        } catch {
          failed++;
        }
      }
    }),
  );
  process.send!({ connected: held.length, failed } satisfies HoldReport);
});
process.on("disconnect", () => process.exit(0));
