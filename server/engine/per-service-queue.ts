/**
 * Work on one service at a time, in order, for the engine's event listeners
 * (the service index, the drift watcher): a piece of work still waiting to
 * start covers the ones asked after it, since it reads the service when it
 * runs, not when it was asked.
 */
export function createPerServiceQueue(onError?: (err: unknown, serviceId: string) => void) {
  const chains = new Map<string, Promise<void>>();
  const waiting = new Set<string>();
  return {
    enqueue(serviceId: string, work: () => Promise<void> | void): void {
      if (waiting.has(serviceId)) return;
      waiting.add(serviceId);
      let next = (chains.get(serviceId) ?? Promise.resolve()).then(() => {
        waiting.delete(serviceId);
        return work();
      });
      if (onError) next = next.catch((err: unknown) => onError(err, serviceId));
      const done = next.finally(() => chains.get(serviceId) === done && chains.delete(serviceId));
      chains.set(serviceId, done);
    },
    /** Whether any work is waiting or under way. */
    busy: () => chains.size > 0,
    /** Resolves once every piece of work asked for so far is done. */
    async settled(): Promise<void> {
      while (chains.size) await Promise.allSettled([...chains.values()]);
    },
  };
}
