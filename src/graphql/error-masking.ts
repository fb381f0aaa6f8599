// What a client sees of an error: service errors become GraphQL errors with `extensions.code` and their details;
// GraphQL's own errors (syntax, validation, bad variables) get BAD_USER_INPUT or keep the code they carry; anything
// else is masked, and logged here without the operation's variables.
import { GraphQLError, type ExecutionResult } from "graphql";
import { AppError, isUnavailable } from "../errors.ts";
import { loggableError, scrubText, type Logger } from "../logger.ts";

export function createErrorMasker(logger: Logger) {
  return (error: unknown, message: string): GraphQLError => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof AppError) {
      return new GraphQLError(original.message, {
        nodes: error instanceof GraphQLError ? error.nodes : undefined,
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { ...original.details, code: original.code },
      });
    }
    if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) {
      const inner = original instanceof GraphQLError ? original : error;
      const code = inner.extensions?.code ?? error.extensions?.code ?? "BAD_USER_INPUT";
      return new GraphQLError(inner.message, {
        nodes: error.nodes,
        path: error.path,
        extensions: { ...inner.extensions, code },
      });
    }
    if (isUnavailable(original)) {
      // Retryable: the database is away. Sends are idempotent on clientMessageId, so a retry cannot double them.
      logger.warn({ err: scrubText((original as Error)?.message) }, "database unavailable");
      return new GraphQLError("the service is temporarily unavailable; retry", {
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { code: "UNAVAILABLE", retryable: true },
      });
    }
    logger.error({ err: loggableError(original) }, "unexpected error in a resolver");
    return new GraphQLError(message, {
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });
  };
}

// Yoga's own text for a masked error (@envelop/core's DEFAULT_ERROR_MESSAGE), so the paths outside envelop read the same.
export const MASKED_MESSAGE = "Unexpected error.";

/** For results made outside Yoga's pipeline: their errors masked as Yoga masks them, and counted. */
export function resultMasker(rules: {
  maskError(error: unknown, message: string): GraphQLError;
  countErrors(errors: readonly GraphQLError[]): void;
}) {
  return (result: ExecutionResult): ExecutionResult => {
    if (!result.errors?.length) return result;
    const errors = result.errors.map((e) => rules.maskError(e, MASKED_MESSAGE));
    rules.countErrors(errors);
    return { ...result, errors };
  };
}
