/**
 * The behaviour every SwarmPort must show, run against the real engine
 * (swarm-contract-docker.test.ts) and against FakeSwarm
 * (swarm-contract-fake.test.ts), so the fake cannot drift from swarm.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  SwarmConflictError,
  SwarmNotFoundError,
  type ServiceEvent,
  type SwarmPort,
  type SwarmService,
  type UpdateState,
} from "../../server/engine/swarm-port.js";

export interface ContractServiceOptions {
  name: string;
  image: string;
  replicas?: number;
  labels?: Record<string, string>;
  failureAction?: SwarmService["failureAction"];
  monitorMs?: number;
  /** A replicated-job of one completion instead of a replicated service. */
  job?: boolean;
}

export interface ContractHarness {
  swarm: SwarmPort;
  /** Creates a replicated service and returns its id. */
  createService(opts: ContractServiceOptions): Promise<string>;
  removeService(id: string): Promise<void>;
  /** `failing` starts and then exits non-zero, so swarm sees its tasks fail. */
  images: { good: string; good2: string; failing: string };
  /** The repository of the three images, as `listImages` takes it. */
  imageRepository: string;
  /** Like `docker tag existing reference`; the tag is removed again by the test. */
  tagImage(existing: string, reference: string): Promise<void>;
  /**
   * Calls `check` until it returns a value, and throws naming `what` when
   * that takes too long. The fake advances its rollouts between calls.
   */
  waitFor<T>(check: () => Promise<T | undefined | false>, what: string): Promise<T>;
  teardown?(): Promise<void>;
}

const SETTLED: UpdateState[] = ["paused", "completed", "rollback_paused", "rollback_completed"];
/**
 * Monitor for updates to the failing image. A failure ends the watch at once,
 * so a long window costs nothing and keeps a slow start on a busy machine from
 * passing the failing task as healthy.
 */
const FAILURE_MONITOR_MS = 5000;
/** A real rollout takes seconds; the harness's waitFor has the tighter limits. */
const TEST_TIMEOUT_MS = 120_000;

export function runSwarmContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(name, () => {
    let h: ContractHarness;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.teardown?.();
    });

    async function createService(opts: Omit<ContractServiceOptions, "name">): Promise<{ id: string; name: string }> {
      const name = `contract-${randomBytes(4).toString("hex")}`;
      const id = await h.createService({ name, ...opts });
      onTestFinished(() => h.removeService(id));
      return { id, name };
    }

    async function getService(id: string): Promise<SwarmService> {
      const service = await h.swarm.findService(id);
      if (!service) throw new Error(`service ${id} not found`);
      return service;
    }

    /** The service once its rollout has stopped moving, whatever the outcome. */
    function waitSettled(id: string): Promise<SwarmService> {
      return h.waitFor(async () => {
        const s = await getService(id);
        return s.updateStatus && SETTLED.includes(s.updateStatus.state) && s;
      }, `the rollout of ${id} to settle`);
    }

    /** Swarm may report the end of a rollout before the replacement tasks run. */
    function waitRunning(id: string, image: string, replicas: number) {
      return h.waitFor(async () => {
        const running = (await h.swarm.listTasks(id)).filter((t) => t.desiredState === "running" && t.state === "running");
        return running.length === replicas && running.every((t) => t.image === image) && running;
      }, `${replicas} running task(s) of ${id} on ${image}`);
    }

    const test = (title: string, fn: () => Promise<void>) => it(title, fn, TEST_TIMEOUT_MS);

    test("lists a created service with its image, replicas, labels, monitor and failure action", async () => {
      const { id, name } = await createService({
        image: h.images.good,
        replicas: 2,
        labels: { "com.example.team": "web" },
        failureAction: "rollback",
        monitorMs: 1500,
      });
      const listed = (await h.swarm.listServices()).find((s) => s.id === id);
      expect(listed).toMatchObject({
        id,
        name,
        image: h.images.good,
        mode: "replicated",
        replicas: 2,
        labels: { "com.example.team": "web" },
        forceUpdate: 0,
        monitorMs: 1500,
        failureAction: "rollback",
      });
      // The engine counts the tasks running in the same answer (the dashboard's running/desired); they may still be starting.
      expect(listed?.runningTasks).toBeGreaterThanOrEqual(0);
      expect(listed?.runningTasks).toBeLessThanOrEqual(2);
      expect(listed?.previousImage).toBeUndefined();
      expect(listed?.updateStatus).toBeUndefined();
    });

    test("finds a service by name and by id, and nothing for an unknown name", async () => {
      const { id, name } = await createService({ image: h.images.good });
      expect((await h.swarm.findService(name))?.id).toBe(id);
      expect((await h.swarm.findService(id))?.name).toBe(name);
      expect(await h.swarm.findService(`contract-unknown-${randomBytes(4).toString("hex")}`)).toBeUndefined();
    });

    test("tells a job (replicated-job) from a service, by name and in the list", async () => {
      const job = await createService({ image: h.images.good, job: true });
      const plain = await createService({ image: h.images.good, replicas: 0 });
      expect((await h.swarm.findService(job.name))?.job).toBe(true);
      expect((await h.swarm.findService(plain.name))?.job).toBe(false);
      const listed = await h.swarm.listServices();
      expect(listed.find((s) => s.id === job.id)?.job).toBe(true);
      expect(listed.find((s) => s.id === plain.id)?.job).toBe(false);
    });

    test("findServices and listTasksOf read several services in one call each, exact ids only; a removed one is absent, or refused in a task filter", async () => {
      const a = await createService({ image: h.images.good, replicas: 2 });
      const b = await createService({ image: h.images.good2 });
      const gone = await createService({ image: h.images.good });
      await h.removeService(gone.id);
      const found = await h.swarm.findServices([a.id, b.id, gone.id]);
      expect(found.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
      expect(found.find((s) => s.id === a.id)).toMatchObject({ name: a.name, image: h.images.good, replicas: 2 });
      // The engine's id filter matches prefixes; a prefix is not an id.
      expect(await h.swarm.findServices([a.id.slice(0, 6)])).toEqual([]);
      await waitRunning(a.id, h.images.good, 2);
      await waitRunning(b.id, h.images.good2, 1);
      const tasks = await h.swarm.listTasksOf([a.id, b.id]);
      expect(new Set(tasks.map((t) => t.serviceId))).toEqual(new Set([a.id, b.id]));
      const one = await h.swarm.listTasks(a.id);
      expect(tasks.filter((t) => t.serviceId === a.id)).toEqual(one);
      const times = tasks.map((t) => Date.parse(t.timestamp));
      expect(times).toEqual([...times].sort((x, y) => y - x));
      await expect(h.swarm.findServices([])).rejects.toThrow(/at least one/);
      await expect(h.swarm.listTasksOf([])).rejects.toThrow(/at least one/);
      // The engine refuses a task filter that names a service it does not know: the whole list, not that service's part.
      await expect(h.swarm.listTasksOf([a.id, gone.id])).rejects.toBeInstanceOf(SwarmNotFoundError);
    });

    test("updateService changes the image, moves the version and keeps the rest of the spec", async () => {
      const { id } = await createService({ image: h.images.good, labels: { keep: "me" }, failureAction: "rollback", monitorMs: 1000 });
      const before = await getService(id);
      const result = await h.swarm.updateService(id, before.version, { image: h.images.good2 });
      expect(Array.isArray(result.warnings)).toBe(true);
      const after = await getService(id);
      expect(after.image).toBe(h.images.good2);
      expect(after.previousImage).toBe(h.images.good);
      // Version.Index is swarm's store-wide index: it grows, by any amount.
      expect(after.version).toBeGreaterThan(before.version);
      expect(after).toMatchObject({ labels: { keep: "me" }, failureAction: "rollback", monitorMs: 1000, forceUpdate: 0 });
    });

    test("an update with a stale version throws SwarmConflictError and changes nothing", async () => {
      const { id } = await createService({ image: h.images.good, monitorMs: 1000 });
      const stale = (await getService(id)).version;
      await h.swarm.updateService(id, stale, { image: h.images.good2 });
      await expect(h.swarm.updateService(id, stale, { image: h.images.good })).rejects.toBeInstanceOf(SwarmConflictError);
      const after = await getService(id);
      expect(after.image).toBe(h.images.good2);
      expect(after.previousImage).toBe(h.images.good);
    });

    test("the rollout of a good image completes with running tasks on the new image, newest task first", async () => {
      const { id } = await createService({ image: h.images.good, replicas: 2, failureAction: "rollback", monitorMs: 1000 });
      const before = await getService(id);
      await h.swarm.updateService(id, before.version, { image: h.images.good2 });
      const settled = await waitSettled(id);
      expect(settled.updateStatus, JSON.stringify(settled.updateStatus)).toMatchObject({ state: "completed" });
      expect(settled.updateStatus?.completedAt).toBeTruthy();
      // The orchestrator writes UpdateStatus into the service, which moves its version again.
      expect(settled.version).toBeGreaterThan(before.version + 1);
      await waitRunning(id, h.images.good2, 2);
      const tasks = await h.swarm.listTasks(id);
      expect(tasks.every((t) => t.serviceId === id)).toBe(true);
      const times = tasks.map((t) => Date.parse(t.timestamp));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    });

    test("with failureAction rollback a failing image ends rollback_completed on the previous image", async () => {
      const { id } = await createService({ image: h.images.good, failureAction: "rollback", monitorMs: FAILURE_MONITOR_MS });
      await h.swarm.updateService(id, (await getService(id)).version, { image: h.images.failing });
      const settled = await waitSettled(id);
      expect(settled.updateStatus, JSON.stringify(settled.updateStatus)).toMatchObject({
        state: "rollback_completed",
        message: "rollback completed",
      });
      expect(settled.image, JSON.stringify(settled)).toBe(h.images.good);
      // An automatic rollback makes PreviousSpec the Spec and leaves no PreviousSpec.
      expect(settled.previousImage, JSON.stringify(settled)).toBeUndefined();
      await waitRunning(id, h.images.good, 1);
      const failed = (await h.swarm.listTasks(id)).find((t) => t.image === h.images.failing && t.state === "failed");
      expect(failed?.error, "a failed task of the failing image carries Status.Err").toMatch(/\S/);
    });

    test("with failureAction pause a failing image ends paused", async () => {
      const { id } = await createService({ image: h.images.good, failureAction: "pause", monitorMs: FAILURE_MONITOR_MS });
      await h.swarm.updateService(id, (await getService(id)).version, { image: h.images.failing });
      const settled = await waitSettled(id);
      expect(settled.updateStatus?.state, JSON.stringify(settled.updateStatus)).toBe("paused");
      expect(settled.updateStatus?.message).toMatch(/^update paused due to failure or early termination of task \S+$/);
      expect(settled.image).toBe(h.images.failing);
    });

    test("rollbackService returns to the previous image and swaps the specs", async () => {
      const { id } = await createService({ image: h.images.good, failureAction: "pause", monitorMs: 1000 });
      await h.swarm.updateService(id, (await getService(id)).version, { image: h.images.good2 });
      const updated = await waitSettled(id);
      expect(updated.updateStatus?.state).toBe("completed");
      await h.swarm.rollbackService(id, updated.version);
      const started = await getService(id);
      expect(started.image).toBe(h.images.good);
      expect(started.updateStatus?.message).toBe("manually requested rollback");
      const settled = await waitSettled(id);
      expect(settled.updateStatus?.state, JSON.stringify(settled.updateStatus)).toBe("rollback_completed");
      expect(settled.previousImage, JSON.stringify(settled)).toBe(h.images.good2);
      await waitRunning(id, h.images.good, 1);
    });

    test("rollbackService is refused when the service has no previous spec", async () => {
      const { id } = await createService({ image: h.images.good });
      await expect(h.swarm.rollbackService(id, (await getService(id)).version)).rejects.toThrow(/previous spec/);
    });

    test("a forced update of the same image bumps ForceUpdate and redeploys the tasks", async () => {
      const { id } = await createService({ image: h.images.good, monitorMs: 1000 });
      const [first] = await waitRunning(id, h.images.good, 1);
      await h.swarm.updateService(id, (await getService(id)).version, { image: h.images.good, force: true });
      const settled = await waitSettled(id);
      expect(settled).toMatchObject({ forceUpdate: 1, image: h.images.good, updateStatus: { state: "completed" } });
      const [replacement] = await waitRunning(id, h.images.good, 1);
      expect(replacement?.id).not.toBe(first?.id);
    });

    test("an update lays the given UpdateConfig and RollbackConfig fields over the spec's and keeps the others", async () => {
      const { id } = await createService({ image: h.images.good, failureAction: "rollback", monitorMs: 1000 });
      await h.swarm.updateService(id, (await getService(id)).version, {
        image: h.images.good2,
        updateConfig: { parallelism: 2, delayMs: 1500, order: "stop-first" },
        rollbackConfig: { monitorMs: 2000, maxFailureRatio: 0.5 },
      });
      const after = await getService(id);
      expect(after.updatePolicy, JSON.stringify(after)).toMatchObject({
        parallelism: 2,
        delayMs: 1500,
        order: "stop-first",
        failureAction: "rollback",
        monitorMs: 1000,
      });
      expect(after.rollbackPolicy, JSON.stringify(after)).toMatchObject({
        parallelism: 1,
        failureAction: "pause",
        monitorMs: 2000,
        maxFailureRatio: 0.5,
      });
      expect(after).toMatchObject({ image: h.images.good2, failureAction: "rollback", monitorMs: 1000 });
    });

    test("lists the local images of a repository with their references, and which ones containers use", async () => {
      const { id } = await createService({ image: h.images.good });
      await waitRunning(id, h.images.good, 1);
      const images = await h.swarm.listImages(h.imageRepository);
      const good = images.find((i) => i.references.includes(h.images.good));
      const good2 = images.find((i) => i.references.includes(h.images.good2));
      expect(good, JSON.stringify(images)).toBeDefined();
      expect(good2, JSON.stringify(images)).toBeDefined();
      expect(good!.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(good!.created).toBeGreaterThan(1_500_000_000);
      const created = images.map((i) => i.created);
      expect(created, "newest first").toEqual([...created].sort((a, b) => b - a));
      expect((await h.swarm.listContainerImageIds()).has(good!.id)).toBe(true);
    });

    test("removing the last reference of an image a container uses is refused; one of two references is only untagged", async () => {
      const { id } = await createService({ image: h.images.good });
      await waitRunning(id, h.images.good, 1);
      await expect(h.swarm.removeImageReference(h.images.good)).rejects.toBeInstanceOf(SwarmConflictError);
      const extra = `${h.images.good}-extra`;
      await h.tagImage(h.images.good, extra);
      await h.swarm.removeImageReference(extra);
      const good = (await h.swarm.listImages(h.imageRepository)).find((i) => i.references.includes(h.images.good));
      expect(good?.references, JSON.stringify(good)).not.toContain(extra);
    });

    test("the event stream reports a service's creation, its updates and its removal, and ends when aborted", async () => {
      const seen: ServiceEvent[] = [];
      let connected = 0;
      const abort = new AbortController();
      const watching = h.swarm.watchServiceEvents({ onEvent: (e) => seen.push(e), onConnected: () => connected++ }, abort.signal);
      onTestFinished(() => abort.abort());
      await h.waitFor(async () => connected > 0, "the event stream to connect");
      const startedAt = Date.now();
      const { id, name } = await createService({ image: h.images.good, monitorMs: 1000 });
      const of = (action: ServiceEvent["action"]) =>
        h.waitFor(async () => seen.find((e) => e.serviceId === id && e.action === action), `a ${action} event`);
      expect(await of("create")).toMatchObject({ name });
      await h.swarm.updateService(id, (await getService(id)).version, { image: h.images.good2 });
      const update = await of("update");
      expect(update.name).toBe(name);
      expect(update.at, "the engine's time of the event, in ms").toBeGreaterThan(startedAt - 60_000);
      await h.removeService(id);
      await of("remove");
      abort.abort();
      await expect(watching).resolves.toBeUndefined();
    });

    test("updating, rolling back or listing tasks of an unknown service throws SwarmNotFoundError", async () => {
      const unknown = `contract-unknown-${randomBytes(4).toString("hex")}`;
      await expect(h.swarm.updateService(unknown, 1, { image: h.images.good })).rejects.toBeInstanceOf(SwarmNotFoundError);
      await expect(h.swarm.rollbackService(unknown, 1)).rejects.toBeInstanceOf(SwarmNotFoundError);
      await expect(h.swarm.listTasks(unknown)).rejects.toBeInstanceOf(SwarmNotFoundError);
    });
  });
}
