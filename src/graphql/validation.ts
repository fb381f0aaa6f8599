// Input bounds shared by several domains' fields.
import { z } from "zod";

export const uuid = z.uuid({ message: "must be a UUID" });
// libsignal addresses devices 1 to 127.
export const deviceIdArg = z.number().int().min(1).max(127);
export const shortText = (max: number) => z.string().max(max, { message: `must be at most ${max} characters` });
export const boundedList = (max: number) => z.array(z.any()).max(max, { message: `must have at most ${max} items` });
