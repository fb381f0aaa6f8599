// Who may change an account's device set. As in Signal, the device that registered the account (device 1) is the
// primary: only it links new devices and removes others, so a stolen secondary device cannot take the account over.
import type { Actor } from "../deps.ts";

export const PRIMARY_DEVICE_ID = 1;

export const isPrimary = (actor: Actor): boolean => actor.deviceId === PRIMARY_DEVICE_ID;

/** Any device may remove itself; only the primary removes another. */
export const mayDeactivate = (actor: Actor, deviceId: number): boolean => deviceId === actor.deviceId || isPrimary(actor);
