// Wires the MLS services together and into the device inbox: key packages (a low stock is told to the device
// like low pre-keys) and groups (whose events join every inbox stream and are acknowledged with ackEnvelopes).
import type { ServiceDeps } from "../deps.ts";
import { createGroupsService, type GroupEvents } from "./service.ts";
import type { InboxService } from "../inbox/service.ts";
import { createKeyPackagesService } from "./key-packages.ts";

export function createMlsServices(deps: ServiceDeps, inbox: InboxService, events?: GroupEvents) {
  const keyPackages = createKeyPackagesService(deps, {
    keyPackagesLow: (userId, deviceId, s) =>
      inbox.publish([
        {
          userId,
          deviceId,
          event: { __typename: "KeyPackagesLowEvent", id: null, expiresAt: null, available: s.available, lowWaterMark: s.lowWaterMark },
        },
      ]),
  });
  const groups = createGroupsService(deps, keyPackages, events);
  inbox.addSource("g:", (actor, sink) => groups.follow(actor, sink), groups.ack);
  return { keyPackages, groups };
}
