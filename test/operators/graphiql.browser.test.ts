// GraphiQL in a real Chromium: served from our own assets, a token pasted into the headers, `me`, then a live inbox.
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { eventually, sleep } from "../helpers/wait.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { CHROMIUM_PATH, chromiumArgs, hasChromium } from "../helpers/browser.ts";
import { storageIndependentDone } from "../helpers/passes.ts";

const ARTIFACTS = process.env.CI_ARTIFACTS ?? ".ci/artifacts";

describe.skipIf(!hasChromium() || storageIndependentDone)("GraphiQL in a browser", () => {
  let server: TestServer;
  let browser: Browser;
  let alice: TestDevice;
  let bob: TestDevice;
  const requested: string[] = [];

  beforeAll(async () => {
    server = await startServer();
    [alice, bob] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: chromiumArgs });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Replaces an editor's whole text without Monaco's auto-closing of brackets and quotes. */
  async function replaceEditor(page: Page, editor: ReturnType<Page["locator"]>, text: string) {
    await editor.click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(text);
  }

  it("loads with no request leaving this machine, runs `me` with a pasted token and shows a live envelope", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("request", (r) => requested.push(r.url()));
    page.on("websocket", (ws) => requested.push(ws.url()));
    // A loaded machine can take longer than Playwright's 30 s default to serve GraphiQL's assets.
    await page.goto(server.url, { waitUntil: "networkidle", timeout: 90_000 });

    const editors = page.locator(".graphiql-container .monaco-editor");
    const queryEditor = page.locator(".graphiql-query-editor .monaco-editor");
    const headersEditor = editors.nth(2);
    const result = page.locator(".graphiql-response");
    await queryEditor.waitFor();

    await page.getByText("Headers", { exact: true }).click();
    await replaceEditor(page, headersEditor, JSON.stringify({ authorization: `Bearer ${alice.token}` }));

    await replaceEditor(page, queryEditor, "{ me { userId deviceId } }");
    // Run is a no-op until GraphiQL has the schema: press it until the answer shows.
    await eventually(async () => {
      await page.getByLabel(/Execute query/).click();
      await page.waitForTimeout(1_000);
      expect(await result.innerText()).toContain(alice.userId);
    }, 30_000);

    await replaceEditor(
      page,
      queryEditor,
      "subscription { inbox { __typename ... on EnvelopeEvent { envelope { messageId senderUserId } } } }",
    );
    await page.getByLabel(/Execute query/).click();
    // The subscription is live once the inbox replay is through: keep sending until one shows (a loaded machine can
    // take a while to open the event stream).
    const seen = await eventually(async () => {
      // GraphiQL names the operation to run a moment after the editor changes; a run pressed before that fails in the
      // page ("Cannot infer operation") and is pressed again.
      if ((await result.innerText()).includes("Cannot infer operation")) await page.getByLabel(/Execute query/).click();
      const { messageId } = await sendOpaque(bob, alice.userId, "hello from bob");
      await sleep(500);
      const text = await result.innerText();
      if (!text.includes(bob.userId)) throw new Error("no envelope shown yet");
      return { messageId, text };
    }, 60_000);
    expect(seen.text).toContain("EnvelopeEvent");

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/graphiql.png` });

    const origin = new URL(server.url);
    const elsewhere = requested.filter((u) => {
      const url = new URL(u);
      if (url.protocol === "blob:" || url.protocol === "data:") return false;
      return url.hostname !== origin.hostname;
    });
    expect(requested.length).toBeGreaterThan(0);
    expect(elsewhere).toEqual([]);
  });
});
