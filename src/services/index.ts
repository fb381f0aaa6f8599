// Builds every service from the same dependencies. Services call each other only through what is passed here.
import type { ServiceDeps } from "./deps.ts";
import { createDevicesService } from "./devices.ts";
import { createKeysService } from "./keys.ts";
import { createMlsServices } from "./mls.ts";

export function createServices(deps: ServiceDeps) {
  const keys = createKeysService(deps);
  const devices = createDevicesService(deps, keys);
  return { deps, keys, devices, ...createMlsServices(deps) };
}

export type Services = ReturnType<typeof createServices>;
