// Wires the MLS services together: key packages (whose low-count events go to the device's channel) and groups.
import { channels } from "../bus/channels.ts";
import type { ServiceDeps } from "./deps.ts";
import { createGroupsService } from "./groups.ts";
import { createKeyPackagesService } from "./key-packages.ts";

export function createMlsServices(deps: ServiceDeps) {
  const keyPackages = createKeyPackagesService(deps, {
    keyPackagesLow: (userId, deviceId, status) =>
      void deps.bus.publish(channels.device(userId, deviceId), { kind: "keyPackagesLow", status }),
  });
  const groups = createGroupsService(deps, keyPackages);
  return { keyPackages, groups };
}
