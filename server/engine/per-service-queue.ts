/**
 * Work on one service at a time, in order, for the engine's event listeners
 * (the service index, the drift watcher). Work that reads the service when it
 * runs covers the same kind of work asked after it while it still waits to
 * start; work on a snapshot (a full list's view of the service) covers
 * nothing, and is never covered.
 */
export function createPerServiceQueue(onError?: (err: unknown, serviceId: string) => void) {
  const chains = new Map<string, Promise<void>>();
  /** The last work asked for each service that has not started yet, when it reads the service live. */
  const waiting = new Map<string, object>();
  return {
    enqueue(serviceId: string, work: () => Promise<void> | void, opts: { readsLive?: boolean } = {}): void {
      const live = opts.readsLive ?? true;
      if (live && waiting.has(serviceId)) return;
      const token = {};
      if (live) waiting.set(serviceId, token);
      else waiting.delete(serviceId);
      let next = (chains.get(serviceId) ?? Promise.resolve()).then(() => {
        if (waiting.get(serviceId) === token) waiting.delete(serviceId);
        return work();
      });
      if (onError) next = next.catch((err: unknown) => onError(err, serviceId));
      const done = next.finally(() => chains.get(serviceId) === done && chains.delete(serviceId));
      chains.set(serviceId, done);
    },
    /** Whether any work is waiting or under way. */
    busy: () => chains.size > 0,
    /** The services with work waiting or under way. */
    pending: () => chains.keys(),
    /** Resolves once every piece of work asked for so far is done. */
    async settled(): Promise<void> {
      while (chains.size) await Promise.allSettled([...chains.values()]);
    },
  };
}
