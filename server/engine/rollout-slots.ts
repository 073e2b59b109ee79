/**
 * A bound on the rollouts under way at once (DEPLOYER_MAX_ROLLOUTS): a push
 * matching hundreds of services must not have the manager reschedule them
 * all at once. A deployment beyond the bound stays `queued`, with a timeline
 * entry saying it waits for a slot, and takes one in the order the services'
 * lanes asked (first come, first served), whatever service it is for.
 */
import type { DeploymentStore } from "../store/deployment-store.js";

export function createRolloutSlots(opts: { max: number; store: Pick<DeploymentStore, "addEvent" | "findDeployment"> }) {
  let taken = 0;
  const waiting: Array<{ id: string; take: () => void }> = [];

  const release = () => {
    // Over the bound (resumed rollouts took slots beyond it), a slot that frees is not passed on.
    const next = taken > opts.max ? undefined : waiting.shift();
    if (next) next.take();
    else taken--;
  };

  return {
    /**
     * Resolves with the release once `id` holds a slot. A deployment whose
     * update was already sent (followed again after a restart) is under way
     * on the swarm: it takes a slot at once, over the bound if need be.
     */
    async acquire(id: string): Promise<() => void> {
      const dep = opts.store.findDeployment(id);
      const resumed = dep?.status === "running" && !!dep.updateSentAt;
      if (taken < opts.max || resumed) {
        taken++;
        return once(release);
      }
      const ahead = waiting.length;
      opts.store.addEvent(
        id,
        `waiting for a rollout slot: ${taken} rollouts under way, at most ${opts.max} at once (DEPLOYER_MAX_ROLLOUTS)${ahead ? `; ${ahead} ahead of it` : ""}`,
      );
      await new Promise<void>((take) => waiting.push({ id, take }));
      return once(release);
    },
    /** Rollouts under way and deployments waiting for a slot, in their order. */
    state(): { running: number; max: number; waiting: string[] } {
      return { running: taken, max: opts.max, waiting: waiting.map((w) => w.id) };
    },
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

export type RolloutSlots = ReturnType<typeof createRolloutSlots>;
