// The `vignette` command: enough of a messenger to try the product from two terminals. Every failure is printed as
// one readable line (no stack traces) and exits non-zero.
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { parseArgs } from "node:util";
import { DEFAULT_SERVER, VignetteClient, VignetteError, type ReceivedMessage } from "./client.ts";
import type { MessageBody } from "./content.ts";
import { fileMessage, saveAttachment } from "./cli-files.ts";
import { formatGroupMessage, GROUP_USAGE, groupCommand, groupNames, GroupUsageError } from "./cli-groups.ts";

const USAGE = `usage: vignette [--dir DIR] [--server URL] <command>

  register <username> [--name DEVICE]   create an account (on --server, default ${DEFAULT_SERVER})
  link                                  on the primary device (device 1): print a one-time link token
  link <token> [--name DEVICE]          on a new device (its own --dir): join the account
  devices                               list this account's devices
  devices remove <deviceId>             deactivate one of them (a linked device: only itself)
  send <username> <text...> [--expires SECONDS]
  send-file <username> <path> [--caption TEXT]   encrypted attachment (image, video, voice or file by extension)
  send-file --group <group> <path> [--caption TEXT]   the same into a group
  listen                                print incoming messages (groups too) until Ctrl-C; attachments saved under DIR/attachments
  chat <username>                       interactive conversation (/quit to leave)
  safety <username>                     safety numbers to compare out of band
  whoami
${GROUP_USAGE}

  --dir DIR     the account directory (default ~/.vignette)`;

class UsageError extends Error {}

const out = (line: string): void => void process.stdout.write(line + "\n");

function describe(body: MessageBody): string {
  switch (body.kind) {
    case "text":
    case "noteToSelf":
      return body.text;
    case "location":
      return `[location ${body.latitude},${body.longitude}${body.label ? ` ${body.label}` : ""}]`;
    case "contact":
      return `[contact ${body.name}]`;
    case "poll":
      return `[poll ${body.question}: ${body.options.join(" / ")}]`;
    case "event":
      return `[event ${body.title} at ${body.startsAt}]`;
    case "reaction":
      return body.emoji ? `[reacted ${body.emoji}]` : "[took a reaction back]";
    case "edit":
      return `[edited: ${body.text}]`;
    case "vote":
      return `[voted ${body.choices.map((c) => c + 1).join(", ") || "nothing"}]`;
    case "rsvp":
      return `[rsvp ${body.answer}]`;
    case "unsupported":
      return `[a ${body.originalKind} message this version cannot show]`;
    case "image":
    case "video":
    case "voice":
    case "file":
      return `[${body.kind} ${body.attachment.fileName ?? body.attachment.contentType}, ${body.attachment.size} bytes]${body.caption ? ` ${body.caption}` : ""}`;
    case "missedCall":
      return `[missed ${body.video ? "video" : "voice"} call]`;
    case "call":
      return "[call signaling]";
  }
}

async function who(client: VignetteClient, userId: string): Promise<string> {
  return (await client.usernameOf(userId).catch(() => null)) ?? userId;
}

async function formatMessage(client: VignetteClient, m: ReceivedMessage): Promise<string> {
  const time = new Date(m.sentAt).toISOString().slice(11, 19);
  const text = describe(m.body);
  if (m.isSync) return `[${time}] me -> ${await who(client, m.peerUserId)}: ${text}`;
  return `[${time}] ${await who(client, m.from.userId)}: ${text}`;
}

/** Keeps the process alive until SIGINT/SIGTERM (or until `until` settles), then closes the client. */
function runUntilStopped(client: VignetteClient, until?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      client.close().finally(resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    until?.finally(stop);
  });
}

function reportErrors(client: VignetteClient) {
  client.on("error", (e) => process.stderr.write(`warning: ${e.message}\n`));
  client.on("safetyNumberChanged", async (c) =>
    out(`! safety number with ${await who(client, c.userId)} (device ${c.deviceId}) changed: ${c.safetyNumber}`),
  );
  client.on("undecryptable", async (u) => out(`! a message from ${await who(client, u.from.userId)} could not be decrypted`));
}

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string" },
      server: { type: "string" },
      name: { type: "string" },
      expires: { type: "string" },
      caption: { type: "string" },
      group: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) return out(USAGE);
  const dir = path.resolve(values.dir ?? path.join(os.homedir(), ".vignette"));
  const server = values.server ?? DEFAULT_SERVER;
  const open = () => VignetteClient.open(dir);

  switch (command) {
    case "register": {
      if (rest.length !== 1) throw new UsageError("register takes one username");
      const c = await VignetteClient.register({ dir, server, username: rest[0], deviceName: values.name });
      out(`registered ${c.username} (user ${c.userId}, device ${c.deviceId}) in ${dir}`);
      return c.close();
    }
    case "link": {
      if (rest.length === 0) {
        const c = await open();
        const link = await c.createLinkToken();
        out(link.token);
        out(`(valid until ${link.expiresAt}; run \`vignette --dir <new dir> link ${link.token}\` on the new device)`);
        return c.close();
      }
      if (rest.length !== 1) throw new UsageError("link takes at most one token");
      const c = await VignetteClient.link({ dir, server, linkToken: rest[0], deviceName: values.name });
      out(`linked as device ${c.deviceId} of ${c.username ?? c.userId} in ${dir}`);
      return c.close();
    }
    case "devices": {
      const c = await open();
      try {
        if (rest[0] === "remove") {
          const id = Number(rest[1]);
          if (!Number.isInteger(id) || id < 1) throw new UsageError("devices remove takes a device id");
          out((await c.deactivateDevice(id)) ? `device ${id} deactivated` : `device ${id} was already inactive`);
        } else if (rest.length === 0) {
          for (const d of await c.devices()) {
            out(`${d.deviceId}\t${d.name ?? "-"}\t${d.createdAt ?? "-"}${d.deviceId === c.deviceId ? "\t(this device)" : ""}`);
          }
        } else throw new UsageError("devices takes no argument, or `remove <deviceId>`");
      } finally {
        await c.close();
      }
      return;
    }
    case "group": {
      const c = await open();
      try {
        await groupCommand(c, rest, out, expiresOption(values.expires));
      } finally {
        await c.close();
      }
      return;
    }
    case "send": {
      if (rest.length < 2) throw new UsageError("send takes a username and a text");
      const expires = expiresOption(values.expires);
      const c = await open();
      try {
        const r = await c.send(rest[0], rest.slice(1).join(" "), { expiresInSeconds: expires });
        out(`sent ${r.messageId}`);
      } finally {
        await c.close();
      }
      return;
    }
    case "send-file": {
      const inGroup = values.group !== undefined;
      if (rest.length !== (inGroup ? 1 : 2)) throw new UsageError("send-file takes a username and a path, or --group GROUP and a path");
      const c = await open();
      try {
        const to = inGroup ? (await c.groups.find(values.group!)).id : rest[0];
        const file = await fileMessage(c, path.resolve(rest[rest.length - 1]), values.caption);
        const r = inGroup ? await c.groups.send(to, file.body) : await c.send(to, file.body);
        out(`sent ${r.messageId} (${file.kind}, ${file.size} bytes)`);
      } finally {
        await c.close();
      }
      return;
    }
    case "listen": {
      const c = await open();
      reportErrors(c);
      c.on("message", async (m) => {
        out(await formatMessage(c, m));
        await saveAttachment(c, dir, m, out);
      });
      const nameOf = groupNames(c);
      c.on("groupMessage", async (m) => {
        out(await formatGroupMessage(c, m, await nameOf(m.groupId), describe));
        await saveAttachment(c, dir, m, out);
      });
      c.on("groupChanged", async (e) => out(`(#${await nameOf(e.groupId)}: ${e.kind})`));
      c.on("deleted", (d) => out(`(message ${d.messageId} deleted)`));
      c.on("expired", (e) => out(`(message ${e.messageId} expired)`));
      c.on("reaction", async (r) => out(`(${await who(c, r.from.userId)} ${r.emoji ? `reacted ${r.emoji} to` : "took back a reaction to"} ${r.messageId})`));
      c.on("edit", async (e) => out(`(${await who(c, e.from.userId)} edited ${e.messageId}: ${e.text})`));
      c.on("unsupported", async (m) => out(await formatMessage(c, m)));
      await c.start();
      out(`listening as ${c.username ?? c.userId} (device ${c.deviceId}); Ctrl-C to stop`);
      return runUntilStopped(c);
    }
    case "chat": {
      if (values.group !== undefined) return groupChat(open, values.group);
      if (rest.length !== 1) throw new UsageError("chat takes one username");
      const c = await open();
      reportErrors(c);
      const peer = await c.resolveUser(rest[0]).catch(async (e) => {
        await c.close();
        throw e;
      });
      c.on("message", async (m) => {
        if (m.peerUserId !== peer) return;
        out(await formatMessage(c, m));
        if (!m.isSync) await c.markRead([m.messageId]).catch(() => {});
      });
      c.on("receipt", (r) => r.kind === "READ" && r.userId === peer && out(`(read ${r.messageId})`));
      return chat(c, `chatting with ${rest[0]}`, (text) => c.send(peer, text));
    }
    case "safety": {
      if (rest.length !== 1) throw new UsageError("safety takes one username");
      const c = await open();
      try {
        const numbers = await c.safetyNumbers(rest[0]);
        if (!numbers.length) out(`no session with ${rest[0]} yet: exchange a message first`);
        for (const n of numbers) out(`device ${n.deviceId}: ${n.safetyNumber.replace(/(\d{5})/g, "$1 ").trim()}`);
      } finally {
        await c.close();
      }
      return;
    }
    case "whoami": {
      const c = await open();
      out(`${c.username ?? "-"}\tuser ${c.userId}\tdevice ${c.deviceId}\t${c.account.server}`);
      return c.close();
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function expiresOption(value: string | undefined): number | undefined {
  const expires = value === undefined ? undefined : Number(value);
  if (expires !== undefined && (!Number.isInteger(expires) || expires < 1)) throw new UsageError("--expires takes whole seconds");
  return expires;
}

async function groupChat(open: () => Promise<VignetteClient>, which: string): Promise<void> {
  const c = await open();
  reportErrors(c);
  const g = await c.groups.find(which).catch(async (e) => {
    await c.close();
    throw e;
  });
  const name = g.name ?? g.id;
  c.on("groupMessage", async (m) => {
    if (m.groupId === g.id) out(await formatGroupMessage(c, m, name, describe));
  });
  return chat(c, `chatting in #${name}`, (text) => c.groups.send(g.id, text));
}

/** Starts the client and sends each line typed until /quit or the end of input; the client stays up until then. */
async function chat(c: VignetteClient, banner: string, send: (text: string) => Promise<{ messageId: string }>): Promise<void> {
  await c.start();
  out(`${banner}; type a line to send, /quit to leave`);
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const done = new Promise<void>((resolve) => {
    rl.on("close", resolve);
    rl.on("line", (line) => {
      const text = line.trim();
      if (text === "/quit") return rl.close();
      if (!text) return;
      send(text).then(
        (r) => out(`(sent ${r.messageId})`),
        (e) => process.stderr.write(`error: ${(e as Error).message}\n`),
      );
    });
  });
  return runUntilStopped(c, done);
}

function readable(err: unknown): string {
  if (err instanceof UsageError || err instanceof GroupUsageError) return `${err.message}\n\n${USAGE}`;
  if (err instanceof VignetteError) return err.code && err.code !== "UNREACHABLE" ? `${err.message} (${err.code})` : err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || e?.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") return `${e.message}\n\n${USAGE}`;
  if (e?.code === "EACCES") return `permission denied: ${e.path ?? ""}`;
  return e?.message ?? String(err);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`error: ${readable(err)}\n`);
    process.exit(1);
  },
);
