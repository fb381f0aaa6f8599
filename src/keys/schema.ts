// The key directory as GraphQL: pre-key status, uploads, signed and last-resort rotations, bundle claims.
import { MAX_KEYS_PER_UPLOAD } from "./parse.ts";
import { builder } from "../graphql/builder.ts";
import { boundedList } from "../graphql/validation.ts";

export const PreKeyInput = builder.inputType("PreKeyInput", {
  description: "A one-time EC pre-key (Curve25519): handed to one claimer, then deleted.",
  fields: (t) => ({
    keyId: t.int({ required: true, description: "The device's own id for this key (libsignal PreKeyRecord id)" }),
    publicKey: t.field({ type: "Bytes", required: true, description: "libsignal PublicKey.serialize(), 33 bytes" }),
  }),
});

export const SignedPreKeyInput = builder.inputType("SignedPreKeyInput", {
  description: "A pre-key signed by the device's identity key: a signed EC pre-key or a Kyber (ML-KEM) pre-key.",
  fields: (t) => ({
    keyId: t.int({ required: true, description: "The device's own id for this key" }),
    publicKey: t.field({ type: "Bytes", required: true, description: "The serialized public key (EC: 33 bytes; Kyber: libsignal KEMPublicKey)" }),
    signature: t.field({ type: "Bytes", required: true, description: "XEdDSA signature of publicKey by the identity key; checked on upload" }),
  }),
});

/** The one-time key lists registration and top-ups both take, with the same bounds. */
type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;
function oneTimeKeyFields(t: PothosSchemaTypes.InputFieldBuilder<Types, "InputObject">) {
  return {
    oneTimePreKeys: t.field({
      type: [PreKeyInput],
      required: false,
      description: `One-time EC pre-keys, at most ${MAX_KEYS_PER_UPLOAD}`,
      validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish(),
    }),
    oneTimeKyberPreKeys: t.field({
      type: [SignedPreKeyInput],
      required: false,
      description: `One-time signed Kyber pre-keys, at most ${MAX_KEYS_PER_UPLOAD}`,
      validate: boundedList(MAX_KEYS_PER_UPLOAD).nullish(),
    }),
  };
}

export const KeysInput = builder.inputType("KeysInput", {
  description: "Everything a device publishes for PQXDH: identity, signed pre-keys and optional one-time keys.",
  fields: (t) => ({
    identityKey: t.field({ type: "Bytes", required: true, description: "libsignal PublicKey.serialize(), 33 bytes" }),
    registrationId: t.int({ required: true, description: "libsignal registration id (1 to 16380)" }),
    signedPreKey: t.field({ type: SignedPreKeyInput, required: true, description: "The signed EC pre-key" }),
    lastResortKyberPreKey: t.field({
      type: SignedPreKeyInput,
      required: true,
      description: "The signed Kyber pre-key handed out when no one-time Kyber key is left",
    }),
    ...oneTimeKeyFields(t),
  }),
});

const UploadPreKeysInput = builder.inputType("UploadPreKeysInput", {
  description: "More one-time keys for the calling device (added to what it has).",
  fields: (t) => ({
    ...oneTimeKeyFields(t),
  }),
});

const PreKeyStatus = builder.simpleObject("PreKeyStatus", {
  description: "How many one-time keys the calling device has left on the server.",
  fields: (t) => ({
    oneTimePreKeys: t.int({ description: "one-time EC pre-keys left" }),
    oneTimeKyberPreKeys: t.int({ description: "one-time Kyber pre-keys left" }),
    lowWaterMark: t.int({ description: "Below this many of either kind the device should upload more" }),
    isLow: t.boolean({ description: "true when either count is below the low-water mark: upload more" }),
  }),
});

const PreKeyBundle = builder.simpleObject("PreKeyBundle", {
  description: "What a sender needs to start a PQXDH session with one device; one-time keys in it are now spent.",
  fields: (t) => ({
    userId: t.id({ description: "The device's user" }),
    deviceId: t.int({ description: "The device (1 is the primary)" }),
    registrationId: t.int({ description: "The device's libsignal registration id" }),
    identityKey: t.field({ type: "Bytes", description: "The device's identity public key, 33 bytes" }),
    signedPreKeyId: t.int({ description: "Id of the signed EC pre-key" }),
    signedPreKey: t.field({ type: "Bytes", description: "The signed EC pre-key" }),
    signedPreKeySignature: t.field({ type: "Bytes", description: "XEdDSA signature of signedPreKey by the identity key" }),
    preKeyId: t.int({ nullable: true, description: "absent when the device has no one-time pre-key left" }),
    preKey: t.field({ type: "Bytes", nullable: true, description: "The one-time EC pre-key, if one was left" }),
    kyberPreKeyId: t.int({ description: "Id of the Kyber pre-key in this bundle" }),
    kyberPreKey: t.field({ type: "Bytes", description: "a one-time Kyber pre-key, else the last-resort one" }),
    kyberPreKeySignature: t.field({ type: "Bytes", description: "XEdDSA signature of kyberPreKey by the identity key" }),
  }),
});

builder.queryField("preKeyStatus", (t) =>
  t.withAuth({ device: true }).field({
    type: PreKeyStatus,
    description: "The calling device's one-time key counts.",
    resolve: (_root, _args, ctx) => ctx.services.keys.status(ctx.actor),
  }),
);

builder.mutationFields((t) => ({
  uploadPreKeys: t.withAuth({ device: true }).field({
    type: PreKeyStatus,
    description: "Adds one-time keys to the calling device; each is checked (and Kyber ones verified) first.",
    args: { input: t.arg({ type: UploadPreKeysInput, required: true, description: "The keys to add" }) },
    resolve: (_root, { input }, ctx) => ctx.services.keys.uploadPreKeys(ctx.actor, input),
  }),
  rotateSignedPreKey: t.withAuth({ device: true }).boolean({
    description: "Replaces the calling device's signed EC pre-key (signature verified against its identity key).",
    args: { key: t.arg({ type: SignedPreKeyInput, required: true, description: "The new signed EC pre-key" }) },
    resolve: (_root, { key }, ctx) => ctx.services.keys.rotateSignedPreKey(ctx.actor, key),
  }),
  rotateLastResortKyberPreKey: t.withAuth({ device: true }).boolean({
    description: "Replaces the calling device's last-resort Kyber pre-key (signature verified).",
    args: { key: t.arg({ type: SignedPreKeyInput, required: true, description: "The new last-resort Kyber pre-key" }) },
    resolve: (_root, { key }, ctx) => ctx.services.keys.rotateLastResortKyberPreKey(ctx.actor, key),
  }),
  claimPreKeyBundles: t.withAuth({ device: true }).field({
    type: [PreKeyBundle],
    description: "One bundle per active device of the user (or just deviceId). A mutation: it consumes one-time keys.",
    args: {
      // Checked by the claim itself (claimOf in claims.ts): BAD_USER_INPUT for a user id that is not a UUID or a
      // device id outside 1-127.
      userId: t.arg.id({ required: true, description: "Whose devices" }),
      deviceId: t.arg.int({ required: false, description: "Only this device of theirs (1-127)" }),
    },
    resolve: (_root, { userId, deviceId }, ctx) =>
      ctx.services.keys.claimBundles(String(userId), deviceId),
  }),
}));
