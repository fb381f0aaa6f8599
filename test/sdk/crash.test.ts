// Killed between decryption and acknowledgement: a client process SIGKILLed while the app handles a reaction (its
// ratchet step, plaintext and folded reaction already committed) gets that reaction once more after restart, and
// the stored message shows it once; a text queued behind it arrives too.
import { describe, expect, it } from "vitest";
import { VignetteClient, type ReactionEvent } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { record, startHangingApp, tempDir, texts, useSdkServer } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("a reaction across a crash", () => {
  const server = useSdkServer();

  it("is handed over once more after the restart and folded in once", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bobDir = await tempDir();
    const bob = await VignetteClient.register({ server: server.url, dir: bobDir, username: uniqueUsername("bob") });
    const got = record(bob);
    await bob.start();
    const sent = await alice.send(bob.userId, "react to this");
    await waitFor(() => texts(got).includes("react to this"), "bob has the message");
    await bob.close();

    const app = await startHangingApp(bobDir, "reaction", '"reaction " + e.emoji');
    try {
      await alice.react(sent.messageId, "🔥");
      await app.printed("reaction 🔥", "the app got the reaction");
    } finally {
      await app.kill();
    }
    await alice.send(bob.userId, "after the crash");

    const back = await VignetteClient.open(bobDir);
    const after = record(back);
    const reactions: ReactionEvent[] = [];
    back.on("reaction", (r) => void reactions.push(r));
    try {
      await back.start();
      await waitFor(() => texts(after).includes("after the crash"), "the message queued behind it");
      await new Promise((r) => setTimeout(r, 300));
      expect(reactions.map((r) => r.emoji)).toEqual(["🔥"]);
      expect((await back.store.get(sent.messageId))!.reactions.map((r) => r.emoji)).toEqual(["🔥"]);
      expect(texts(after)).toEqual(["after the crash"]);
      expect(after.events.undecryptable ?? []).toEqual([]);
    } finally {
      await back.close();
      await alice.close();
    }
  });
});
