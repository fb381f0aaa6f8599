// How the push settings of the environment are read (src/config.ts uses them): the default push hosts and the
// PUSH_GATEWAYS list.
import type { z } from "zod";

// The browsers' push services: Chrome/Edge (FCM), Firefox, Edge on Windows (WNS), Safari.
export const DEFAULT_PUSH_HOSTS = [
  "fcm.googleapis.com",
  "android.googleapis.com",
  "updates.push.services.mozilla.com",
  "*.notify.windows.com",
  "web.push.apple.com",
  "*.push.apple.com",
];

/** PUSH_GATEWAYS: `name=url,name=url` or a JSON object `{"name": "url"}`; http(s) URLs only. */
export function parseGateways(v: string, ctx: z.RefinementCtx): Record<string, string> {
  let entries: [string, unknown][];
  try {
    entries = v.trim().startsWith("{")
      ? Object.entries(JSON.parse(v) as Record<string, unknown>)
      : v.split(",").filter((x) => x.trim()).map((x) => [x.slice(0, x.indexOf("=")).trim(), x.slice(x.indexOf("=") + 1).trim()]);
  } catch {
    ctx.addIssue({ code: "custom", message: "must be name=url,... or a JSON object" });
    return {};
  }
  const out: Record<string, string> = {};
  for (const [name, url] of entries) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || typeof url !== "string" || !/^https?:\/\/[^\s]+$/.test(url)) {
      ctx.addIssue({ code: "custom", message: `gateway "${name}": names are [A-Za-z0-9_.-], URLs http(s)` });
      continue;
    }
    out[name] = url;
  }
  return out;
}
