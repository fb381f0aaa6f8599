// The re-read ordering of live streams (src/realtime/reread.ts) with a real Feed: events wait for the reads of the
// notices before them, back-to-back notices make one read, and a failed read ends the stream instead of leaving it
// on the old state.
import { describe, expect, it } from "vitest";
import { Feed } from "../../src/live/feed.ts";
import { rereader } from "../../src/realtime/reread.ts";
import { gate } from "../helpers/wait.ts";

describe("rereader", () => {
  it("an event after a notice is judged by that notice's read; an event before it by the state before", async () => {
    const feed = new Feed<string>(100);
    let allowed = new Set(["a"]);
    const reads: string[] = [];
    const pending = [gate(), gate()];
    let n = 0;
    const r = rereader(feed, async () => {
      const g = pending[n++];
      reads.push(`read${n}`);
      await g?.p;
      allowed = n === 1 ? new Set(["a", "b"]) : new Set(["a"]);
    });
    const event = (who: string) => r.hold(() => allowed.has(who) && feed.push(who));
    event("a"); // no read under way: judged now
    event("b"); // not allowed yet
    void r.run();
    event("b"); // waits for read 1 (allows b), not judged by read 2
    void r.run();
    void r.run(); // back to back with the one before: one read
    event("b"); // waits for read 2 (drops b), not judged by read 1
    event("a"); // waits for read 2 (allows a)
    pending[0].open();
    await new Promise((res) => setTimeout(res, 0));
    pending[1].open();
    await r.run().then(() => {});
    const got: string[] = [];
    feed.push("end");
    for await (const x of feed) {
      if (x === "end") break;
      got.push(x);
    }
    expect(got).toEqual(["a", "b", "a"]);
    expect(reads).toEqual(["read1", "read2", "read3"]); // the last run() above is one more read
  });

  it("a read that fails ends the stream with UNAVAILABLE", async () => {
    const feed = new Feed<string>(10);
    const r = rereader(feed, async () => {
      throw new Error("database gone");
    });
    await r.run();
    await expect(feed.next()).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
