/**
 * An in-memory swarm for in-process tests of the deploy engine. It records
 * every call and plays rollouts step by step, the way swarmkit's updater
 * does, so it passes the same contract suite as the real engine
 * (test/engine/swarm-contract.ts). The steps come from `await fake.tick()`,
 * or, on a FakeClock, from that clock's time moving.
 */
import { parseImageRef, repoKey } from "../../server/domain/image-ref.js";
import {
  SwarmConflictError,
  SwarmNotFoundError,
  SwarmUnavailableError,
  type LocalImage,
  type ServiceEventHandlers,
  type ServiceUpdate,
  type SwarmPort,
  type SwarmService,
  type SwarmTask,
  type UpdatePolicy,
  type UpdateStatus,
} from "../../server/engine/swarm-port.js";
import type { FakeClock } from "./fake-clock.js";
import { FakeEventStream } from "./fake-events.js";

export interface FakeServiceOptions {
  name: string;
  image: string;
  replicas?: number;
  labels?: Record<string, string>;
  monitorMs?: number;
  failureAction?: SwarmService["failureAction"];
  mode?: SwarmService["mode"];
  /** A replicated-job (or, with mode global, a global-job): listed and inspected as the engine shows one. */
  job?: boolean;
  /** Replaces the UpdateConfig built from monitorMs and failureAction. */
  updatePolicy?: UpdatePolicy;
  rollbackPolicy?: UpdatePolicy;
}

export interface FakeCall {
  method: keyof SwarmPort;
  args: unknown[];
}

interface Spec {
  image: string;
  labels: Record<string, string>;
  mode: SwarmService["mode"];
  job: boolean;
  replicas?: number;
  forceUpdate: number;
  updatePolicy: UpdatePolicy;
  rollbackPolicy: UpdatePolicy;
}

/** swarmkit's defaults for a spec without UpdateConfig / RollbackConfig. */
const DEFAULT_POLICY: UpdatePolicy = { parallelism: 1, failureAction: "pause", monitorMs: 5000, maxFailureRatio: 0, order: "stop-first" };

interface FakeTask extends SwarmTask {
  forceUpdate: number;
}

/** Where a service's rollout stands; each tick moves it one step. */
type Rollout = { kind: "update"; step: "start" | "replace" | "judge" } | { kind: "rollback"; step: "replace" | "finish" };

interface FakeService {
  id: string;
  name: string;
  version: number;
  spec: Spec;
  previousSpec?: Spec;
  updateStatus?: UpdateStatus;
  tasks: FakeTask[];
  rollout?: Rollout;
  failedTaskId?: string;
}

export class FakeSwarm implements SwarmPort {
  readonly calls: FakeCall[] = [];
  /** The service events the engine would send; `events.setDown(true)` drops the stream. */
  readonly events = new FakeEventStream();
  private readonly services = new Map<string, FakeService>();
  private readonly images = new Map<string, { references: Set<string>; created: number }>();
  private readonly failingImages = new Map<string, string>();
  private readonly conflicts = new Set<string>();
  private unavailable = false;
  /** Like swarm's raft index: one counter for the whole store, so versions jump. */
  private index = 100;
  private ids = 0;
  private lastTime = 0;
  private timer?: NodeJS.Timeout;
  private readonly clock?: FakeClock;
  private readonly stepMs: number;
  /** Fake time that passed during a rollout and has not yet made a step. */
  private unsteppedMs = 0;
  private unsubscribe?: () => void;
  private readonly taskHistoryLimit?: number;
  private readonly keepCalls: boolean;
  private readonly onCall?: (call: FakeCall) => void;
  private readonly callWaiters = new Set<() => void>();

  /**
   * With a `clock`, each rollout step takes `stepMs` (1 by default) of that
   * clock's time, and tasks carry its timestamps: rollouts move as fake time
   * moves. With `autoTickMs` (the benchmarks, which need the load of real
   * time), they step on a real timer. Otherwise only `tick()` moves them.
   * Long runs set `taskHistoryLimit` (swarm's TaskHistoryRetentionLimit, 5 by
   * default there) and `keepCalls: false` with an `onCall` observer, so the
   * fake's own memory does not grow with every call.
   */
  constructor(
    options: {
      clock?: FakeClock;
      stepMs?: number;
      autoTickMs?: number;
      taskHistoryLimit?: number;
      keepCalls?: boolean;
      onCall?: (call: FakeCall) => void;
    } = {},
  ) {
    this.taskHistoryLimit = options.taskHistoryLimit;
    this.keepCalls = options.keepCalls ?? true;
    this.onCall = options.onCall;
    this.clock = options.clock;
    this.stepMs = options.stepMs ?? 1;
    this.unsubscribe = this.clock?.onAdvance((elapsedMs) => this.elapse(elapsedMs));
    if (options.autoTickMs) this.timer = setInterval(() => void this.tick(), options.autoTickMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
  }

  addService(opts: FakeServiceOptions): SwarmService {
    const id = this.nextId("svc");
    const mode = opts.mode ?? "replicated";
    const spec: Spec = {
      image: opts.image,
      labels: { ...opts.labels },
      mode,
      job: opts.job ?? false,
      replicas: mode === "replicated" ? (opts.replicas ?? 1) : undefined,
      forceUpdate: 0,
      updatePolicy: opts.updatePolicy ?? { parallelism: 1, monitorMs: opts.monitorMs ?? 5000, failureAction: opts.failureAction ?? "pause" },
      rollbackPolicy: opts.rollbackPolicy ?? {},
    };
    const service: FakeService = { id, name: opts.name, version: ++this.index, spec, tasks: [] };
    for (const slot of this.slots(service)) service.tasks.push(this.newTask(service, slot, "running"));
    this.services.set(id, service);
    this.emit("create", service);
    return this.toService(service);
  }

  removeService(idOrName: string): void {
    const s = this.lookup(idOrName);
    if (s) this.services.delete(s.id);
    if (s) this.emit("remove", s);
  }

  /** New tasks of `image` fail with `error` (swarm's `Status.Err`). */
  failImage(image: string, error = "task: non-zero exit (1)"): void {
    this.failingImages.set(image, error);
  }

  setUnavailable(unavailable: boolean): void {
    this.unavailable = unavailable;
    this.events.setDown(unavailable, "cannot reach the Docker engine (FakeSwarm set unavailable)");
  }

  /** While on, ping() and listServices() never answer, like an engine that accepts connections and hangs. */
  setHanging(hanging: boolean): void {
    this.hanging = hanging;
    if (!hanging) for (const release of this.hung.splice(0)) release();
  }

  private hanging = false;
  private readonly hung: Array<() => void> = [];

  /** Holds the call until setHanging(false); the held call then fails, as a timed-out request would. */
  private async hangIfAsked(): Promise<void> {
    if (!this.hanging) return;
    await new Promise<void>((resolve) => this.hung.push(resolve));
    throw new SwarmUnavailableError("the Docker engine did not answer (FakeSwarm hung)");
  }

  /**
   * The next update of this service gets no answer, as when the connection drops or the deadline passes after
   * the request was sent: it is `applied` or not (applied by default), and then fails with its answer lost, or
   * with `hang` never answers at all (a server that stops meanwhile); with `down` the engine is out of reach from then on.
   */
  loseUpdateAnswer(idOrName: string, how: { applied?: boolean; hang?: boolean; down?: boolean } = {}): void {
    this.lostAnswers.set(this.get(idOrName).id, { applied: how.applied ?? true, hang: how.hang ?? false, down: how.down ?? false });
  }

  private readonly lostAnswers = new Map<string, { applied: boolean; hang: boolean; down: boolean }>();

  private async loseAnswer(lost: { hang: boolean; down: boolean }): Promise<never> {
    if (lost.down) this.setUnavailable(true);
    if (lost.hang) await new Promise<never>(() => {});
    throw new SwarmUnavailableError("the Docker engine did not answer within 30000 ms (FakeSwarm lost the answer)", { answerLost: true });
  }

  /** The next update of this service is refused by the engine with `message`, answered with `status` (a spec it will not take: 400). */
  refuseUpdate(idOrName: string, message: string, status = 400): void {
    this.refusals.set(this.get(idOrName).id, { message, status });
  }

  private readonly refusals = new Map<string, { message: string; status: number }>();

  /** The next update of this service loses a race with another writer. */
  conflictOnce(idOrName: string): void {
    this.conflicts.add(this.get(idOrName).id);
  }

  callsOf(method: keyof SwarmPort): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  /** Resolves once `method` has been called `count` times in all. */
  async callCount(method: keyof SwarmPort, count: number, timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let waiter = () => {};
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = () => {
          if (this.callsOf(method).length >= count) resolve();
        };
        this.callWaiters.add(waiter);
        waiter();
        timer = setTimeout(() => reject(new Error(`expected ${count} calls of ${method}, got ${this.callsOf(method).length}`)), timeoutMs);
      });
    } finally {
      this.callWaiters.delete(waiter);
      clearTimeout(timer);
    }
  }

  /**
   * Moves every running rollout one step. On a clock, a step is `stepMs` of
   * its time: the clock moves, so whatever sleeps on it and is due wakes too,
   * and the tick resolves once they have had the turn to look.
   */
  async tick(): Promise<void> {
    if (!this.clock) return this.stepAll();
    this.clock.advance(this.stepMs);
    await nextTurn();
  }

  /** Ticks until no rollout is in progress (on a clock, after a turn for whatever was about to start one). */
  async settle(maxTicks = 20): Promise<void> {
    if (this.clock) await nextTurn();
    for (let i = 0; i < maxTicks && this.rolling(); i++) await this.tick();
  }

  private rolling(): boolean {
    return [...this.services.values()].some((s) => s.rollout);
  }

  private stepAll(): void {
    for (const s of this.services.values()) this.step(s);
  }

  /** The clock moved: one step per `stepMs` that passed while a rollout was under way. */
  private elapse(elapsedMs: number): void {
    this.unsteppedMs += elapsedMs;
    while (this.unsteppedMs >= this.stepMs && this.rolling()) {
      this.stepAll();
      this.unsteppedMs -= this.stepMs;
    }
    if (!this.rolling()) this.unsteppedMs = 0;
  }

  async ping(): Promise<void> {
    this.record("ping", []);
    await this.hangIfAsked();
  }

  async listServices(): Promise<SwarmService[]> {
    this.record("listServices", []);
    await this.hangIfAsked();
    return [...this.services.values()].map((s) => this.toService(s));
  }

  async findService(idOrName: string): Promise<SwarmService | undefined> {
    this.record("findService", [idOrName]);
    const s = this.lookup(idOrName);
    return s && this.toService(s);
  }

  async updateService(id: string, version: number, update: ServiceUpdate): Promise<{ warnings: string[] }> {
    this.record("updateService", [id, version, { ...update }]);
    const s = this.get(id);
    if (this.conflicts.delete(s.id)) {
      // The concurrent write that made us lose the race moved the version.
      s.version = ++this.index;
      throw new SwarmConflictError("rpc error: code = Unknown desc = update out of sequence");
    }
    this.checkVersion(s, version);
    const refusal = this.refusals.get(s.id);
    this.refusals.delete(s.id);
    // As the adapter hears the engine refuse a spec (swarmkit's InvalidArgument is a 400).
    if (refusal !== undefined) {
      throw new SwarmUnavailableError(`Docker engine answered ${refusal.status}: ${refusal.message}`, { status: refusal.status });
    }
    const lost = this.lostAnswers.get(s.id);
    this.lostAnswers.delete(s.id);
    if (lost && !lost.applied) return this.loseAnswer(lost);
    s.previousSpec = s.spec;
    s.spec = {
      ...s.spec,
      image: update.image,
      forceUpdate: s.spec.forceUpdate + (update.force ? 1 : 0),
      updatePolicy: overlay(s.spec.updatePolicy, update.updateConfig),
      rollbackPolicy: overlay(s.spec.rollbackPolicy, update.rollbackConfig),
    };
    s.version = ++this.index;
    // Swarm resets UpdateStatus on every update and only starts a rollout when a task is out of date.
    s.updateStatus = undefined;
    s.failedTaskId = undefined;
    s.rollout = this.dirtySlots(s).length > 0 ? { kind: "update", step: "start" } : undefined;
    this.emit("update", s);
    if (lost) return this.loseAnswer(lost);
    return { warnings: [] };
  }

  async rollbackService(id: string, version: number): Promise<void> {
    this.record("rollbackService", [id, version]);
    const s = this.get(id);
    this.checkVersion(s, version);
    if (!s.previousSpec) {
      // What the engine answers (FailedPrecondition → 400) when there is nothing to go back to.
      throw new SwarmUnavailableError(`Docker engine answered 400: service ${s.id} does not have a previous spec`);
    }
    // A manual rollback swaps Spec and PreviousSpec (an automatic one drops PreviousSpec).
    [s.spec, s.previousSpec] = [s.previousSpec, s.spec];
    this.setStatus(s, "rollback_started", "manually requested rollback", { start: true });
    s.rollout = { kind: "rollback", step: "replace" };
  }

  async listTasks(serviceId: string): Promise<SwarmTask[]> {
    this.record("listTasks", [serviceId]);
    const s = this.get(serviceId);
    return s.tasks
      .map(({ forceUpdate: _, ...task }) => ({ ...task }))
      .sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
  }

  async findServices(ids: string[]): Promise<SwarmService[]> {
    this.record("findServices", [ids]);
    if (ids.length === 0) throw new Error("findServices needs at least one id: the engine lists every service for none");
    return ids.flatMap((id) => {
      const s = this.services.get(id);
      return s ? [this.toService(s)] : [];
    });
  }

  async listTasksOf(serviceIds: string[]): Promise<SwarmTask[]> {
    this.record("listTasksOf", [serviceIds]);
    if (serviceIds.length === 0) throw new Error("listTasksOf needs at least one service id: the engine lists every task for none");
    // Like the engine: one service it does not know fails the whole list (404).
    const missing = serviceIds.find((id) => !this.services.has(id));
    if (missing) throw new SwarmNotFoundError(`service ${missing} not found`);
    return serviceIds
      .flatMap((id) => this.services.get(id)!.tasks)
      .map(({ forceUpdate: _, ...task }) => ({ ...task }))
      .sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
  }

  /** Like the engine's event stream: until `signal` aborts; events come on a later turn. */
  async watchServiceEvents(handlers: ServiceEventHandlers, signal: AbortSignal): Promise<void> {
    try {
      this.record("watchServiceEvents", []);
    } catch {
      // Unavailable: the stream is down, and the watcher hears of it when it comes back.
    }
    return this.events.watch(handlers, signal);
  }

  private emit(action: "create" | "update" | "remove", s: FakeService): void {
    this.events.emit({ action, serviceId: s.id, name: s.name, at: this.nowMs() });
  }

  /** Puts an image into the fake node's store (what a pull or a build would do). */
  addImage(image: { id: string; references: string[]; created?: number }): void {
    this.images.set(image.id, { references: new Set(image.references), created: image.created ?? Math.floor(this.nowMs() / 1000) });
  }

  /** Like `docker tag`: one more reference to an image that has `existing`. */
  tagImage(existing: string, reference: string): void {
    const found = [...this.images.values()].find((i) => i.references.has(existing));
    if (!found) throw new SwarmNotFoundError(`no such image: ${existing}`);
    found.references.add(reference);
  }

  /** The engine's `reference` filter: the familiar repository name of a tag or digest. */
  async listImages(repository: string): Promise<LocalImage[]> {
    this.record("listImages", [repository]);
    const wanted = repoKey(parseImageRef(repository));
    return [...this.images.entries()]
      .filter(([, i]) => [...i.references].some((r) => repoKey(parseImageRef(r)) === wanted))
      .sort(([, a], [, b]) => b.created - a.created)
      .map(([id, i]) => ({ id, references: [...i.references], created: i.created }));
  }

  /** Every task is a container, running or stopped, of the image its reference names. */
  async listContainerImageIds(): Promise<Set<string>> {
    this.record("listContainerImageIds", []);
    const used = new Set<string>();
    for (const task of [...this.services.values()].flatMap((s) => s.tasks)) {
      const id = this.imageIdOf(task.image);
      if (id) used.add(id);
    }
    return used;
  }

  async removeImageReference(reference: string): Promise<void> {
    this.record("removeImageReference", [reference]);
    const entry = [...this.images.entries()].find(([, i]) => i.references.has(reference));
    if (!entry) throw new SwarmNotFoundError(`No such image: ${reference}`);
    const [id, image] = entry;
    if (image.references.size === 1 && (await this.listContainerImageIds()).has(id)) {
      throw new SwarmConflictError(
        `conflict: unable to remove repository reference "${reference}" (must force) - container is using its referenced image ${id}`,
      );
    }
    image.references.delete(reference);
    if (image.references.size === 0) this.images.delete(id);
  }

  /** A pinned `repo:tag@sha256:…` runs the image whose `repo@sha256:…` the pull recorded. */
  private imageIdOf(reference: string): string | undefined {
    const digestForm = reference.includes("@")
      ? `${reference.slice(0, reference.indexOf("@")).replace(/:[^:/]+$/, "")}${reference.slice(reference.indexOf("@"))}`
      : undefined;
    for (const [id, image] of this.images) {
      if (image.references.has(reference) || (digestForm && image.references.has(digestForm))) return id;
    }
    return undefined;
  }

  private step(s: FakeService): void {
    const r = s.rollout;
    if (!r) return;
    if (r.kind === "update" && r.step === "start") {
      this.setStatus(s, "updating", "update in progress", { start: true });
      r.step = "replace";
    } else if (r.kind === "update" && r.step === "replace") {
      // Like parallelism 1: a failing image stops the rollout at its first task.
      const error = this.failingImages.get(s.spec.image);
      const slots = this.dirtySlots(s);
      for (const slot of error && (s.spec.updatePolicy.failureAction ?? "pause") !== "continue" ? slots.slice(0, 1) : slots) {
        const task = this.replaceTask(s, slot, error ? "failed" : "running", error);
        if (error) s.failedTaskId ??= task.id;
      }
      r.step = "judge";
    } else if (r.kind === "update" && r.step === "judge") {
      const failed = s.failedTaskId;
      if (failed && (s.spec.updatePolicy.failureAction ?? "pause") === "pause") {
        this.setStatus(s, "paused", `update paused due to failure or early termination of task ${failed}`);
        s.rollout = undefined;
      } else if (failed && (s.spec.updatePolicy.failureAction ?? "pause") === "rollback" && s.previousSpec) {
        s.spec = s.previousSpec;
        s.previousSpec = undefined;
        this.setStatus(s, "rollback_started", `update rolled back due to failure or early termination of task ${failed}`);
        s.rollout = { kind: "rollback", step: "replace" };
      } else {
        this.setStatus(s, "completed", "update completed", { done: true });
        s.rollout = undefined;
      }
    } else if (r.kind === "rollback" && r.step === "replace") {
      for (const slot of this.dirtySlots(s)) this.replaceTask(s, slot, "running");
      r.step = "finish";
    } else {
      this.setStatus(s, "rollback_completed", "rollback completed", { done: true });
      s.rollout = undefined;
    }
  }

  /**
   * The orchestrator writes UpdateStatus into the service, which moves its
   * version. An automatic rollback keeps the StartedAt of the failed update.
   */
  private setStatus(s: FakeService, state: UpdateStatus["state"], message: string, at: { start?: boolean; done?: boolean } = {}): void {
    const startedAt = at.start ? this.now() : s.updateStatus?.startedAt;
    s.updateStatus = { state, message, startedAt, completedAt: at.done ? this.now() : undefined };
    s.version = ++this.index;
    this.emit("update", s);
  }

  private slots(s: FakeService): Array<number | undefined> {
    return s.spec.mode === "global" ? [undefined] : Array.from({ length: s.spec.replicas ?? 1 }, (_, i) => i + 1);
  }

  /** Slots whose current task does not run the spec (image or ForceUpdate differ). */
  private dirtySlots(s: FakeService): Array<number | undefined> {
    return this.slots(s).filter((slot) => {
      const task = s.tasks.find((t) => t.slot === slot && t.desiredState === "running");
      return !task || task.image !== s.spec.image || task.forceUpdate !== s.spec.forceUpdate;
    });
  }

  private replaceTask(s: FakeService, slot: number | undefined, state: "running" | "failed", error?: string): FakeTask {
    for (const old of s.tasks) {
      if (old.slot !== slot || old.desiredState !== "running") continue;
      old.desiredState = "shutdown";
      if (old.state === "running") old.state = "shutdown";
      old.timestamp = this.now();
    }
    const task = this.newTask(s, slot, state, error);
    s.tasks.push(task);
    this.pruneHistory(s, slot);
    return task;
  }

  /** Drops the oldest finished tasks of a slot beyond the retention limit, as swarm's task reaper does. */
  private pruneHistory(s: FakeService, slot: number | undefined): void {
    if (!this.taskHistoryLimit) return;
    let excess = s.tasks.filter((t) => t.slot === slot).length - this.taskHistoryLimit;
    s.tasks = s.tasks.filter((t) => !(excess > 0 && t.slot === slot && t.desiredState !== "running" && excess-- > 0));
  }

  private newTask(s: FakeService, slot: number | undefined, state: "running" | "failed", error?: string): FakeTask {
    return {
      id: this.nextId("task"),
      serviceId: s.id,
      slot,
      nodeId: "fake-node-1",
      image: s.spec.image,
      forceUpdate: s.spec.forceUpdate,
      // The restart policy takes a failed task off "running" at once.
      desiredState: state === "failed" ? "shutdown" : "running",
      state,
      error,
      message: "started",
      timestamp: this.now(),
    };
  }

  private toService(s: FakeService): SwarmService {
    return {
      id: s.id,
      name: s.name,
      version: s.version,
      image: s.spec.image,
      labels: { ...s.spec.labels },
      mode: s.spec.mode,
      job: s.spec.job,
      replicas: s.spec.replicas,
      runningTasks: s.tasks.filter((t) => t.state === "running").length,
      forceUpdate: s.spec.forceUpdate,
      monitorMs: s.spec.updatePolicy.monitorMs || 5000,
      failureAction: s.spec.updatePolicy.failureAction ?? "pause",
      previousImage: s.previousSpec?.image,
      updateStatus: s.updateStatus && { ...s.updateStatus },
      updatePolicy: { ...s.spec.updatePolicy },
      rollbackPolicy: { ...s.spec.rollbackPolicy },
    };
  }

  private record(method: keyof SwarmPort, args: unknown[]): void {
    const call = { method, args };
    if (this.keepCalls) this.calls.push(call);
    this.onCall?.(call);
    for (const waiter of this.callWaiters) waiter();
    if (this.unavailable) throw new SwarmUnavailableError("cannot reach the Docker engine (FakeSwarm set unavailable)");
  }

  private checkVersion(s: FakeService, version: number): void {
    if (s.version !== version) {
      throw new SwarmConflictError(`service ${s.id} is at version ${s.version}, not ${version}`);
    }
  }

  private lookup(idOrName: string): FakeService | undefined {
    return this.services.get(idOrName) ?? [...this.services.values()].find((s) => s.name === idOrName);
  }

  private get(idOrName: string): FakeService {
    const s = this.lookup(idOrName);
    if (!s) throw new SwarmNotFoundError(`service ${idOrName} not found`);
    return s;
  }

  private nextId(prefix: string): string {
    return `${prefix}${String(++this.ids).padStart(6, "0")}`;
  }

  private nowMs(): number {
    return this.clock?.now() ?? Date.now();
  }

  /** The clock's time (the real one without a clock), but strictly increasing, so "newest first" is never a tie. */
  private now(): string {
    this.lastTime = Math.max(this.nowMs(), this.lastTime + 1);
    return new Date(this.lastTime).toISOString();
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function overlay(current: UpdatePolicy, patch: UpdatePolicy | undefined): UpdatePolicy {
  if (!patch) return current;
  return { ...(Object.keys(current).length ? current : DEFAULT_POLICY), ...patch };
}
