/**
 * A bound on the rollouts under way at once (DEPLOYER_MAX_ROLLOUTS): a push
 * matching hundreds of services must not have the manager reschedule them
 * all at once. A deployment beyond the bound stays `queued`, with a timeline
 * entry saying it waits for a slot, and takes one in the order the services'
 * lanes asked (first come, first served), whatever service it is for.
 *
 * A deployment that only waits (its registry does not answer, and it tries
 * again in a few seconds) lends its slot meanwhile (`lend`): a registry that
 * is down must not hold every slot for DEPLOYER_REGISTRY_RETRY while the
 * deployments of other registries wait behind it. It takes a slot again,
 * in line with the others, before it goes on.
 */
import type { DeploymentStore } from "../store/deployment-store.js";

export function createRolloutSlots(opts: { max: number; store: Pick<DeploymentStore, "addEvent" | "findDeployment"> }) {
  let taken = 0;
  const waiting: Array<{ id: string; take: () => void }> = [];
  /** The deployments holding a slot now. */
  const holding = new Set<string>();

  const free = () => {
    // Over the bound (resumed rollouts took slots beyond it), a slot that frees is not passed on.
    const next = taken > opts.max ? undefined : waiting.shift();
    if (next) next.take();
    else taken--;
  };

  async function take(id: string, resumed: boolean): Promise<void> {
    if (taken < opts.max || resumed) {
      taken++;
    } else {
      const ahead = waiting.length;
      opts.store.addEvent(
        id,
        `waiting for a rollout slot: ${taken} rollouts under way, at most ${opts.max} at once (DEPLOYER_MAX_ROLLOUTS)${ahead ? `; ${ahead} ahead of it` : ""}`,
      );
      // The slot is passed on by free(): `taken` stays as it was.
      await new Promise<void>((resolve) => waiting.push({ id, take: resolve }));
    }
    holding.add(id);
  }

  return {
    /**
     * Resolves with the release once `id` holds a slot. A deployment whose
     * update was already sent (followed again after a restart) is under way
     * on the swarm: it takes a slot at once, over the bound if need be.
     */
    async acquire(id: string): Promise<() => void> {
      const dep = opts.store.findDeployment(id);
      await take(id, dep?.status === "running" && !!dep.updateSentAt);
      return () => {
        if (holding.delete(id)) free();
      };
    },
    /** Runs `during` (a wait) with `id`'s slot given to the next in line, and takes a slot again after it. */
    async lend<T>(id: string, during: () => Promise<T>): Promise<T> {
      if (!holding.delete(id)) return during();
      free();
      try {
        return await during();
      } finally {
        await take(id, false);
      }
    },
    /** Rollouts under way and deployments waiting for a slot, in their order. */
    state(): { running: number; max: number; waiting: string[] } {
      return { running: taken, max: opts.max, waiting: waiting.map((w) => w.id) };
    },
  };
}

export type RolloutSlots = ReturnType<typeof createRolloutSlots>;
