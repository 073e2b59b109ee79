import { FakeSwarm } from "../helpers/fake-swarm.js";
import { runSwarmContract } from "./swarm-contract.js";

runSwarmContract("FakeSwarm", async () => {
  const fake = new FakeSwarm();
  const images = { good: "contract/app:good", good2: "contract/app:good2", failing: "contract/app:failing" };
  fake.failImage(images.failing, "task: non-zero exit (1)");
  return {
    swarm: fake,
    images,
    async createService(opts) {
      return fake.addService(opts).id;
    },
    async removeService(id) {
      fake.removeService(id);
    },
    // Each poll moves the simulated rollouts one step, so no test sleeps.
    async waitFor(check, what) {
      for (let i = 0; i < 30; i++) {
        const value = await check();
        if (value !== undefined && value !== false) return value;
        await fake.tick();
      }
      throw new Error(`FakeSwarm: 30 ticks passed without ${what}`);
    },
  };
});
