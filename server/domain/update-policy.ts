/**
 * The `UpdateConfig` / `RollbackConfig` fields of a service spec that the
 * `--update-*` / `--rollback-*` flags of `docker service update` set. Only
 * the fields present are meant: the rest stay as the spec has them.
 */
export interface UpdatePolicy {
  parallelism?: number;
  delayMs?: number;
  failureAction?: "pause" | "continue" | "rollback";
  monitorMs?: number;
  maxFailureRatio?: number;
  order?: "stop-first" | "start-first";
}
