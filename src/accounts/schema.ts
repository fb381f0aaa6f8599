// Accounts and devices as GraphQL: the User and Device types, registration, device links, key resets, deactivation.
import { MAX_DEVICE_NAME } from "./service.ts";
import type { DeviceInfo } from "./service.ts";
import { builder } from "../graphql/builder.ts";
import { KeysInput } from "../keys/schema.ts";
import { deviceIdArg, shortText, uuid } from "../graphql/validation.ts";

export const Device = builder.objectRef<DeviceInfo>("Device").implement({
  fields: (t) => ({
    userId: t.exposeID("userId"),
    deviceId: t.exposeInt("deviceId"),
    name: t.exposeString("name", { nullable: true }),
    registrationId: t.exposeInt("registrationId"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

export const User = builder.objectRef<{ id: string; username: string | null }>("User").implement({
  fields: (t) => ({
    id: t.exposeID("id"),
    username: t.exposeString("username", { nullable: true }),
    devices: t.withAuth({ device: true }).field({
      type: [Device],
      description: "The user's active devices",
      resolve: (user, _args, ctx) => ctx.services.devices.listActive(user.id),
    }),
  }),
});

const DeviceCredentials = builder.simpleObject("DeviceCredentials", {
  description: "Shown once: the token is stored on the server only as a hash.",
  fields: (t) => ({ userId: t.id(), deviceId: t.int(), token: t.string() }),
});

const DeviceLink = builder.simpleObject("DeviceLink", {
  fields: (t) => ({ token: t.string(), expiresAt: t.field({ type: "DateTime" }) }),
});

const RegisterAccountInput = builder.inputType("RegisterAccountInput", {
  fields: (t) => ({
    username: t.string({ required: false, validate: shortText(32).nullish() }),
    deviceName: t.string({ required: false, validate: shortText(MAX_DEVICE_NAME).nullish() }),
    keys: t.field({ type: KeysInput, required: true }),
  }),
});

const LinkDeviceInput = builder.inputType("LinkDeviceInput", {
  fields: (t) => ({
    linkToken: t.string({ required: true, validate: shortText(128) }),
    deviceName: t.string({ required: false, validate: shortText(MAX_DEVICE_NAME).nullish() }),
    keys: t.field({ type: KeysInput, required: true }),
  }),
});

builder.queryFields((t) => ({
  me: t.withAuth({ device: true }).field({
    type: Device,
    resolve: (_root, _args, ctx) => ctx.services.devices.get(ctx.actor),
  }),
  userByUsername: t.withAuth({ device: true }).field({
    type: User,
    nullable: true,
    args: { username: t.arg.string({ required: true, validate: shortText(64) }) },
    resolve: (_root, { username }, ctx) => ctx.services.devices.userByUsername(username),
  }),
  user: t.withAuth({ device: true }).field({
    type: User,
    nullable: true,
    args: { id: t.arg.id({ required: true, validate: uuid }) },
    resolve: (_root, { id }, ctx) => ctx.services.devices.userById(String(id)),
  }),
  devices: t.withAuth({ device: true }).field({
    type: [Device],
    description: "A user's active devices",
    args: { userId: t.arg.id({ required: true, validate: uuid }) },
    resolve: (_root, { userId }, ctx) => ctx.services.devices.listActive(String(userId)),
  }),
}));

builder.mutationFields((t) => ({
  registerAccount: t.field({
    type: DeviceCredentials,
    args: { input: t.arg({ type: RegisterAccountInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.devices.registerAccount(input),
  }),
  createDeviceLink: t.withAuth({ device: true }).field({
    type: DeviceLink,
    resolve: (_root, _args, ctx) => ctx.services.devices.createLink(ctx.actor),
  }),
  linkDevice: t.field({
    type: DeviceCredentials,
    args: { input: t.arg({ type: LinkDeviceInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.devices.linkDevice(input),
  }),
  resetDeviceKeys: t.withAuth({ device: true }).boolean({
    description:
      "Re-registers the calling device with a new identity and new keys (its Signal state was lost). Contacts get STALE_DEVICES and fetch the new bundle.",
    args: { keys: t.arg({ type: KeysInput, required: true }) },
    resolve: (_root, { keys }, ctx) => ctx.services.devices.resetKeys(ctx.actor, keys),
  }),
  deactivateDevice: t.withAuth({ device: true }).boolean({
    description: "Deactivates one of your own devices and removes its keys. False if it already was.",
    args: { deviceId: t.arg.int({ required: true, validate: deviceIdArg }) },
    resolve: (_root, { deviceId }, ctx) => ctx.services.devices.deactivate(ctx.actor, deviceId),
  }),
}));
