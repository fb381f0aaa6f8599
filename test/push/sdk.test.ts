// The SDK's push surface as an app uses it: subscribe with pushConfig's key, get woken while away, then connect and
// read the message the push did not carry (what the README's service worker does), and unregister.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient, VignetteError } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { eventually } from "../helpers/wait.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, texts } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { makeCert, pushEnv, startPushService, Subscriber, verifyVapid, type PushServiceHandle } from "./fake-browser.ts";

describe("client.push", () => {
  let server: TestServer;
  let service: PushServiceHandle;
  beforeAll(async () => {
    const cert = makeCert();
    service = await startPushService(cert);
    server = await startServer(pushEnv(cert));
  });
  afterAll(async () => {
    await server?.close();
    await service?.close();
    await removeTempDirs();
  });

  it("register(subscription) -> woken while away -> start() drains the queue -> unregister()", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const bob = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("bob") });
    const { vapidPublicKey } = await bob.push.config();
    expect(vapidPublicKey).toMatch(/^[A-Za-z0-9_-]{87}$/);
    // What PushManager.subscribe({ applicationServerKey: vapidPublicKey }) returns, as toJSON() shows it.
    const browser = new Subscriber();
    await bob.push.register({ endpoint: service.endpoint("bob"), keys: browser.keys() });

    await alice.send(bob.username!, "dinner at eight");
    const [push] = await eventually(() => {
      expect(service.accepted("bob")).toHaveLength(1);
      return service.accepted("bob");
    });
    verifyVapid(push.headers.authorization, vapidPublicKey!, service.origin);
    expect(JSON.parse(browser.decrypt(push.body))).toEqual({ kind: "wake" });

    // The wake-up handler: connect, drain the queue, show what arrived.
    const got = record(bob);
    await bob.start();
    await waitFor(() => texts(got).includes("dinner at eight"), "the message behind the wake-up");

    expect(await bob.push.unregister()).toBe(true);
    await expect(bob.push.register({ endpoint: "https://example.com/x", keys: browser.keys() })).rejects.toMatchObject({
      code: "BAD_USER_INPUT",
    } satisfies Partial<VignetteError>);
    await alice.close();
    await bob.close();
  });
});
