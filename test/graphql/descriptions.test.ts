// GraphiQL's docs pane is where people read the API: every type, field, argument and enum value says what it is.
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType, type GraphQLSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../../src/graphql/index.ts";

const BUILT_IN = new Set(["String", "Int", "Float", "Boolean", "ID"]);

/** Every schema element without a description, as `Type`, `Type.field`, `Type.field(arg)` or `Enum.VALUE`. */
export function undocumented(s: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of Object.values(s.getTypeMap())) {
    if (type.name.startsWith("__") || BUILT_IN.has(type.name)) continue;
    if (!type.description?.trim()) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!field.description?.trim()) missing.push(`${type.name}.${field.name}`);
        for (const arg of "args" in field ? field.args : []) {
          if (!arg.description?.trim()) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) if (!value.description?.trim()) missing.push(`${type.name}.${value.name}`);
    }
  }
  return missing;
}

describe("schema documentation", () => {
  it("describes every type, field, argument and enum value", () => {
    expect(undocumented(schema)).toEqual([]);
  });
});
