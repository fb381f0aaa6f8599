// How hot statements keep one plan. A statement sent with parameters is a named statement on its connection;
// PostgreSQL plans its first five executions with the values ("custom" plans), then keeps a generic plan only if that
// does not look costlier than the custom ones did. An array parameter defeats this: a custom plan counts the array's
// elements (two sends in a batch at low rates), the generic one assumes ten, so the generic plan always looks
// costlier and the statement is planned again on every call (for the read of a batch of sends, 0.24 ms of planning
// against 0.09 ms of execution, measured with pg_stat_statements).

/**
 * An array parameter (`$2::uuid[]`) as a scalar subquery: its value is known only when the statement runs, so every
 * plan assumes the same size for it, custom plans cost what the generic plan costs, and the generic plan is kept.
 * For statements whose plan is right at any batch size (key probes per element); the subquery itself is an InitPlan
 * evaluated once per execution.
 */
export const unsizedArray = (param: string) => `(SELECT ${param})`;
