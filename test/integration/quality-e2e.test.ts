import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmStatus } from '#local/alarms.ts';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createDocumentClient, createS3Client } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { jsonObjectsOf } from '#shared/inference/capture-reader.ts';
import { ALARM_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { getRecords, writeRecords } from '#shared/online-store/store.ts';
import type { QualityReport } from '#shared/quality/types.ts';
import { TEST_EMULATOR } from '../support/aws.ts';
import { startMonitoredPlatform } from '../support/monitoring.ts';

/**
 * Ground truth end to end on `keel up`: fresh customers are scored by the API and by batch scoring,
 * their outcomes imported, and `keel quality check` judges each version — realized AUC equal to an
 * independent computation on the same joined rows, an estimate before the outcomes within the stated
 * error, batch/real-time consistency, a concept shift that pages through the quality alarm (naming the
 * version) while the data-drift alarms stay quiet, and a feature changed behind the ETL's back named by
 * the skew check.
 */

const ROWS = 3000;
/** docs/monitoring.md states the estimate's error on generated data; this is its bound here. */
const ESTIMATE_AUC_ERROR = 0.05;

type Platform = Awaited<ReturnType<typeof startMonitoredPlatform>>;
let p: Platform;

beforeAll(async () => {
  if (TEST_EMULATOR === 'moto') return;
  // A 10,000-row bootstrap: held-out figures steady enough that 3,000 fresh customers do not page.
  p = await startMonitoredPlatform('quality', { KEEL_BOOTSTRAP_ROWS: '10000' });
}, 180_000);

afterAll(async () => {
  await p?.close();
});

const stateOf = (alarms: readonly AlarmStatus[], id: string) => alarms.find((a) => a.id === id)?.state;
const ids = (rows: number) => Array.from({ length: rows }, (_, i) => `c-${String(i + 1).padStart(6, '0')}`);

/** Rank-based AUC written out here, independent of shared/model/metrics.ts. */
function independentAuc(rows: readonly { label: number; score: number }[]): number {
  const sorted = [...rows].sort((a, b) => a.score - b.score);
  let rankSum = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.score === sorted[i]!.score) j++;
    const averageRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (sorted[k]!.label === 1) rankSum += averageRank;
    i = j;
  }
  const positives = rows.filter((r) => r.label === 1).length;
  const negatives = rows.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

async function capturedAnswers(): Promise<CaptureRecord[]> {
  const runtime = (await readRuntime(p.home))!;
  const s3 = createS3Client(runtimeTarget(runtime));
  try {
    const records: CaptureRecord[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: runtime.names.outputs!,
          Prefix: 'captures/',
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        const body = await s3.send(
          new GetObjectCommand({ Bucket: runtime.names.outputs!, Key: object.Key! }),
        );
        for (const line of (await body.Body!.transformToString()).split('\n').flatMap(jsonObjectsOf)) {
          records.push(JSON.parse(line) as CaptureRecord);
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return records;
  } finally {
    s3.destroy();
  }
}

/** Scores customers c-000001… through the API, 100 at a time. */
async function predictAll(rows: number) {
  const runtime = (await readRuntime(p.home))!;
  for (let i = 0; i < rows; i += 100) {
    const response = await fetch(`${runtime.endpoints.api}/predict/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        items: ids(rows)
          .slice(i, i + 100)
          .map((customerId) => ({ customerId })),
      }),
    });
    expect(response.status).toBe(200);
  }
}

/** Waits until every API answer of the run so far has been delivered to the capture prefix. */
async function waitForCaptures(count: (records: CaptureRecord[]) => boolean) {
  const until = Date.now() + 30_000;
  while (!count(await capturedAnswers())) {
    if (Date.now() > until) throw new Error('captures did not arrive within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/**
 * `keel quality check` over [since, now]: the window's end is given, so the time the command takes to
 * start does not move the window past the answers it should hold.
 */
function check(since: Date, args: string[] = []) {
  const to = new Date();
  const window = `${Math.ceil((to.getTime() - since.getTime()) / 1000) + 1}s`;
  return p.keelJson<QualityReport>([
    'quality',
    'check',
    '--window',
    window,
    '--to',
    to.toISOString(),
    ...args,
  ]);
}

describe.skipIf(TEST_EMULATOR === 'moto')('ground truth end to end through keel up', () => {
  it('judges the answers by their outcomes, before them by the estimate, and pages on a concept shift only', async () => {
    const started = new Date();
    await p.serve(ROWS, 11);
    await p.keelJson(['batch', 'run']);
    await waitForCaptures((records) => records.filter((r) => r.source === 'api').length >= ROWS);

    // Before any outcome: the estimate alone, and batch and real time agree on every stored record.
    const before = await check(started);
    const v1Before = before.versions.find((v) => v.version === 'v1')!;
    expect(v1Before.realized).toBeNull();
    expect(v1Before.estimated?.predictions).toBeGreaterThanOrEqual(2 * ROWS);
    expect(before.consistency.pairs).toBe(ROWS);
    expect(before.consistency.share).toBe(1);
    expect(before.consistency.maxScoreDifference).toBeLessThan(1e-6);
    expect(before.skew.compared).toBeGreaterThan(0);
    expect(before.skew.differing).toBe(0);

    // The outcomes of the same customers arrive.
    await p.keelJson(['data', 'generate', '--rows', String(ROWS), '--seed', '11', '--kind', 'outcomes']);
    const reportFile = join(p.home, 'quality.html');
    const after = await check(started, ['--report', reportFile]);
    expect(after.outcomes).toMatchObject({ files: 1, rows: ROWS, quarantined: 0 });
    const v1 = after.versions.find((v) => v.version === 'v1')!;
    const labels = new Map(
      [...generateRecords({ rows: ROWS, seed: 11, asOf: new Date() })].map((r) => [r.customer_id, r.churned]),
    );
    const joined = (await capturedAnswers())
      .filter((r) => r.version === 'v1' && r.variant !== 'shadow' && Date.parse(r.t) >= started.getTime())
      .filter((r) => labels.has(r.customerId))
      .map((r) => ({ label: labels.get(r.customerId)!, score: r.probability }));
    expect(v1.realized?.matched).toBe(joined.length);
    expect(joined.length).toBe(2 * ROWS);
    expect(v1.realized?.auc).toBeCloseTo(independentAuc(joined), 9);
    // The window is shorter than a day: one bucket, holding every answer and the same figures.
    expect(v1.buckets).toHaveLength(1);
    expect(v1.buckets[0]).toMatchObject({ predictions: v1.predictions, realized: { auc: v1.realized!.auc } });
    // The estimate made before the outcomes, against what they showed.
    expect(Math.abs(v1Before.estimated!.auc! - v1.realized!.auc!)).toBeLessThan(ESTIMATE_AUC_ERROR);
    expect(v1.aucShortfall).not.toBeNull();
    expect(v1.aucShortfall!).toBeLessThan(0.05);
    const html = await readFile(reportFile, 'utf8');
    expect(html).toContain('v1');
    expect(html).not.toContain('<script');
    const calm = await p.alarms();
    expect(stateOf(calm.alarms, ALARM_IDS.qualityAucDrop)).toBe('OK');

    // A concept shift: new customers from the same input distribution, churning by another relation.
    const shiftStarted = new Date();
    await p.serve(ROWS, 12);
    await waitForCaptures(
      (records) =>
        records.filter((r) => r.source === 'api' && Date.parse(r.t) >= shiftStarted.getTime()).length >= ROWS,
    );
    await p.keelJson([
      'data',
      'generate',
      '--rows',
      String(ROWS),
      '--seed',
      '12',
      '--kind',
      'outcomes',
      '--concept-shift',
      '1',
    ]);
    const shifted = await check(shiftStarted);
    const v1Shifted = shifted.versions.find((v) => v.version === 'v1')!;
    expect(v1Shifted.realized?.matched).toBe(ROWS);
    expect(v1Shifted.aucShortfall!).toBeGreaterThan(0.1);
    console.info(
      `v1 held-out AUC ${v1.heldOut.auc.toFixed(4)}; fresh customers: estimated ${v1Before.estimated!.auc!.toFixed(4)} before outcomes, realized ${v1.realized!.auc!.toFixed(4)}; ` +
        `accuracy estimated ${v1Before.estimated!.accuracy.toFixed(4)}, realized ${v1.realized!.accuracy.toFixed(4)}; ` +
        `concept shift: realized ${v1Shifted.realized!.auc!.toFixed(4)}, estimated ${v1Shifted.estimated!.auc!.toFixed(4)}`,
    );
    await p.driftCheck(shiftStarted, ROWS);
    const paged = await p.alarms();
    expect(stateOf(paged.alarms, ALARM_IDS.qualityAucDrop)).toBe('ALARM');
    expect(stateOf(paged.alarms, ALARM_IDS.dataDriftPage)).toBe('OK');
    expect(stateOf(paged.alarms, ALARM_IDS.dataDriftWarn)).toBe('OK');
    const notice = paged.notifications.find((n) => n.source !== undefined && n.subject.includes('v1 AUC'));
    expect(notice?.subject).toMatch(/^Keel churn: v1 AUC 0\.\d{3} on \d+ outcomes vs 0\.\d{3} held out/);
    expect(notice?.message).toMatchObject({ kind: 'quality', status: 'page', versions: [{ version: 'v1' }] });

    // A feature changed behind the ETL's back: same record (event_time), other value online.
    const runtime = (await readRuntime(p.home))!;
    const dynamo = createDocumentClient(runtimeTarget(runtime));
    const store = { dynamo, table: runtime.names.onlineFeatures! };
    const changed = [...(await getRecords(store, ids(100))).values()].map((r) => ({
      ...r,
      support_tickets_90d: (r.support_tickets_90d ?? 0) + 7,
    }));
    await writeRecords(store, changed);
    dynamo.destroy();
    const skewStarted = new Date();
    await predictAll(100);
    await waitForCaptures(
      (records) =>
        records.filter((r) => r.source === 'api' && Date.parse(r.t) >= skewStarted.getTime()).length >= 100,
    );
    const skewed = await check(skewStarted);
    expect(skewed.skew.compared).toBe(100);
    expect(skewed.skew.differing).toBe(100);
    expect(skewed.skew.features.map((f) => f.name)).toContain('support_tickets_90d');
  }, 600_000);
});
