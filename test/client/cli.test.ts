// Two real `vignette` CLI processes against a real server: register both, one listens, the other sends.
import { stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { uniqueUsername } from "../helpers/accounts.ts";
import { tempDir } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { finished, useCliServer, vignette } from "../helpers/cli.ts";
import { storageIndependentDone } from "../helpers/passes.ts";

describe.skipIf(storageIndependentDone)("vignette CLI", () => {
  const { server, running } = useCliServer();

  // Every step spawns a Node process (tsx + libsignal load): allow for a loaded machine, still bounded.
  it("two CLI processes exchange a message: register, listen, send, chat", { timeout: 240_000 }, async () => {
    const [aliceDir, bobDir] = [await tempDir("vg-cli-"), await tempDir("vg-cli-")];
    const [alice, bob] = [uniqueUsername("alice"), uniqueUsername("bob")];
    const ra = await finished(["--server", server.url, "--dir", aliceDir, "register", alice]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(ra.stdout).toContain(`registered ${alice}`);
    const rb = await finished(["--server", server.url, "--dir", bobDir, "register", bob]);
    expect(rb.code, rb.stderr).toBe(0);
    expect((await stat(path.join(bobDir, "account.db"))).mode & 0o777).toBe(0o600);

    const listen = vignette(["--dir", bobDir, "listen"]);
    running.push(listen);
    await waitFor(() => listen.stdout.includes("listening as"), "bob listening", 45_000);

    const sent = await finished(["--dir", aliceDir, "send", bob, "hello", "from", "the", "cli"]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/^sent [0-9a-f-]{36}$/m);
    await waitFor(() => listen.stdout.includes(`${alice}: hello from the cli`), "bob's listen prints the message", 45_000);
    listen.child.kill("SIGTERM");
    expect(await listen.exited).toBe(0);

    // Interactive chat: Alice types a line on stdin, Bob's listener... here Bob chats back to Alice's chat.
    const chat = vignette(["--dir", aliceDir, "chat", bob]);
    running.push(chat);
    await waitFor(() => chat.stdout.includes("chatting with"), "alice's chat ready", 45_000);
    const reply = await finished(["--dir", bobDir, "send", alice, "reply", "into", "the", "chat"]);
    expect(reply.code, reply.stderr).toBe(0);
    await waitFor(() => chat.stdout.includes(`${bob}: reply into the chat`), "the chat shows bob's reply", 45_000);
    chat.child.stdin!.write("typed in the chat\n");
    await waitFor(() => /\(sent [0-9a-f-]{36}\)/.test(chat.stdout), "the chat sent the typed line", 45_000);
    chat.child.stdin!.write("/quit\n");
    expect(await chat.exited).toBe(0);

    const devices = await finished(["--dir", bobDir, "devices"]);
    expect(devices.stdout).toMatch(/^1\t.*\(this device\)$/m);
  });

  it("prints readable errors without stack traces", { timeout: 240_000 }, async () => {
    const dir = await tempDir("vg-cli-");
    const none = await finished(["--dir", dir, "send", "nobody", "hi"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error: no account in .* register or link first/);

    const reg = await finished(["--server", server.url, "--dir", dir, "register", uniqueUsername("eve")]);
    expect(reg.code, reg.stderr).toBe(0);
    const unknown = await finished(["--dir", dir, "send", "no_such_user_here", "hi"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("error: no user named no_such_user_here (NOT_FOUND)\n");

    const down = await finished(["--server", "http://127.0.0.1:9/graphql", "--dir", await tempDir("vg-cli-"), "register", "someone"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^error: cannot reach the server/);

    const bad = await finished(["--dir", dir, "frobnicate"]);
    expect(bad.code).toBe(1);
    for (const r of [none, unknown, down, bad]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
