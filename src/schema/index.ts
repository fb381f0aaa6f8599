// Importing a domain file registers its types and fields on the builder.
import { assertValidSchema } from "graphql";
import { builder } from "./builder.ts";
import "./scalars.ts";
import "./devices.ts";
import "./keys.ts";
import "./inbox.ts";
import "./messages.ts";
import "./realtime.ts";
import "./groups.ts";

export const schema = builder.toSchema({ sortSchema: true });
// Fail at start-up, not on the first request, when a domain file left the schema invalid.
assertValidSchema(schema);
