/**
 * `npm run soak`: a bounded soak of Keel's local API on 127.0.0.1 at a fixed request rate, with a model
 * promotion in the middle. The API runs in a child process (bench/serve-keel.ts: embedded S3 and
 * DynamoDB, the real predict handler), so its resident memory is the server's alone.
 *
 *   npm run soak                                  60 s at 200 req/s
 *   npm run soak -- --seconds 15 --rate 100       the short form CI runs
 *   options: --rows N (customers the first model is trained on and the store holds; default 5,000)
 *            --out FILE (default bench/results/soak.json)
 *
 * Checks (exit 1 when one fails): zero errors (every answer a 200); every answer carries a valid
 * `model.version`: v1 for requests sent before the promotion, v2 at the end, nothing else ever; the
 * server's RSS grows less than 10% from the end of the warm-up to the end. p50/p99 are reported.
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type AwsTarget, createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { LOCAL_ENVIRONMENT, resourceNames } from '#shared/resources.ts';
import { promoteVersion, registerTrainedModel } from '../test/support/model.ts';
import { servingEnvironment } from './events.ts';
import { startKeelServer } from './serve-keel.ts';
import { cpuSnapshot, otherCpuShare, processRssMb, quantile, round, sleep, trackChild } from './util.ts';

const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = dirname(SELF);
/** Requests in flight at most: past this the server is not keeping up, and the soak says so. */
const MAX_IN_FLIGHT = 256;
const MAX_RSS_GROWTH = 0.1;

interface Sample {
  readonly sentMs: number;
  readonly latencyMs: number;
  readonly status: number;
  readonly version: string | undefined;
}

async function predictOnce(url: string, customerId: string, started: number): Promise<Sample> {
  const sentMs = performance.now() - started;
  try {
    const response = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId }),
    });
    const body = (await response.json()) as { model?: { version?: unknown } };
    const version = typeof body.model?.version === 'string' ? body.model.version : undefined;
    return { sentMs, latencyMs: performance.now() - started - sentMs, status: response.status, version };
  } catch {
    return { sentMs, latencyMs: performance.now() - started - sentMs, status: 0, version: undefined };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      rate: { type: 'string', default: '200' },
      rows: { type: 'string', default: '5000' },
      out: { type: 'string', default: join(BENCH_DIR, 'results', 'soak.json') },
    },
  });
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const rows = Number(values.rows);
  if (!(seconds >= 5 && seconds <= 3600) || !(rate >= 1 && rate <= 5000) || !(rows >= 1000)) {
    console.error('soak: --seconds 5..3600, --rate 1..5000, --rows ≥ 1000');
    return 2;
  }
  const warmupSeconds = Math.min(10, Math.max(2, Math.round(seconds / 6)));
  // The server checks the champion every 2 s, so the promotion shows within the run.
  process.env.KEEL_MODEL_REFRESH_SECONDS = '2';
  console.log(`soak: building a served model on ${rows} customers (child process)…`);
  const server = await startKeelServer({ rows });
  const storeRows = server.fixture?.storeRows ?? rows;
  const id = (i: number) => `c-${String((i % storeRows) + 1).padStart(6, '0')}`;
  try {
    console.log(
      `soak: ${server.url} (pid ${server.pid}); warm-up ${warmupSeconds} s, then ${seconds} s at ${rate} req/s`,
    );
    // Warm-up, not measured: every stored customer read once (the store's caches fill), then the rate.
    for (let i = 0; i < storeRows; i += 16) {
      const batch = Array.from({ length: Math.min(16, storeRows - i) }, (_, j) => id(i + j));
      await Promise.all(batch.map((customerId) => predictOnce(server.url, customerId, 0)));
    }
    await drive(server.url, rate, warmupSeconds * 1000, id, () => undefined);
    const rssAfterWarmup = processRssMb(server.pid);
    const cpuBefore = cpuSnapshot();

    let promotion: { startedMs: number; doneMs: number; version: string } | undefined;
    let promoting: Promise<void> | undefined;
    const rssSamples: number[] = [];
    let lastRssAt = 0;
    const samples = await drive(server.url, rate, seconds * 1000, id, (elapsedMs, started) => {
      if (elapsedMs - lastRssAt >= 1000) {
        lastRssAt = elapsedMs;
        const rss = processRssMb(server.pid);
        if (rss !== null) rssSamples.push(rss);
      }
      // Training takes a few seconds: start it early enough that the new champion lands mid-run.
      if (!promoting && elapsedMs >= (seconds * 1000) / 3) {
        const startedMs = performance.now() - started;
        promoting = (async () => {
          const version = await promoteInChild(server.target);
          promotion = { startedMs, doneMs: performance.now() - started, version };
          console.log(`soak: promoted ${version} at ${round(promotion.doneMs / 1000)} s`);
        })();
      }
    });
    await promoting;
    const rssAtEnd = processRssMb(server.pid);
    // Other processes' CPU use during the run: latency on a shared machine means little without it.
    const otherCpu = otherCpuShare(cpuBefore, cpuSnapshot());

    const ok = samples.filter((s) => s.status === 200);
    const errors = samples.length - ok.length;
    const versions = new Map<string, number>();
    for (const s of samples)
      versions.set(s.version ?? '(missing)', (versions.get(s.version ?? '(missing)') ?? 0) + 1);
    const beforePromotion = samples.filter((s) => promotion && s.sentMs < promotion.startedMs);
    // The server checks the champion every 2 s; 2 s more for requests already in flight.
    const tail = samples.filter((s) => promotion && s.sentMs > promotion.doneMs + 4_000);
    const firstV2 = samples.find((s) => s.version === promotion?.version);
    const latencies = Float64Array.from(ok.map((s) => s.latencyMs)).sort();
    const rssGrowth = rssAfterWarmup && rssAtEnd ? (rssAtEnd - rssAfterWarmup) / rssAfterWarmup : null;
    const checks = {
      zeroErrors: errors === 0,
      everyResponseHasAVersion: samples.every((s) => s.version !== undefined && /^v\d+$/.test(s.version)),
      onlyV1AndV2: [...versions.keys()].every((v) => v === 'v1' || v === promotion?.version),
      promotionHappened: promotion?.version === 'v2',
      v1BeforePromotion: beforePromotion.length > 0 && beforePromotion.every((s) => s.version === 'v1'),
      v2AtTheEnd: tail.length > 0 && tail.every((s) => s.version === promotion?.version),
      rssGrowthUnder10Percent: rssGrowth !== null && rssGrowth < MAX_RSS_GROWTH,
    };
    const result = {
      at: new Date().toISOString(),
      seconds,
      targetRate: rate,
      warmupSeconds,
      rows,
      machine: {
        cpus: cpus().length,
        loadAverage1m: round(loadavg()[0]!, 2),
        otherProcessesCpuShare: otherCpu,
      },
      requests: samples.length,
      achievedRate: round(samples.length / seconds),
      errors,
      statuses: Object.fromEntries(
        [...new Set(samples.map((s) => s.status))].map((status) => [
          status,
          samples.filter((s) => s.status === status).length,
        ]),
      ),
      versions: Object.fromEntries(versions),
      latencyMs: {
        p50: round(quantile(latencies, 0.5), 2),
        p90: round(quantile(latencies, 0.9), 2),
        p99: round(quantile(latencies, 0.99), 2),
        max: round(latencies[latencies.length - 1] ?? 0, 2),
      },
      promotion: promotion && {
        version: promotion.version,
        atSeconds: round(promotion.doneMs / 1000, 2),
        firstServedAfterMs: firstV2 ? round(firstV2.sentMs + firstV2.latencyMs - promotion.doneMs) : null,
      },
      serverRssMb: {
        afterWarmup: rssAfterWarmup,
        end: rssAtEnd,
        max: rssSamples.length > 0 ? Math.max(...rssSamples) : null,
        /** Every 5 s of the measured run: a leak climbs, a one-off allocation steps once. */
        every5s: rssSamples.filter((_, i) => i % 5 === 0),
        growthPercent: rssGrowth === null ? null : round(rssGrowth * 100, 2),
      },
      checks,
      passed: Object.values(checks).every(Boolean),
    };
    await mkdir(dirname(values.out), { recursive: true });
    await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
    // Committed results pass `npm run lint`: Biome formats the JSON its way.
    spawnSync(join(BENCH_DIR, '..', 'node_modules', '.bin', 'biome'), ['format', '--write', values.out], {
      timeout: 60_000,
    });
    console.log(JSON.stringify(result, null, 2));
    console.log(`soak: ${result.passed ? 'PASSED' : 'FAILED'} (results in ${values.out})`);
    return result.passed ? 0 : 1;
  } finally {
    await server.stop();
  }
}

/**
 * Sends requests at a fixed rate (open loop: the schedule does not wait for answers) for `durationMs`,
 * then waits for the ones in flight. `tick` runs every 10 ms with the elapsed time.
 */
async function drive(
  url: string,
  rate: number,
  durationMs: number,
  id: (i: number) => string,
  tick: (elapsedMs: number, started: number) => void,
): Promise<Sample[]> {
  const started = performance.now();
  const samples: Sample[] = [];
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  let dropped = 0;
  for (let elapsed = 0; elapsed < durationMs; elapsed = performance.now() - started) {
    tick(elapsed, started);
    const due = Math.floor((elapsed / 1000) * rate);
    for (; sent < due; sent++) {
      if (inFlight.size >= MAX_IN_FLIGHT) {
        dropped++;
        continue;
      }
      const request = predictOnce(url, id(sent * 7919), started).then((sample) => {
        samples.push(sample);
        inFlight.delete(request);
      });
      inFlight.add(request);
    }
    await sleep(10);
  }
  await Promise.all(inFlight);
  if (dropped > 0) {
    // Not sent because the server fell behind: count them as errors, not silently.
    for (let i = 0; i < dropped; i++)
      samples.push({ sentMs: durationMs, latencyMs: 0, status: -1, version: undefined });
  }
  return samples.sort((a, b) => a.sentMs - b.sentMs);
}

/**
 * Trains a second model on other customers, registers and promotes it, in a child process (this file
 * with --promote) so that training does not stall the load generator. Resolves with the version.
 */
function promoteInChild(target: AwsTarget): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = trackChild(
      // At the lowest CPU priority: on a small shared machine, training must not starve the server.
      spawn(
        'nice',
        ['-n', '19', process.execPath, '--import', 'tsx', SELF, '--promote', JSON.stringify(target)],
        {
          env: { ...process.env, ...servingEnvironment() },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      ),
    );
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    child.once('exit', (code) => {
      const version = /^PROMOTED (v\d+)$/m.exec(out)?.[1];
      if (code === 0 && version) resolve(version);
      else reject(new Error(`the promotion failed (exit ${code}): ${out}`));
    });
  });
}

async function promoteSecondModel(target: AwsTarget): Promise<void> {
  const clients = createAwsClients(target);
  const names = resourceNames(LOCAL_ENVIRONMENT);
  try {
    const customers = [...generateRecords({ rows: 3_000, seed: 77, asOf: new Date() })];
    const { version } = await registerTrainedModel({ clients, names }, customers, { seed: 7, nTrees: 20 });
    await promoteVersion({ clients, names }, version);
    console.log(`PROMOTED ${version}`);
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
  }
}

const promoteIndex = process.argv.indexOf('--promote');
if (promoteIndex !== -1) await promoteSecondModel(JSON.parse(process.argv[promoteIndex + 1]!) as AwsTarget);
else process.exitCode = await main();
