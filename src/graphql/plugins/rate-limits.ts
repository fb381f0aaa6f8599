// Where the abuse limits meet GraphQL: one envelop plugin charges every top-level field of an operation, aliases
// included so 50 aliased sends (or username lookups) cost 50, before anything executes, and every subscription it
// starts. HTTP and graphql-ws both run through it (graphql-ws subscriptions through rateLimitCharge, from
// src/graphql/ws-subscribe.ts). A mutation field not named below falls in "other", a query field in
// "reads", so a new operation is limited from day one.
import type { Plugin } from "graphql-yoga";
import {
  GraphQLError,
  Kind,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type SelectionSetNode,
  type ValueNode,
} from "graphql";
import type { RateLimitFamily, RateLimits } from "../../config.ts";
import { AppError } from "../../errors.ts";
import { canonicalId } from "../../ids.ts";
import { chargesFor, type Charge, type RateLimiter } from "./rate-limiter.ts";
import type { Context } from "../builder.ts";

export const MUTATION_FAMILIES: Record<string, RateLimitFamily> = {
  sendMessage: "sends",
  sendGroupMessage: "sends",
  uploadPreKeys: "keyUploads",
  rotateSignedPreKey: "keyUploads",
  rotateLastResortKyberPreKey: "keyUploads",
  uploadKeyPackages: "keyUploads",
  claimPreKeyBundles: "bundleClaims",
  claimKeyPackages: "bundleClaims",
  registerAccount: "registrations",
  linkDevice: "registrations",
  createDeviceLink: "deviceLinks",
  deactivateDevice: "deviceLinks",
  createGroup: "groupCommits",
  commitGroup: "groupCommits",
  updateGroup: "groupCommits",
  setGroupRole: "groupCommits",
  leaveGroup: "groupCommits",
  ackGroupEvents: "receipts",
  ackEnvelopes: "receipts",
  markRead: "receipts",
  deleteMessage: "receipts",
  setTyping: "receipts",
  createAttachmentUpload: "attachments",
};

/** Query fields outside "reads": relay credentials, and what tells about other users (enumerating usernames). */
export const QUERY_FAMILIES: Record<string, RateLimitFamily> = {
  turnServers: "turnCredentials",
  userByUsername: "lookups",
  user: "lookups",
  devices: "lookups",
  presence: "lookups",
};

/**
 * The arguments naming whose keys a claim takes: each requester-target pair is limited on its own, every target of
 * the list (up to claimKeyPackages' 2,000), once per distinct user in its canonical spelling, so neither a long
 * list nor an upper-case spelling walks around the counter.
 */
const CLAIM_TARGETS: Record<string, string> = { claimPreKeyBundles: "userId", claimKeyPackages: "userIds" };
// claimKeyPackages' own bound: a longer list is refused by validation before it claims anything, so it is charged
// as one call and not as the 200,000 counters an 8 MiB body could name.
const MAX_TARGETS_CHARGED = 2000;

export function rateLimitPlugin(limiter: RateLimiter, limits: RateLimits): Plugin {
  const charge = rateLimitCharge(limiter, limits);
  const chargeOrStop = (args: ExecutionArgs, stop: (result: ExecutionResult) => void) => {
    const refusal = charge(args);
    return refusal?.then((r) => void (r && stop(r)));
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => chargeOrStop(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => chargeOrStop(args, setResultAndStopExecution),
  };
}

/**
 * Charges an operation: undefined when nothing is charged, otherwise a promise of its refusal (the operation's whole
 * result: nothing runs, no subscription starts) or of undefined when allowed.
 */
export function rateLimitCharge(limiter: RateLimiter, limits: RateLimits) {
  return function charge(args: ExecutionArgs): Promise<ExecutionResult | undefined> | undefined {
    const op = getOperationAST(args.document, args.operationName);
    if (!op) return;
    const ctx = args.contextValue as unknown as Context;
    const device = ctx.actor ? `${ctx.actor.userId}:${ctx.actor.deviceId}` : null;
    const variables = (args.variableValues ?? {}) as Record<string, unknown>;
    const charges: Charge[] = [];
    for (const field of rootFields(args.document, op.selectionSet)) {
      const name = field.name.value;
      if (name === "__typename") continue;
      const family =
        op.operation === "subscription"
          ? "subscriptions"
          : op.operation === "mutation"
            ? (MUTATION_FAMILIES[name] ?? "other")
            : (QUERY_FAMILIES[name] ?? "reads");
      const extra: Charge[] = [];
      const targetArg = CLAIM_TARGETS[name];
      if (targetArg && device && limits.bundleClaimsPerTarget) {
        const targets = argStrings(field, targetArg, variables);
        for (const target of targets.length <= MAX_TARGETS_CHARGED ? new Set(targets.map(canonicalId)) : []) {
          extra.push({ name: "bundleClaimsPerTarget", subject: `${device}>${target}`, limit: limits.bundleClaimsPerTarget });
        }
      }
      charges.push(...chargesFor(limits, family, { device, ip: ctx.clientIp }, extra));
    }
    if (charges.length === 0) return;
    return limiter.consume(charges).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof AppError)) throw err;
        return { errors: [new GraphQLError(err.message, { extensions: { ...err.details, code: err.code } })] };
      },
    );
  };
}

/** The operation's top-level fields, through inline fragments and fragment spreads. */
function rootFields(doc: DocumentNode, set: SelectionSetNode, seen = new Set<string>()): FieldNode[] {
  const out: FieldNode[] = [];
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) out.push(s);
    else if (s.kind === Kind.INLINE_FRAGMENT) out.push(...rootFields(doc, s.selectionSet, seen));
    else if (!seen.has(s.name.value)) {
      seen.add(s.name.value);
      const frag = doc.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === s.name.value);
      if (frag && frag.kind === Kind.FRAGMENT_DEFINITION) out.push(...rootFields(doc, frag.selectionSet, seen));
    }
  }
  return out;
}

function argStrings(field: FieldNode, name: string, variables: Record<string, unknown>): string[] {
  const arg = field.arguments?.find((a) => a.name.value === name);
  if (!arg) return [];
  const flat = (v: ValueNode): unknown[] => {
    if (v.kind === Kind.VARIABLE) return [variables[v.name.value]].flat();
    if (v.kind === Kind.LIST) return v.values.flatMap(flat);
    if (v.kind === Kind.STRING) return [v.value];
    return [];
  };
  return flat(arg.value).filter((x): x is string => typeof x === "string" && x.length <= 64);
}
