// GraphQL face of attachments: the upload grant. The bytes go over tus and plain GET under /attachments/.
import { z } from "zod";
import { builder } from "../graphql/builder.ts";
import { shortText } from "../graphql/validation.ts";
import { MAX_CONTENT_TYPE } from "./rules.ts";
import type { AttachmentUpload as Grant } from "./service.ts";

const AttachmentUploadInput = builder.inputType("AttachmentUploadInput", {
  description: "What the device is about to upload: the blob as stored (ciphertext, padding included).",
  fields: (t) => ({
    size: t.int({
      required: true,
      description: "Exact size of the blob in bytes; the upload can never grow past it.",
      validate: z.number().int().min(1),
    }),
    contentType: t.string({
      required: false,
      description: "Served back on download. The SDK sends application/octet-stream: the real type is in the encrypted pointer.",
      validate: shortText(MAX_CONTENT_TYPE).regex(/^[\w.+-]+\/[\w.+-]+$/, { message: "must look like type/subtype" }).nullish(),
    }),
  }),
});

const AttachmentUpload = builder.objectRef<Grant>("AttachmentUpload").implement({
  description: "A granted upload: send the blob with tus 1.0 (HEAD, PATCH) to uploadUrl with the device token.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The blob's id (144 random bits); whoever holds it may download it." }),
    uploadUrl: t.exposeString("uploadUrl", { description: "Path on this server, to resolve against its URL." }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", description: "An upload not complete by then is deleted." }),
    maxBytes: t.exposeInt("maxBytes", { description: "The most bytes this upload accepts (the granted size)." }),
  }),
});

builder.mutationField("createAttachmentUpload", (t) =>
  t.withAuth({ device: true }).field({
    type: AttachmentUpload,
    description:
      "Grants one upload of an encrypted blob, counted against the device's daily quota (uploads and bytes). " +
      "LIMIT_EXCEEDED: over MAX_ATTACHMENT_BYTES or over quota.",
    args: { input: t.arg({ type: AttachmentUploadInput, required: true, description: "The ciphertext's size and an optional content type" }) },
    resolve: (_root, { input }, ctx) => ctx.services.attachments.createUpload(ctx.actor, input),
  }),
);
