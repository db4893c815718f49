// Drivers for Graphile Worker and pg-boss in pgq's side-by-side benchmark.
//
//   DATABASE_URL=postgres://… node driver.mjs <graphile|pgboss> <workload> '<json params>'
//
// The Go harness (bench/node.go) runs one process per workload in a fresh
// database. Progress goes to stdout as "progress N" lines, the outcome as one
// "result {json}" line whose fields match queuebench's Go result types
// (durations in nanoseconds). A workload a system cannot run ends with
// "not available: <reason>" on stderr and exit code 3.
//
// Each system runs at the settings its documentation recommends for
// throughput:
//  - Graphile Worker: the configuration of its performance page — 24
//    concurrent jobs, a pool of 25, a local queue of 500 jobs and batched
//    completion (completeJobBatchDelay/failJobBatchDelay 0).
//  - pg-boss: batch fetching (work() with batchSize) on several concurrent
//    work() loops, polling at its minimum interval of 0.5 s.
import { performance } from "node:perf_hooks";
import pg from "pg";

const [system, workload, paramsJSON] = process.argv.slice(2);
const params = JSON.parse(paramsJSON || "null") ?? {};
const url = process.env.DATABASE_URL;

const NS = 1e6; // nanoseconds per millisecond (performance.now() is in ms)
const BULK_BATCH = 50_000; // same as queuebench.BulkBatch

const say = (line) => process.stdout.write(line + "\n");
const result = (obj) => say("result " + JSON.stringify(obj));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class NotAvailable extends Error {}

// every calls f every ms milliseconds until the returned stop is called.
function every(ms, f) {
  const t = setInterval(f, ms);
  return () => clearInterval(t);
}

// waitUntil polls cond (async) every ms until it is true.
async function waitUntil(cond, ms = 5) {
  while (!(await cond())) await sleep(ms);
}

// ---------------------------------------------------------------- Graphile

const graphileSettings = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
};

const quietLogger = async () => {
  const { Logger } = await import("graphile-worker");
  return new Logger(() => (level, message) => {
    if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`);
  });
};

const graphile = {
  async setup() {
    const { runMigrations } = await import("graphile-worker");
    await runMigrations({ connectionString: url, logger: await quietLogger() });
  },

  async start(taskList) {
    const { run } = await import("graphile-worker");
    return run({
      connectionString: url,
      noHandleSignals: true,
      logger: await quietLogger(),
      taskList,
      preset: { worker: graphileSettings },
    });
  },

  async bulkInsert(pool, n) {
    for (let left = n; left > 0; left -= BULK_BATCH) {
      const k = Math.min(left, BULK_BATCH);
      // add_jobs takes an array of job_spec; one call per batch.
      await pool.query(
        `SELECT graphile_worker.add_jobs(array(
           SELECT ROW('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
           FROM generate_series(1, $1::int)))`,
        [k],
      );
    }
    await pool.query("ANALYZE graphile_worker._private_jobs");
  },

  waiting: async (pool) =>
    Number((await pool.query("SELECT count(*) AS n FROM graphile_worker._private_jobs")).rows[0].n),

  async drain(n) {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      let t = performance.now();
      await this.bulkInsert(pool, n);
      const insert = performance.now() - t;
      let done = 0;
      let allDone;
      const handled = new Promise((r) => (allDone = r));
      const stop = every(100, () => say("progress " + done));
      t = performance.now();
      const runner = await this.start({
        noop: async () => {
          if (++done === n) allDone();
        },
      });
      await handled;
      // Completions are batched: done when the last one is stored.
      await waitUntil(async () => (await this.waiting(pool)) === 0);
      const drain = performance.now() - t;
      stop();
      say("progress " + done);
      await runner.stop();
      return { jobs: n, insert_ns: Math.round(insert * NS), drain_ns: Math.round(drain * NS) };
    } finally {
      await pool.end();
    }
  },

  async enqueuer(producers) {
    const pool = new pg.Pool({ connectionString: url, max: producers });
    return {
      enqueue: (i) => pool.query("SELECT graphile_worker.add_job('pickup', json_build_object('i', $1::int))", [i]),
      close: () => pool.end(),
    };
  },

  async worker(onPickup) {
    const runner = await this.start({ pickup: async (payload) => onPickup(payload.i) });
    return () => runner.stop();
  },

  enqueueTx: (client) => client.query("SELECT graphile_worker.add_job('noop', '{}'::json)"),
};

// ----------------------------------------------------------------- pg-boss

const bossBatchSize = 4000;
const bossLoops = 4;

async function newBoss(max = 10) {
  const { default: PgBoss } = await import("pg-boss");
  const boss = new PgBoss({ connectionString: url, max, schedule: false });
  boss.on("error", (err) => process.stderr.write(`pg-boss: ${err.message}\n`));
  await boss.start();
  return boss;
}

const pgboss = {
  async setup() {
    const boss = await newBoss();
    await boss.createQueue("noop");
    await boss.createQueue("pickup");
    await boss.stop({ graceful: false, wait: true });
  },

  async bulkInsert(boss, pool, n) {
    for (let left = n; left > 0; left -= BULK_BATCH) {
      const k = Math.min(left, BULK_BATCH);
      await boss.insert(Array.from({ length: k }, () => ({ name: "noop", data: {} })));
    }
    await pool.query("ANALYZE pgboss.job");
  },

  waiting: async (pool, name) =>
    Number(
      (await pool.query("SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state < 'completed'", [name])).rows[0].n,
    ),

  async work(boss, name, handler) {
    for (let i = 0; i < bossLoops; i++) {
      await boss.work(name, { batchSize: bossBatchSize, pollingIntervalSeconds: 0.5 }, handler);
    }
  },

  async drain(n) {
    const boss = await newBoss(bossLoops + 4);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      let t = performance.now();
      await this.bulkInsert(boss, pool, n);
      const insert = performance.now() - t;
      let done = 0;
      const stop = every(100, () => say("progress " + done));
      t = performance.now();
      await this.work(boss, "noop", async (jobs) => {
        done += jobs.length;
      });
      // A batch is completed after its handler returns: done when stored.
      await waitUntil(async () => done >= n && (await this.waiting(pool, "noop")) === 0);
      const drain = performance.now() - t;
      stop();
      say("progress " + done);
      return { jobs: n, insert_ns: Math.round(insert * NS), drain_ns: Math.round(drain * NS) };
    } finally {
      await boss.stop({ graceful: false, wait: true });
      await pool.end();
    }
  },

  async enqueuer(producers) {
    const boss = await newBoss(producers + 2);
    return {
      enqueue: (i) => boss.send("pickup", { i }),
      close: () => boss.stop({ graceful: false, wait: true }),
    };
  },

  async worker(onPickup) {
    const boss = await newBoss(bossLoops + 2);
    await this.work(boss, "pickup", async (jobs) => {
      for (const job of jobs) onPickup(job.data.i);
    });
    return () => boss.stop({ graceful: false, wait: true });
  },

  async enqueueTx(client, boss) {
    await boss.send("noop", {}, { db: { executeSql: (text, values) => client.query(text, values) } });
  },
};

// ------------------------------------------------------- shared workloads

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(Math.max(rank - 1, 0), sorted.length - 1)];
}

// steady mirrors queuebench.Pickups.Run: an open-loop schedule of
// rate·duration jobs, each enqueued in a transaction of its own by one of
// `producers` concurrent producers, and the time from each enqueue's commit
// to its handler starting.
async function steady(sys, { rate, duration_ns, producers }) {
  const n = Math.max(1, Math.floor(rate * (duration_ns / 1e9)));
  const returned = new Float64Array(n);
  const started = new Float64Array(n);
  let handled = 0;
  let enqueued = 0;
  let warm;
  const warmed = new Promise((r) => (warm = r));
  const stopWorker = await sys.worker((i) => {
    if (i < 0) return warm();
    if (i >= n || started[i] !== 0) return;
    started[i] = performance.now();
    handled++;
  });
  const producer = await sys.enqueuer(producers);
  try {
    await producer.enqueue(-1);
    await warmed;
    const stopProgress = every(100, () => say("progress " + handled));
    const t0 = performance.now();
    let next = 0;
    const loop = async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        await producer.enqueue(i);
        returned[i] = performance.now();
        enqueued++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, producers) }, loop));
    const lastEnqueue = performance.now();
    const graceEnd = lastEnqueue + 5000; // queuebench.SteadyGrace
    while (handled < enqueued && performance.now() < graceEnd) await sleep(2);
    stopProgress();
    say("progress " + handled);

    let lastStart = t0;
    let lastReturn = t0;
    const lat = [];
    let h = 0;
    for (let i = 0; i < n; i++) {
      if (returned[i] === 0) continue;
      lastReturn = Math.max(lastReturn, returned[i]);
      if (started[i] === 0) continue;
      h++;
      lastStart = Math.max(lastStart, started[i]);
      lat.push(Math.max(started[i] - returned[i], 0));
    }
    lat.sort((a, b) => a - b);
    const tail = h < enqueued ? performance.now() - lastEnqueue : Math.max(lastStart - lastReturn, 0);
    return {
      offered: rate,
      enqueued,
      handled: h,
      enqueue_rate: lastReturn > t0 ? enqueued / ((lastReturn - t0) / 1000) : 0,
      throughput: lastStart > t0 ? h / ((lastStart - t0) / 1000) : 0,
      tail_ns: Math.round(tail * NS),
      p50_ns: Math.round(percentile(lat, 0.5) * NS),
      p95_ns: Math.round(percentile(lat, 0.95) * NS),
      p99_ns: Math.round(percentile(lat, 0.99) * NS),
      max_ns: Math.round((lat.length ? lat[lat.length - 1] : 0) * NS),
    };
  } finally {
    await producer.close();
    await stopWorker();
  }
}

// tx mirrors queuebench.AlternateTx: `clients` connections run
// BEGIN; INSERT; [enqueue;] COMMIT in alternating halves.
async function tx(sys, { duration_ns, clients }) {
  const pool = new pg.Pool({ connectionString: url, max: clients });
  const boss = system === "pgboss" ? await newBoss(2) : null;
  try {
    await pool.query("CREATE TABLE IF NOT EXISTS bench_orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)");
    const half = duration_ns / 2 / 1e6;
    const counts = [0, 0];
    const runFor = async (enqueue, ms) => {
      const end = performance.now() + ms;
      let n = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          const client = await pool.connect();
          try {
            while (performance.now() < end) {
              await client.query("BEGIN");
              await client.query("INSERT INTO bench_orders (note) VALUES ('order')");
              if (enqueue) await sys.enqueueTx(client, boss);
              await client.query("COMMIT");
              n++;
            }
          } finally {
            client.release();
          }
        }),
      );
      return n;
    };
    for (let round = 0; round < 2; round++) {
      counts[0] += await runFor(false, half);
      counts[1] += await runFor(true, half);
    }
    const secs = (2 * half) / 1000;
    return { bare: counts[0] / secs, with_enqueue: counts[1] / secs };
  } finally {
    if (boss) await boss.stop({ graceful: false, wait: true });
    await pool.end();
  }
}

// ---------------------------------------------------------------- main

const systems = { graphile, pgboss };

async function main() {
  const sys = systems[system];
  if (!sys) throw new Error(`unknown system ${system}`);
  if (!url) throw new Error("DATABASE_URL is not set");
  switch (workload) {
    case "setup":
      return sys.setup();
    case "drain":
      return result(await sys.drain(params.jobs));
    case "steady":
      return result(await steady(sys, params));
    case "tx":
      return result(await tx(sys, params));
    case "growth":
      throw new NotAvailable("not run for the Node.js systems (make bench-peers' time budget): their drivers run workloads 1, 2 and 4");
    case "workflow":
      throw new NotAvailable(
        system === "graphile"
          ? "Graphile Worker has no chord"
          : "pg-boss has no chord",
      );
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof NotAvailable) {
      process.stderr.write("not available: " + err.message + "\n");
      process.exit(3);
    }
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write("\n" + ((err && err.message) || String(err)).split("\n")[0] + "\n");
    process.exit(1);
  },
);
