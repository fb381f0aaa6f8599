// Debian's Chromium for browser tests (no browser download exists on these machines): where it is and how to start it.
import { existsSync } from "node:fs";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Headless, no sandbox (tests run as root), and none of the background traffic a closed network refuses. */
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** CI installs Chromium; a developer machine without it skips browser tests instead of failing them. */
export function hasChromium(): boolean {
  return existsSync(CHROMIUM_PATH) || process.env.CI === "true";
}
