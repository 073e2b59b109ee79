/**
 * Group commit: writes requested while the event loop keeps bringing more
 * run in one transaction, and each caller's promise settles only after that
 * transaction has committed. Under concurrent webhooks this turns N commits
 * (each a WAL append of every page it touched, two writes a page) into one,
 * without answering anyone before their write is durable. The batch is
 * written once a turn of the event loop has passed with no write asked for
 * (or after `maxTurns`): a lone write waits two turns, microseconds; under
 * load the webhooks whose bodies arrive in the next turn join the batch
 * instead of starting one of their own (at 10 connections, batches of 10
 * instead of 5, and a page and a half a push fewer). Each write must be a
 * transaction of its own (nested here, so a savepoint): one that throws is
 * then rolled back alone and the others still commit.
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
  opts: {
    maxBatch?: number;
    maxTurns?: number;
    onFlush?: (size: number) => void;
    /**
     * Whether the batch's transaction is still open. Some errors (a full disk, an I/O error) make SQLite roll
     * back the whole transaction, not only the failing write's savepoint: the writes before it are gone, and one
     * after it would run outside any transaction and commit on its own. Such an error ends the batch, rejecting all.
     */
    open?: () => boolean;
  } = {},
): GroupCommit {
  const maxBatch = opts.maxBatch ?? 256;
  const maxTurns = opts.maxTurns ?? 4;
  let pending: Pending[] = [];

  /** Waits while each turn brings more writes, up to maxTurns, then flushes. */
  function schedule() {
    let seen = 0;
    let turns = 0;
    const tick = () => {
      if (pending.length > seen && pending.length < maxBatch && turns < maxTurns) {
        seen = pending.length;
        turns++;
        setImmediate(tick);
      } else flush();
    };
    setImmediate(tick);
  }

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
            if (opts.open && !opts.open()) throw err;
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch (err) {
      // The commit itself failed, or a write's error rolled the whole transaction back: nothing in the batch was written. Newest first, so that
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
      if (pending.length === 1) schedule();
    });
}
