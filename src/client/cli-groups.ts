// The `vignette group ...` commands and the group side of `listen` and `chat --group`. A group is named by its id or
// its name (when that is unique among the account's groups).
import type { VignetteClient } from "./client.ts";
import type { MessageBody } from "./content.ts";
import type { ReceivedGroupMessage } from "./groups.ts";

export const GROUP_USAGE = `  group create <name> [user...]         a group with these members (and all your devices)
  group add|remove <group> <user...>    change its members (admins)
  group leave <group>
  group list                            your groups
  group members <group>                 who is in it, with roles
  group send <group> <text...> [--expires SECONDS]
  chat --group <group>                  interactive group conversation`;

export class GroupUsageError extends Error {}

type Out = (line: string) => void;

export async function groupCommand(c: VignetteClient, rest: string[], out: Out, expires?: number): Promise<void> {
  const [sub, ...args] = rest;
  const need = (n: number, what: string) => {
    if (args.length < n) throw new GroupUsageError(`group ${sub} takes ${what}`);
  };
  switch (sub) {
    case "create": {
      need(1, "a name and optionally users");
      const g = await c.groups.create({ name: args[0], members: args.slice(1) });
      return out(`created group ${g.name} (${g.id}) with ${g.memberCount} members`);
    }
    case "add":
    case "remove": {
      need(2, "a group and users");
      const g = await c.groups.find(args[0]);
      const epoch = sub === "add" ? await c.groups.add(g.id, args.slice(1)) : await c.groups.remove(g.id, args.slice(1));
      return out(`${sub === "add" ? "added to" : "removed from"} ${g.name ?? g.id} (epoch ${epoch})`);
    }
    case "leave": {
      need(1, "a group");
      const g = await c.groups.find(args[0]);
      await c.groups.leave(g.id);
      return out(`left ${g.name ?? g.id}`);
    }
    case "list":
      for (const g of await c.groups.list()) out(`${g.id}\t${g.name ?? "-"}\t${g.memberCount} members`);
      return;
    case "members": {
      need(1, "a group");
      const g = await c.groups.find(args[0]);
      for (const m of await c.groups.members(g.id)) out(`${(await c.usernameOf(m.userId).catch(() => null)) ?? m.userId}\t${m.role}`);
      return;
    }
    case "send": {
      need(2, "a group and a text");
      const g = await c.groups.find(args[0]);
      const r = await c.groups.send(g.id, args.slice(1).join(" "), { expiresInSeconds: expires });
      return out(`sent ${r.messageId}`);
    }
    default:
      throw new GroupUsageError(`unknown group command ${sub ?? ""}`.trim());
  }
}

/** Group names for printing, asked once per group. */
export function groupNames(c: VignetteClient): (groupId: string) => Promise<string> {
  const names = new Map<string, string>();
  return async (groupId) => {
    if (!names.has(groupId)) names.set(groupId, (await c.groups.get(groupId).catch(() => null))?.name ?? groupId);
    return names.get(groupId)!;
  };
}

export async function formatGroupMessage(c: VignetteClient, m: ReceivedGroupMessage, name: string, text: (b: MessageBody) => string) {
  const time = new Date(m.sentAt).toISOString().slice(11, 19);
  const sender = m.isSync ? "me" : ((await c.usernameOf(m.from.userId).catch(() => null)) ?? m.from.userId);
  return `[${time}] #${name} ${sender}: ${text(m.body)}`;
}
