// Wake-ups for the member devices that are away, once per group per turn of the event loop rather than per message:
// each asks for the group's device list and the push registrations among them, two statements that a busy group's
// every send would otherwise add.
import type { Actor } from "../deps.ts";
import type { DeviceRef } from "./mls-framing.ts";

export interface GroupEvents {
  /**
   * After application messages of a group were stored: the devices they are for (read only if asked) may need
   * waking (src/push/), all but `sender` when one device sent them all.
   */
  applicationStored(sender: Actor | null, recipients: () => Promise<{ userId: string; deviceId: number }[]>): void;
}

export function groupWakes(events: GroupEvents | undefined, devicesOf: (groupId: string) => Promise<DeviceRef[]>) {
  const pending = new Map<string, Map<string, Actor>>();
  function flush(): void {
    for (const [groupId, senders] of pending) {
      // The sending device is not woken by its own messages; with several senders each is woken by the others'.
      events!.applicationStored(senders.size === 1 ? [...senders.values()][0] : null, () => devicesOf(groupId));
    }
    pending.clear();
  }
  /** A message of `sender`'s was stored in the group. */
  return function stored(groupId: string, sender: Actor): void {
    if (!events) return;
    if (pending.size === 0) setImmediate(flush);
    const senders = pending.get(groupId) ?? pending.set(groupId, new Map()).get(groupId)!;
    senders.set(`${sender.userId}|${sender.deviceId}`, sender);
  };
}
