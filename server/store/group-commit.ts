/**
 * Group commit: writes requested during the same turn of the event loop run
 * in one transaction, and each caller's promise settles only after that
 * transaction has committed. Under concurrent webhooks this turns N commits
 * (each a WAL append of every page it touched: about 100 µs on this
 * project's CI disk) into one, without answering anyone before their write
 * is durable. Each write must be a transaction of its own (nested here, so
 * a savepoint): one that throws is then rolled back alone and the others
 * still commit.
 */
export type GroupCommit = <T>(write: () => T) => Promise<T>;

interface Pending {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export function createGroupCommit(
  /** Runs the whole batch inside one transaction. */
  inTransaction: (batch: () => void) => void,
  opts: { maxBatch?: number; onFlush?: (size: number) => void } = {},
): GroupCommit {
  const maxBatch = opts.maxBatch ?? 256;
  let pending: Pending[] = [];

  function flush() {
    const batch = pending.splice(0, maxBatch);
    if (pending.length > 0) setImmediate(flush);
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
    try {
      inTransaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: item.write() });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch (err) {
      // The commit itself failed: nothing in the batch was written. Newest first, so that
      // callers undoing what they did in memory for their write undo it in reverse order.
      for (const item of [...batch].reverse()) item.reject(err);
      return;
    }
    opts.onFlush?.(batch.length);
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.err);
    });
  }

  return <T>(write: () => T) =>
    new Promise<T>((resolve, reject) => {
      pending.push({ write, resolve: resolve as (value: unknown) => void, reject });
      if (pending.length === 1) setImmediate(flush);
    });
}
