// A receiving client process killed with SIGKILL while the app handles a message: the message is not lost (it was
// never acknowledged) and, once the account is reopened, the app gets it exactly once more, from the plaintext the
// SDK saved before handing it over (the Signal message key itself was already spent by the first decryption).
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, texts } from "../helpers/sdk.ts";
import { sleep, waitFor } from "../helpers/wait.ts";

describe("receiving across a crash", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
    await removeTempDirs();
  });

  it("a client killed inside the message handler gets that message again, once, after restart", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bobDir = await tempDir();
    const bob = await VignetteClient.register({ server: server.url, dir: bobDir, username: uniqueUsername("bob") });
    await bob.close();

    // Bob's app in its own process: prints what it got, then hangs in the handler until killed.
    const app = `
      const { VignetteClient } = await import(${JSON.stringify(path.resolve("src/client/index.ts"))});
      const c = await VignetteClient.open(${JSON.stringify(bobDir)});
      c.on("message", async (m) => { process.stdout.write("got " + m.body.text + "\\n"); await new Promise(() => {}); });
      await c.start();
      process.stdout.write("started\\n");`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", app], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise((r) => child.once("exit", r));
    try {
      await waitFor(() => out.includes("started"), "bob's process started", 45_000);
      await alice.send(bob.userId, "first, handled when the app crashes");
      await waitFor(() => out.includes("got first"), "the app received it", 20_000);
    } finally {
      child.kill("SIGKILL");
      await exited;
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
