// Fault injection for the fault tests (test/faults/), never for production: FAILPOINTS names the faults a node
// simulates. Unset (the default) nothing here is installed, so it costs nothing. Each one loses a live event the way
// a real fault would, after the durable write it follows, to prove the streams and sockets recover without it.
import { z } from "zod";
import type { Bus } from "./live/bus.ts";
import { channels } from "./live/channels.ts";

export const FAILPOINTS = [
  /** Every live event that follows a commit (device inbox, group, group-joins channels) is silently dropped. */
  "publish-after-commit",
  /** The revocation event that tells every node to close a deactivated device's sockets is dropped. */
  "revocation-publish",
  /** The process exits (code 86) where it would publish the first event that follows a commit. */
  "crash-after-commit",
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

/** FAILPOINTS: names separated by commas; an unknown name is a configuration error. */
export const failpointList = z
  .string()
  .max(256)
  .default("")
  .transform((v) => v.split(",").map((x) => x.trim()).filter(Boolean))
  .pipe(z.array(z.enum(FAILPOINTS)));

export const CRASH_EXIT_CODE = 86;

// The channels every publish of which follows a committed write (the durability rule): the inbox queues, the
// groups' event logs and group memberships. Presence, typing and the control channel are not among them.
const AFTER_COMMIT = ["device:", "group:", "group-joins:"];

/** The decision for one publish: deliver it, drop it, or crash before it. Pure, for the unit tests. */
export function faultFor(points: ReadonlySet<Failpoint>, channel: string): "deliver" | "drop" | "crash" {
  if (channel === channels.control) return points.has("revocation-publish") ? "drop" : "deliver";
  if (!AFTER_COMMIT.some((p) => channel.startsWith(p))) return "deliver";
  if (points.has("crash-after-commit")) return "crash";
  return points.has("publish-after-commit") ? "drop" : "deliver";
}

/** The bus with the named faults in its publish path; the bus itself when none is named. */
export function withFailpoints(bus: Bus, points: ReadonlySet<Failpoint>, exit: (code: number) => never = process.exit): Bus {
  if (points.size === 0) return bus;
  return {
    ...bus,
    async publish(channel, event) {
      const fault = faultFor(points, channel);
      if (fault === "crash") exit(CRASH_EXIT_CODE);
      if (fault === "deliver") await bus.publish(channel, event);
    },
  };
}
