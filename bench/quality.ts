/**
 * Quality job benchmark: one run of the quality job (shared/quality/job.ts) over a window of captured
 * answers on the embedded S3, each with its outcome, half of them paired with a batch answer of the
 * same record, and the offline record of every one for the skew check. Timed: the whole run (list and
 * read the captures, read and index the outcomes, judge per version and per day, scan the offline
 * records and recompute the sampled vectors, write the report). What docs/capacity-and-cost.md prices the job's Lambda by.
 *
 *   npx tsx bench/quality.ts [--answers 200000]
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT } from '#shared/features/index.ts';
import {
  captureHourPrefix,
  captureLine,
  captureObjectKey,
  captureRecord,
} from '#shared/inference/capture.ts';
import { requireInteger } from '#shared/model/errors.ts';
import { offlineDatasetHeader, offlineRow } from '#shared/offline/features-dataset.ts';
import { runQuality } from '#shared/quality/job.ts';
import { readOfflineRecords } from '#shared/quality/skew.ts';
import { KEYS } from '#shared/resources.ts';
import { MODEL_NAME, startKeelFixture } from './keel-fixture.ts';
import { round } from './util.ts';

export interface QualityBenchOptions {
  /** Captured real-time answers (each with an outcome); as many batch answers pair with half of them. */
  readonly answers?: number;
}

export interface QualityBenchResult {
  answers: number;
  captureRecords: number;
  outcomes: number;
  offlineRows: number;
  ms: number;
  recordsPerSecond: number;
  /** The skew check's scan of the offline records alone (a second pass over the same dataset). */
  offlineScanMs: number;
  offlineRowsPerSecond: number;
  /** Peak resident memory of the bench process during the run (the embedded S3 included), MiB. */
  peakRssMb: number;
  realizedAuc: number | null;
  estimatedAuc: number | null;
}

const OBJECT_LINES = 10_000;

export async function runQualityBench(options: QualityBenchOptions = {}): Promise<QualityBenchResult> {
  const answers = options.answers ?? 200_000;
  requireInteger('answers', answers, 2);
  const fixture = await startKeelFixture({ rows: 20_000, storeRows: 1 });
  try {
    const { s3 } = fixture.clients;
    const names = fixture.servers.names;
    const at = new Date(Date.now() - 3_600_000);
    const customers = [...generateRecords({ rows: answers, seed: 5, asOf: at })];
    const x = new Float32Array(FEATURE_COUNT);
    let captureRecords = 0;
    let lines: string[] = [];
    const flush = async () => {
      if (lines.length === 0) return;
      await s3.send(
        new PutObjectCommand({
          Bucket: names.outputs,
          Key: captureObjectKey(captureHourPrefix(MODEL_NAME, at), at),
          Body: `${lines.join('\n')}\n`,
        }),
      );
      captureRecords += lines.length;
      lines = [];
    };
    let features = `${offlineDatasetHeader(false)}\n`;
    let outcomes = 'customer_id,churned,observed_at\n';
    const observed = new Date().toISOString();
    for (const [i, customer] of customers.entries()) {
      encodeInto(customer, x, 0);
      // A score that knows the label a little: a realized AUC well above one half.
      const probability = Math.min(
        0.99,
        Math.max(0.01, 0.25 + 0.3 * customer.churned + ((i * 7919) % 100) / 250),
      );
      const answer = {
        customerId: customer.customer_id,
        requestId: `r-${i}`,
        model: { name: MODEL_NAME, version: 'v1' },
        probability,
        prediction: probability >= 0.5 ? 1 : 0,
        vector: x,
        storedEventTime: customer.event_time,
      };
      lines.push(captureLine(captureRecord(answer, at, 'api')));
      if (i % 2 === 0) lines.push(captureLine(captureRecord(answer, at, 'batch')));
      if (lines.length >= OBJECT_LINES) await flush();
      features += `${offlineRow(customer, false)}\n`;
      outcomes += `${customer.customer_id},${customer.churned},${observed}\n`;
    }
    await flush();
    const runDate = at.toISOString().slice(0, 10);
    await s3.send(
      new PutObjectCommand({
        Bucket: names.features,
        Key: `features/run_date=${runDate}/bench/part-00000.csv`,
        Body: features,
      }),
    );
    await s3.send(
      new PutObjectCommand({ Bucket: names.raw, Key: `${KEYS.outcomesPrefix}bench.csv`, Body: outcomes }),
    );

    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    const started = performance.now();
    const result = await runQuality(
      {
        s3,
        registry: fixture.registry,
        rawBucket: names.raw,
        featuresBucket: names.features,
        outputsBucket: names.outputs,
        modelName: MODEL_NAME,
        emit: () => {},
      },
      { from: new Date(at.getTime() - 60_000).toISOString(), to: new Date().toISOString() },
    ).finally(() => clearInterval(sampler));
    const ms = performance.now() - started;
    const v1 = result.report.versions.find((v) => v.version === 'v1');
    const scanStarted = performance.now();
    const wanted = [{ customerId: customers.at(-1)!.customer_id, eventTime: customers.at(-1)!.event_time }];
    await readOfflineRecords(s3, names.features, wanted, { from: runDate, to: runDate });
    const offlineScanMs = performance.now() - scanStarted;
    return {
      answers,
      captureRecords,
      outcomes: answers,
      offlineRows: answers,
      ms: round(ms),
      recordsPerSecond: Math.round(captureRecords / (ms / 1000)),
      offlineScanMs: round(offlineScanMs),
      offlineRowsPerSecond: Math.round(answers / (offlineScanMs / 1000)),
      peakRssMb: Math.round(Math.max(peak, process.memoryUsage().rss) / 2 ** 20),
      realizedAuc: v1?.realized?.auc ?? null,
      estimatedAuc: v1?.estimated?.auc ?? null,
    };
  } finally {
    await fixture.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { answers: { type: 'string' } } });
  const result = await runQualityBench(values.answers ? { answers: Number(values.answers) } : {});
  console.log(JSON.stringify(result, null, 2));
}
