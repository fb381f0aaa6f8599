// Headless Debian Chromium for tests, through playwright-core (no browser download: /usr/bin/chromium).
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // WebRTC on a machine whose only network is loopback: let ICE use 127.0.0.1 (our TURN server's address).
      "--allow-loopback-in-peer-connection",
    ],
    timeout: 60_000,
  });
}
