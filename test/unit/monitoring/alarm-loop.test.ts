import { appendFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AlarmLoop, type AlarmStatus, createAlarmLoop, localAlarmCatalog } from '#local/alarms.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { fileNotifier, type Notification, readNotifications } from '#local/notifications.ts';
import { ALARM_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { toEmf } from '#shared/monitoring/emf.ts';
import { DRIFT_METRICS, KEEL_NAMESPACE, serviceDimensions } from '#shared/monitoring/metrics.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

/**
 * The local alarm loop over a metrics file written by the test, with an injected clock: incremental
 * reading, CloudWatch's state rules and notifications, the webhook's retry and failure, restarts.
 */

const T0 = Date.parse('2026-03-02T10:00:00Z');
let home: string;
let clock: number;
let loops: AlarmLoop[];

/** A one-minute drift period, so each test step is one period. */
const catalog = localAlarmCatalog({ drift: { periodSeconds: 60 } }, LOCAL_ENVIRONMENT.stage);

let webhook: Server;
let webhookUrl: string;
/** Status the webhook answers with, one per request, then 200. */
let answers: number[];
const received: { Subject: string; Message: string }[] = [];

beforeAll(async () => {
  webhook = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const status = answers.shift() ?? 200;
      if (status === 200) received.push(JSON.parse(body));
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/oncall`;
});

afterAll(async () => {
  await new Promise((resolve) => webhook.close(resolve));
});

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'keel-alarm-loop-'));
  await mkdir(dirname(metricsFile(home)), { recursive: true });
  clock = T0;
  loops = [];
  answers = [];
  received.length = 0;
});

afterEach(async () => {
  await Promise.all(loops.map((loop) => loop.stop()));
  await rm(home, { recursive: true, force: true });
});

async function loop(url = webhookUrl) {
  const created = await createAlarmLoop({
    home,
    environment: LOCAL_ENVIRONMENT,
    catalog,
    notify: fileNotifier(home),
    webhook: { url, timeoutMs: 500 },
    now: () => new Date(clock),
  });
  loops.push(created);
  return created;
}

/** The drift job's MaxFeaturePsi datapoint at `at`, as an EMF line of the metrics file. */
const driftLine = (psi: number, at: number) =>
  `${JSON.stringify(
    toEmf(
      [
        {
          metricName: DRIFT_METRICS.maxFeaturePsi,
          value: psi,
          unit: 'None',
          dimensions: serviceDimensions('keel'),
        },
      ],
      {
        namespace: KEEL_NAMESPACE,
        timestamp: at,
      },
    )[0],
  )}\n`;

const state = (alarms: readonly AlarmStatus[], id: string) => alarms.find((a) => a.id === id)!;
const alarmNotes = async () =>
  (await readNotifications(home, 100)).filter((n: Notification) => n.source.startsWith('alarm:'));

describe('local alarm loop', () => {
  it('pages on a drift datapoint, resolves on the next, notifying as the stack’s actions do', async () => {
    const alarms = await loop();
    let snapshot = await alarms.evaluate();
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftPage).state).toBe('INSUFFICIENT_DATA');
    expect(state(snapshot.alarms, ALARM_IDS.page).state).toBe('OK');
    expect(await alarmNotes()).toEqual([]);

    await appendFile(metricsFile(home), driftLine(0.31, T0 + 5_000));
    clock = T0 + 10_000;
    snapshot = await alarms.evaluate();
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftPage)).toMatchObject({
      state: 'ALARM',
      since: new Date(T0 + 10_000).toISOString(),
      lastValue: 0.31,
    });
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftWarn).state).toBe('ALARM');
    expect(state(snapshot.alarms, ALARM_IDS.page).state).toBe('ALARM');
    expect((await alarmNotes()).map((n) => n.subject)).toEqual([
      'ALARM: "keel-local-data-drift-warn" in us-east-1',
      'ALARM: "keel-local-data-drift-page" in us-east-1',
      'ALARM: "keel-local-page" in us-east-1',
    ]);
    expect(received.map((r) => r.Subject)).toEqual((await alarmNotes()).map((n) => n.subject));

    // The next run finds no drift: the page alarm and the composite notify OK, the warn alarm does not.
    await appendFile(metricsFile(home), driftLine(0.04, T0 + 65_000));
    clock = T0 + 70_000;
    snapshot = await alarms.evaluate();
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftPage).state).toBe('OK');
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftWarn).state).toBe('OK');
    const notes = await alarmNotes();
    expect(notes.slice(3).map((n) => n.subject)).toEqual([
      'OK: "keel-local-data-drift-page" in us-east-1',
      'OK: "keel-local-page" in us-east-1',
    ]);
    expect(notes[3]!.message).toMatchObject({ OldStateValue: 'ALARM', NewStateValue: 'OK' });

    // Without a new datapoint the drift alarms keep their state (treatMissingData: ignore).
    clock = T0 + 600_000;
    snapshot = await alarms.evaluate();
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftPage).state).toBe('OK');
    expect(await alarmNotes()).toHaveLength(5);
  });

  it('reads only what was appended, and waits for the rest of a line cut at the end of the file', async () => {
    const alarms = await loop();
    const line = driftLine(0.5, T0 + 1_000);
    await appendFile(metricsFile(home), line.slice(0, 40));
    clock = T0 + 2_000;
    expect(state((await alarms.evaluate()).alarms, ALARM_IDS.dataDriftPage).state).toBe('INSUFFICIENT_DATA');
    await appendFile(metricsFile(home), line.slice(40));
    expect(state((await alarms.evaluate()).alarms, ALARM_IDS.dataDriftPage).state).toBe('ALARM');
  });

  it('keeps states across a restart: nothing is notified twice', async () => {
    await appendFile(metricsFile(home), driftLine(0.4, T0 + 1_000));
    clock = T0 + 2_000;
    await (await loop()).evaluate();
    expect(await alarmNotes()).toHaveLength(3);
    const again = await loop();
    const snapshot = await again.evaluate();
    expect(state(snapshot.alarms, ALARM_IDS.dataDriftPage)).toMatchObject({
      state: 'ALARM',
      since: new Date(T0 + 2_000).toISOString(),
    });
    expect(await alarmNotes()).toHaveLength(3);
  });

  it('retries the webhook once, and records a failed delivery without stopping', async () => {
    await appendFile(metricsFile(home), driftLine(0.22, T0 + 1_000));
    clock = T0 + 2_000;
    answers = [500];
    await (await loop()).evaluate();
    const [warn] = await alarmNotes();
    expect(warn!.webhook).toEqual({ url: webhookUrl, status: 'delivered', attempts: 2, detail: 'HTTP 200' });

    // A webhook nobody listens on: recorded as failed, the loop evaluates on.
    await rm(join(home, 'alarms.json'));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
    await new Promise((resolve) => closed.close(resolve));
    const down = await loop(deadUrl);
    await down.evaluate();
    const failed = (await alarmNotes()).at(-1)!;
    expect(failed.webhook).toMatchObject({ url: deadUrl, status: 'failed', attempts: 2 });
    expect(failed.webhook!.detail).toMatch(/fetch failed|ECONNREFUSED/);
    expect(state((await down.evaluate()).alarms, ALARM_IDS.dataDriftWarn).state).toBe('ALARM');
  });

  it('lists the alarms over AWS service metrics as not evaluated locally, with why', async () => {
    const snapshot = await (await loop()).evaluate();
    const notLocal = snapshot.alarms.filter((a) => a.state === 'NOT_EVALUATED');
    expect(notLocal.map((a) => a.id).sort()).toEqual(
      [
        'api-latency-p99',
        'dlq-depth-approvals',
        'dlq-depth-drift',
        'dlq-depth-on-call',
        'dlq-depth-quality',
        'dlq-depth-retrain-on-drift',
        'dlq-depth-rollout-guard',
        'dlq-depth-schedules',
        'lambda-errors-drift',
        'lambda-errors-predict',
        'lambda-errors-quality',
        'lambda-throttles-drift',
        'lambda-throttles-predict',
        'lambda-throttles-quality',
        ...['failures', 'timeouts', 'aborts'].flatMap((kind) =>
          ['batch', 'etl', 'retrain', 'rollout'].map((machine) => `state-machine-${kind}-${machine}`),
        ),
      ].sort(),
    );
    expect(state(snapshot.alarms, 'lambda-errors-predict').reason).toMatch(
      /^not evaluated locally: Lambda metrics exist only in AWS/,
    );
    const file = JSON.parse(await readFile(join(home, 'alarms.json'), 'utf8'));
    expect(file).toEqual(JSON.parse(JSON.stringify(snapshot)));
  });
});
