// A group member's process killed with SIGKILL inside its groupMessage handler: the event was never acknowledged, and
// after the account is reopened the app gets that message again, exactly once, from the outcome the SDK stored before
// handing it over (the MLS ratchet had already moved past it), followed by what was sent meanwhile.
import { describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { record, startHangingApp, tempDir, useSdkServer } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("group messages across a crash", () => {
  const server = useSdkServer();

  it("a member killed inside the group message handler gets that message once more after restart", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bobDir = await tempDir();
    const bob = await VignetteClient.register({ server: server.url, dir: bobDir, username: uniqueUsername("bob") });
    const joinedRec = record(bob);
    await bob.start();
    const { id: groupId } = await alice.groups.create({ name: "crash", members: [bob.username!] });
    await waitFor(() => (joinedRec.events.groupChanged ?? []).some((e) => e.kind === "joined"), "bob joins");
    await bob.close();

    const app = await startHangingApp(bobDir, "groupMessage", '"got " + e.body.text');
    try {
      await alice.groups.send(groupId, "first, handled when the app crashes");
      await app.printed("got first", "the app received it");
    } finally {
      await app.kill();
    }

    await alice.groups.send(groupId, "second, after the crash");
    const back = await VignetteClient.open(bobDir);
    const got = record(back);
    try {
      await back.start();
      const texts = () => (got.events.groupMessage ?? []).map((m) => (m.body.kind === "text" ? m.body.text : "?"));
      await waitFor(() => texts().length >= 2, "both messages after restart");
      await new Promise((r) => setTimeout(r, 300));
      expect(texts()).toEqual(["first, handled when the app crashes", "second, after the crash"]);
      expect(got.events.error ?? []).toEqual([]);
      // messages() pages newest first.
      expect((await back.messages(groupId)).map((m) => (m.body.kind === "text" ? m.body.text : "?"))).toEqual([
        "second, after the crash",
        "first, handled when the app crashes",
      ]);
    } finally {
      await back.close();
      await alice.close();
    }
  });
});
