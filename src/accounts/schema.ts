// Accounts and devices as GraphQL: the User and Device types, registration, device links, key resets, deactivation.
import { MAX_DEVICE_NAME } from "./service.ts";
import type { DeviceInfo } from "./service.ts";
import { builder } from "../graphql/builder.ts";
import { KeysInput } from "../keys/schema.ts";
import { deviceIdArg, shortText, uuid } from "../graphql/validation.ts";

export const Device = builder.objectRef<DeviceInfo>("Device").implement({
  description: "One device of a user: its own Signal identity, keys, token and queue.",
  fields: (t) => ({
    userId: t.exposeID("userId", { description: "The device's user" }),
    deviceId: t.exposeInt("deviceId", { description: "1 for the device that registered the account; never reused" }),
    // Names and creation times are the account's own business: other users get the ids encryption needs.
    name: t.string({
      nullable: true,
      description: "The name its owner gave it; null unless the device is your account's own",
      resolve: (d, _args, ctx) => (ctx.actor?.userId === d.userId ? d.name : null),
    }),
    registrationId: t.exposeInt("registrationId", { description: "libsignal registration id, for envelope addressing" }),
    createdAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When it was registered or linked; null unless the device is your account's own",
      resolve: (d, _args, ctx) => (ctx.actor?.userId === d.userId ? d.createdAt : null),
    }),
  }),
});

export const User = builder.objectRef<{ id: string; username: string | null }>("User").implement({
  description: "An account: a UUID, an optional username, up to MAX_DEVICES_PER_USER active devices.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The user's UUID" }),
    username: t.exposeString("username", { nullable: true, description: "Unique, lowercase; absent if none was chosen" }),
    devices: t.withAuth({ device: true }).field({
      type: [Device],
      description: "The user's active devices",
      resolve: (user, _args, ctx) => ctx.services.devices.listActive(user.id),
    }),
  }),
});

const DeviceCredentials = builder.simpleObject("DeviceCredentials", {
  description: "Shown once: the token is stored on the server only as a hash.",
  fields: (t) => ({
    userId: t.id({ description: "The account's user id" }),
    deviceId: t.int({ description: "This device's id" }),
    token: t.string({ description: "Bearer token for this device (256 random bits): keep it secret" }),
  }),
});

const DeviceLink = builder.simpleObject("DeviceLink", {
  description: "A one-time token that lets a new device join this account with linkDevice.",
  fields: (t) => ({
    token: t.string({ description: "Show it to the new device (QR code or typed); usable once" }),
    expiresAt: t.field({ type: "DateTime", description: "After this the token is refused" }),
  }),
});

const RegisterAccountInput = builder.inputType("RegisterAccountInput", {
  description: "A new account and its first device.",
  fields: (t) => ({
    username: t.string({
      required: false,
      description: "3 to 32 of a-z, 0-9, _ and . (case-insensitive, unique)",
      validate: shortText(32).nullish(),
    }),
    deviceName: t.string({ required: false, description: "A name for this device", validate: shortText(MAX_DEVICE_NAME).nullish() }),
    keys: t.field({ type: KeysInput, required: true, description: "This device's Signal identity and pre-keys" }),
  }),
});

const LinkDeviceInput = builder.inputType("LinkDeviceInput", {
  description: "A new device joining an existing account.",
  fields: (t) => ({
    linkToken: t.string({ required: true, description: "From createDeviceLink on the primary device", validate: shortText(128) }),
    deviceName: t.string({ required: false, description: "A name for this device", validate: shortText(MAX_DEVICE_NAME).nullish() }),
    keys: t.field({ type: KeysInput, required: true, description: "This device's own Signal identity and pre-keys" }),
  }),
});

builder.queryFields((t) => ({
  me: t.withAuth({ device: true }).field({
    type: Device,
    description: "The calling device (from its token).",
    resolve: (_root, _args, ctx) => ctx.services.devices.get(ctx.actor),
  }),
  userByUsername: t.withAuth({ device: true }).field({
    type: User,
    nullable: true,
    description: "Looks a user up by username; null if there is none.",
    args: { username: t.arg.string({ required: true, validate: shortText(64), description: "Case-insensitive" }) },
    resolve: (_root, { username }, ctx) => ctx.services.devices.userByUsername(username),
  }),
  user: t.withAuth({ device: true }).field({
    type: User,
    nullable: true,
    description: "Looks a user up by id; null if there is none.",
    args: { id: t.arg.id({ required: true, validate: uuid, description: "The user's UUID" }) },
    resolve: (_root, { id }, ctx) => ctx.services.devices.userById(String(id)),
  }),
  devices: t.withAuth({ device: true }).field({
    type: [Device],
    description: "A user's active devices",
    args: { userId: t.arg.id({ required: true, validate: uuid, description: "Whose devices" }) },
    resolve: (_root, { userId }, ctx) => ctx.services.devices.listActive(String(userId)),
  }),
}));

builder.mutationFields((t) => ({
  registerAccount: t.field({
    type: DeviceCredentials,
    description: "Creates a user and its device 1; the answer carries the device's token, shown only this once.",
    args: { input: t.arg({ type: RegisterAccountInput, required: true, description: "Username, device name and keys" }) },
    resolve: (_root, { input }, ctx) => ctx.services.devices.registerAccount(input),
  }),
  createDeviceLink: t.withAuth({ device: true }).field({
    type: DeviceLink,
    description:
      "A one-time token for adding a device to your account (valid DEVICE_LINK_TTL_SECONDS). Only the primary device (device 1) may ask: FORBIDDEN from any other.",
    resolve: (_root, _args, ctx) => ctx.services.devices.createLink(ctx.actor),
  }),
  linkDevice: t.field({
    type: DeviceCredentials,
    description: "Adds a device to the account a link token names; answers with the new device's token.",
    args: { input: t.arg({ type: LinkDeviceInput, required: true, description: "Link token, device name and keys" }) },
    resolve: (_root, { input }, ctx) => ctx.services.devices.linkDevice(input),
  }),
  resetDeviceKeys: t.withAuth({ device: true }).boolean({
    description:
      "Re-registers the calling device with a new identity and new keys (its Signal state was lost). Contacts get STALE_DEVICES and fetch the new bundle.",
    args: { keys: t.arg({ type: KeysInput, required: true, description: "The device's new identity and pre-keys" }) },
    resolve: (_root, { keys }, ctx) => ctx.services.devices.resetKeys(ctx.actor, keys),
  }),
  deactivateDevice: t.withAuth({ device: true }).boolean({
    description:
      "Deactivates one of your own devices and removes its keys. False if it already was. Any device may deactivate itself; only the primary device (device 1) deactivates others (FORBIDDEN otherwise).",
    args: { deviceId: t.arg.int({ required: true, validate: deviceIdArg, description: "The calling device, or (from the primary) one of your devices" }) },
    resolve: (_root, { deviceId }, ctx) => ctx.services.devices.deactivate(ctx.actor, deviceId),
  }),
}));
