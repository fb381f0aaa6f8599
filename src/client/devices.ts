// This account's devices: link tokens for new ones, the device list of any user, deactivation. The primary device
// (device 1) manages the others; the server enforces that too, these checks only name the device to use instead.
import { CreateDeviceLinkDocument, DeactivateDeviceDocument, DevicesDocument } from "./generated/graphql.ts";
import { VignetteError, wrap } from "./errors.ts";
import type { Address } from "./messaging.ts";
import type { HttpTransport } from "./transport.ts";

const PRIMARY_DEVICE = 1;

export interface DevicesDeps {
  self: Address;
  http: HttpTransport;
  /** The sender's cached device list of this user is stale. */
  forgetDevices(userId: string): void;
  /** Closes the client: this device was just deactivated. */
  close(): Promise<void>;
}

const notPrimary = (what: string) =>
  new VignetteError(`only the primary device (device ${PRIMARY_DEVICE}) may ${what}; this is a linked device`, "FORBIDDEN");

export class Devices {
  constructor(private readonly d: DevicesDeps) {}

  async createLinkToken(): Promise<{ token: string; expiresAt: string }> {
    if (this.d.self.deviceId !== PRIMARY_DEVICE) throw notPrimary("link new devices");
    return wrap(async () => (await this.d.http.request(CreateDeviceLinkDocument)).createDeviceLink);
  }

  async list(userId: string) {
    return wrap(async () => (await this.d.http.request(DevicesDocument, { userId })).devices);
  }

  async deactivate(deviceId: number): Promise<boolean> {
    const { self } = this.d;
    if (deviceId !== self.deviceId && self.deviceId !== PRIMARY_DEVICE) throw notPrimary("deactivate other devices");
    const done = await wrap(async () => (await this.d.http.request(DeactivateDeviceDocument, { deviceId })).deactivateDevice);
    this.d.forgetDevices(self.userId);
    if (deviceId === self.deviceId) await this.d.close();
    return done;
  }
}
