// Headless Chromium for the WebRTC tests: the shared browser settings (test/helpers/browser.ts) plus what WebRTC on
// a loopback-only machine needs.
import { chromium, type Browser } from "playwright-core";
import { CHROMIUM_PATH, chromiumArgs } from "./browser.ts";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // Let ICE use 127.0.0.1, the address of our TURN server and its relays.
    args: [...chromiumArgs, "--allow-loopback-in-peer-connection"],
    timeout: 60_000,
  });
}
