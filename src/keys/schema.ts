// The key directory as GraphQL: pre-key status, uploads, signed and last-resort rotations, bundle claims.
import { MAX_KEYS_PER_UPLOAD } from "./parse.ts";
import { builder } from "../graphql/builder.ts";
import { boundedList, deviceIdArg, uuid } from "../graphql/validation.ts";

export const PreKeyInput = builder.inputType("PreKeyInput", {
  fields: (t) => ({
    keyId: t.int({ required: true }),
    publicKey: t.field({ type: "Bytes", required: true }),
  }),
});

export const SignedPreKeyInput = builder.inputType("SignedPreKeyInput", {
  fields: (t) => ({
    keyId: t.int({ required: true }),
    publicKey: t.field({ type: "Bytes", required: true }),
    signature: t.field({ type: "Bytes", required: true }),
  }),
});

export const KeysInput = builder.inputType("KeysInput", {
  fields: (t) => ({
    identityKey: t.field({ type: "Bytes", required: true, description: "libsignal PublicKey.serialize(), 33 bytes" }),
    registrationId: t.int({ required: true }),
    signedPreKey: t.field({ type: SignedPreKeyInput, required: true }),
    lastResortKyberPreKey: t.field({ type: SignedPreKeyInput, required: true }),
    oneTimePreKeys: t.field({
      type: [PreKeyInput],
      required: false,
      validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish(),
    }),
    oneTimeKyberPreKeys: t.field({
      type: [SignedPreKeyInput],
      required: false,
      validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish(),
    }),
  }),
});

const UploadPreKeysInput = builder.inputType("UploadPreKeysInput", {
  fields: (t) => ({
    oneTimePreKeys: t.field({ type: [PreKeyInput], required: false, validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish() }),
    oneTimeKyberPreKeys: t.field({
      type: [SignedPreKeyInput],
      required: false,
      validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish(),
    }),
  }),
});

const PreKeyStatus = builder.simpleObject("PreKeyStatus", {
  fields: (t) => ({
    oneTimePreKeys: t.int({ description: "one-time EC pre-keys left" }),
    oneTimeKyberPreKeys: t.int({ description: "one-time Kyber pre-keys left" }),
    lowWaterMark: t.int(),
    isLow: t.boolean({ description: "true when either count is below the low-water mark: upload more" }),
  }),
});

const PreKeyBundle = builder.simpleObject("PreKeyBundle", {
  fields: (t) => ({
    userId: t.id(),
    deviceId: t.int(),
    registrationId: t.int(),
    identityKey: t.field({ type: "Bytes" }),
    signedPreKeyId: t.int(),
    signedPreKey: t.field({ type: "Bytes" }),
    signedPreKeySignature: t.field({ type: "Bytes" }),
    preKeyId: t.int({ nullable: true, description: "absent when the device has no one-time pre-key left" }),
    preKey: t.field({ type: "Bytes", nullable: true }),
    kyberPreKeyId: t.int(),
    kyberPreKey: t.field({ type: "Bytes", description: "a one-time Kyber pre-key, else the last-resort one" }),
    kyberPreKeySignature: t.field({ type: "Bytes" }),
  }),
});

builder.queryField("preKeyStatus", (t) =>
  t.withAuth({ device: true }).field({
    type: PreKeyStatus,
    resolve: (_root, _args, ctx) => ctx.services.keys.status(ctx.actor),
  }),
);

builder.mutationFields((t) => ({
  uploadPreKeys: t.withAuth({ device: true }).field({
    type: PreKeyStatus,
    args: { input: t.arg({ type: UploadPreKeysInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.keys.uploadPreKeys(ctx.actor, input),
  }),
  rotateSignedPreKey: t.withAuth({ device: true }).boolean({
    args: { key: t.arg({ type: SignedPreKeyInput, required: true }) },
    resolve: (_root, { key }, ctx) => ctx.services.keys.rotateSignedPreKey(ctx.actor, key),
  }),
  rotateLastResortKyberPreKey: t.withAuth({ device: true }).boolean({
    args: { key: t.arg({ type: SignedPreKeyInput, required: true }) },
    resolve: (_root, { key }, ctx) => ctx.services.keys.rotateLastResortKyberPreKey(ctx.actor, key),
  }),
  claimPreKeyBundles: t.withAuth({ device: true }).field({
    type: [PreKeyBundle],
    description: "One bundle per active device of the user (or just deviceId). A mutation: it consumes one-time keys.",
    args: {
      userId: t.arg.id({ required: true, validate: uuid }),
      deviceId: t.arg.int({ required: false, validate: deviceIdArg.nullish() }),
    },
    resolve: (_root, { userId, deviceId }, ctx) =>
      ctx.services.keys.claimBundles(String(userId), deviceId),
  }),
}));
