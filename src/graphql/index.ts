// Importing a domain file registers its types and fields on the builder.
import { assertValidSchema } from "graphql";
import { builder } from "./builder.ts";
import "./scalars.ts";
import "../accounts/schema.ts";
import "../keys/schema.ts";
import "../inbox/schema.ts";
import "../messages/schema.ts";
import "../realtime/schema.ts";
import "../groups/schema.ts";
import "../push/schema.ts";
import "../attachments/schema.ts";
import "../calls/schema.ts";
import "../consent/schema.ts";

export const schema = builder.toSchema({ sortSchema: true });
// Fail at start-up, not on the first request, when a domain file left the schema invalid.
assertValidSchema(schema);
