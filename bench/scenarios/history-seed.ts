import Database from "better-sqlite3";
import { statSync } from "node:fs";
import { openDatabase } from "../../server/store/database.js";

export interface SeedOptions {
  rows: number;
  services: number;
  /** Timeline entries per deployment; a real one has 4–8 (queued, resolved, update sent, progress, outcome). */
  eventsPerDeployment: number;
}

export interface SeededHistory {
  path: string;
  rows: number;
  events: number;
  services: string[];
  seedMs: number;
  dbMb: number;
}

// Shares as the history of a busy installation has them: mostly successes, some noise.
const statuses: Array<[string, number]> = [
  ["succeeded", 0.8],
  ["skipped", 0.08],
  ["superseded", 0.05],
  ["failed", 0.04],
  ["rolled_back", 0.03],
];
const triggers: Array<[string, number]> = [
  ["registry", 0.6],
  ["dockerhub", 0.2],
  ["poll", 0.15],
  ["manual", 0.04],
  ["rollback", 0.01],
];

/** A deterministic generator, so two runs seed the same history. */
function createRandom(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

function pick(random: () => number, shares: Array<[string, number]>): string {
  let r = random();
  for (const [value, share] of shares) if ((r -= share) < 0) return value;
  return shares[0]![0];
}

const hex = (n: number) => n.toString(16).padStart(64, "0");

const base32 = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * Ids in the server's layout (server/domain/ids.ts: `dep_` + 10 time + 16
 * random base32 characters, time-ordered), drawn from the seeded generator:
 * the server's own generator asks the kernel for entropy on every
 * millisecond, which would be half the seeding time.
 */
function createSeedIds(random: () => number) {
  return (prefix: string, time: number) => {
    let t = "";
    for (let i = 0, v = time; i < 10; i++, v = Math.floor(v / 32)) t = base32[v % 32]! + t;
    let r = "";
    for (let i = 0; i < 16; i++) r += base32[Math.floor(random() * 32)]!;
    return `${prefix}_${t}${r}`;
  };
}

/**
 * Builds the schema with the real migrations, then writes every row in one
 * transaction through cached statements. The journal is off while seeding
 * (nothing to recover if it fails: the file is thrown away) and WAL is put
 * back afterwards, as the server expects it.
 */
export function seedHistory(path: string, opts: SeedOptions): SeededHistory {
  const started = performance.now();
  openDatabase(path).close();
  const db = new Database(path);
  db.pragma("journal_mode = OFF");
  db.pragma("synchronous = OFF");
  db.pragma("cache_size = -262144");
  const random = createRandom(opts.rows * 31 + opts.services);
  const services = Array.from({ length: opts.services }, (_, i) => `shop_svc-${String(i).padStart(3, "0")}`);
  const serviceIds = services.map((_, i) => `svc${hex(i * 7919).slice(-22)}`);
  let clock = Date.UTC(2025, 0, 1);
  const newId = createSeedIds(random);
  const insertDeployment = db.prepare(
    `insert into deployments (id, trigger_id, service, service_id, image, image_key, digest_hint, digest, pinned_image, previous_image,
       trigger, status, message, failure_kind, requested_by, created_at, started_at, update_sent_at, finished_at)
     values (?, null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertEvent = db.prepare("insert into deployment_events (deployment_id, at, status, message) values (?, ?, ?, ?)");
  const lastDigest = new Array<string>(opts.services).fill(hex(0));
  let events = 0;
  db.transaction(() => {
    for (let i = 0; i < opts.rows; i++) {
      // About one deployment every 30 s: a million rows cover a year.
      clock += 15_000 + Math.floor(random() * 30_000);
      const s = Math.floor(random() * opts.services);
      const service = services[s]!;
      const image = `registry.example.com:5000/shop/${service.slice(5)}:live`;
      const digest = `sha256:${hex(i + 1)}`;
      const status = pick(random, statuses);
      const trigger = pick(random, triggers);
      const previous = `${image}@sha256:${lastDigest[s]}`;
      const ran = status !== "superseded" && status !== "skipped";
      const message =
        status === "succeeded"
          ? "rollout completed: 2/2 tasks running the new digest"
          : status === "failed"
            ? "update paused due to failure or early termination of task 4kq2w9x1c0d3"
            : status === "rolled_back"
              ? "swarm rolled the update back: task 7hd83kd0a1s2 failed its health check"
              : status === "skipped"
                ? `the service already runs sha256:${hex(i)}`
                : "superseded by a newer request for this service";
      const id = newId("dep", clock);
      insertDeployment.run(
        id,
        service,
        serviceIds[s],
        image,
        image,
        digest,
        ran ? digest : null,
        ran ? `${image}@${digest}` : null,
        previous,
        trigger,
        status,
        message,
        status === "failed" || status === "rolled_back" ? "rollout" : null,
        trigger === "manual" || trigger === "rollback" ? "ops-team" : "registry-ci",
        clock,
        clock + 3,
        ran ? clock + 40 : null,
        clock + (ran ? 14_000 : 5),
      );
      if (status === "succeeded") lastDigest[s] = hex(i + 1);
      const timeline = ["queued", `resolved ${image} to ${digest}`, `update sent: ${image}@${digest}`, "1/2 tasks running the new digest", message];
      for (let e = 0; e < opts.eventsPerDeployment; e++) {
        insertEvent.run(
          id,
          clock + e * 3000,
          e === opts.eventsPerDeployment - 1 ? status : e === 0 ? "queued" : "running",
          timeline[e % timeline.length],
        );
        events++;
      }
    }
  })();
  db.pragma("journal_mode = WAL");
  db.close();
  return { path, rows: opts.rows, events, services, seedMs: performance.now() - started, dbMb: statSync(path).size / 2 ** 20 };
}
