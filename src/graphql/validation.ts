// Input bounds shared by several domains' fields.
import { z } from "zod";
import { MAX_DEVICE_ID, canonicalUuid } from "../ids.ts";

// Every UUID argument and input field goes through this (sendMessage's recipient and claimPreKeyBundles' user
// through canonicalUuid in their own rules instead): the services only ever see the lowercase spelling (one rate-limit subject, one live channel,
// one cache key per id), and a malformed one is BAD_USER_INPUT here.
export const uuid = z.string().transform((s, ctx) => canonicalUuid(s) ?? (ctx.addIssue({ code: "custom", message: "must be a UUID" }), z.NEVER));
export const deviceIdArg = z.number().int().min(1).max(MAX_DEVICE_ID);
export const shortText = (max: number) => z.string().max(max, { message: `must be at most ${max} characters` });
export const boundedList = (max: number) => z.array(z.any()).max(max, { message: `must have at most ${max} items` });
