// Two real `vignette` processes and groups: one creates a group and sends, the other listens and sees the group's
// name with each message, then chats into the group with `chat --group`.
import { describe, expect, it } from "vitest";
import { uniqueUsername } from "../helpers/accounts.ts";
import { finished, useCliServer, vignette } from "../helpers/cli.ts";
import { tempDir } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { storageIndependentDone } from "../helpers/passes.ts";

describe.skipIf(storageIndependentDone)("vignette group commands", () => {
  const { server, running } = useCliServer();

  it("group create, send, listen, list, members, chat --group", { timeout: 300_000 }, async () => {
    const [aliceDir, bobDir] = [await tempDir("vg-cli-"), await tempDir("vg-cli-")];
    const [alice, bob] = [uniqueUsername("alice"), uniqueUsername("bob")];
    for (const [dir, name] of [
      [aliceDir, alice],
      [bobDir, bob],
    ]) {
      const r = await finished(["--server", server.url, "--dir", dir, "register", name]);
      expect(r.code, r.stderr).toBe(0);
    }
    const listen = vignette(["--dir", bobDir, "listen"]);
    running.push(listen);
    await waitFor(() => listen.stdout.includes("listening as"), "bob listening", 45_000);

    const created = await finished(["--dir", aliceDir, "group", "create", "hikers", bob]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created group hikers \([0-9a-f-]{36}\) with 2 members$/m);
    await waitFor(() => listen.stdout.includes("(#hikers: joined)"), "bob's listen sees the join", 45_000);

    const sent = await finished(["--dir", aliceDir, "group", "send", "hikers", "summit", "at", "noon"]);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor(() => listen.stdout.includes(`#hikers ${alice}: summit at noon`), "bob's listen prints it with the group name", 45_000);
    listen.child.kill("SIGTERM");
    expect(await listen.exited).toBe(0);

    const list = await finished(["--dir", bobDir, "group", "list"]);
    expect(list.stdout).toMatch(/^[0-9a-f-]{36}\thikers\t2 members$/m);
    const members = await finished(["--dir", bobDir, "group", "members", "hikers"]);
    expect(members.stdout).toBe(`${alice}\tadmin\n${bob}\tmember\n`);

    const chat = vignette(["--dir", bobDir, "chat", "--group", "hikers"]);
    running.push(chat);
    await waitFor(() => chat.stdout.includes("chatting in #hikers"), "bob's group chat ready", 45_000);
    chat.child.stdin!.write("bringing snacks\n");
    await waitFor(() => /\(sent g:[0-9a-f-]{36}:\d+\)/.test(chat.stdout), "the chat sent the typed line", 45_000);
    const back = await finished(["--dir", aliceDir, "group", "send", "hikers", "great"]);
    expect(back.code, back.stderr).toBe(0);
    await waitFor(() => chat.stdout.includes(`#hikers ${alice}: great`), "the chat shows alice's message", 45_000);
    chat.child.stdin!.write("/quit\n");
    expect(await chat.exited).toBe(0);

    const aliceListen = vignette(["--dir", aliceDir, "listen"]);
    running.push(aliceListen);
    await waitFor(() => aliceListen.stdout.includes(`#hikers ${bob}: bringing snacks`), "alice catches up on bob's line", 45_000);
    aliceListen.child.kill("SIGTERM");
    await aliceListen.exited;

    const unknown = await finished(["--dir", aliceDir, "group", "send", "nosuchgroup", "hi"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("error: no group nosuchgroup (NOT_FOUND)\n");
  });
});
