// A receiving client process killed with SIGKILL while the app handles a message: the message is not lost (it was
// never acknowledged) and, once the account is reopened, the app gets it exactly once more, from the plaintext the
// SDK saved before handing it over (the Signal message key itself was already spent by the first decryption).
import { describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { record, startHangingApp, tempDir, texts, useSdkServer } from "../helpers/sdk.ts";
import { sleep, waitFor } from "../helpers/wait.ts";

describe("receiving across a crash", () => {
  const server = useSdkServer();

  it("a client killed inside the message handler gets that message again, once, after restart", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bobDir = await tempDir();
    const bob = await VignetteClient.register({ server: server.url, dir: bobDir, username: uniqueUsername("bob") });
    await bob.close();

    // Bob's app in its own process: prints what it got, then hangs in the handler until killed.
    const app = await startHangingApp(bobDir, "message", '"got " + e.body.text');
    try {
      await alice.send(bob.userId, "first, handled when the app crashes");
      await app.printed("got first", "the app received it");
    } finally {
      await app.kill();
    }

    await alice.send(bob.userId, "second, after the crash");
    const back = await VignetteClient.open(bobDir);
    const got = record(back);
    try {
      await back.start();
      await waitFor(() => got.messages.length >= 2, "both messages after restart");
      await sleep(300);
      expect(texts(got)).toEqual(["first, handled when the app crashes", "second, after the crash"]);
      expect(got.events.undecryptable ?? []).toEqual([]);
    } finally {
      await back.close();
      await alice.close();
    }
  });
});
