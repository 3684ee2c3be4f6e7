import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmStatus, AlarmsSnapshot } from '#local/alarms.ts';
import type { Notification } from '#local/notifications.ts';
import type { DriftReportDocument } from '#shared/drift/job.ts';
import { ALARM_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { TEST_EMULATOR } from '../support/aws.ts';
import { runKeel, startKeelUp } from '../support/cli.ts';
import { startMonitoredPlatform } from '../support/monitoring.ts';

/**
 * Monitoring end to end, as a user runs it: `keel up` → drifted data → ETL → traffic through the API
 * (captured) → `keel drift check` → the local alarm loop evaluates the monitoring stack's alarms over
 * the EMF the drift job wrote → the state changes reach alarms.json, notifications.jsonl and an on-call
 * webhook (an HTTP server of this test) in CloudWatch's SNS format; `keel alarms` shows them.
 */

interface Received {
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { Type: string; Subject: string; Message: string; TopicArn: string };
}

let webhook: Server;
let webhookUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  webhook = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body: JSON.parse(body) });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => webhook.close(resolve));
});

const stateOf = (alarms: readonly AlarmStatus[], id: string) => alarms.find((a) => a.id === id)?.state;
const alarmNotifications = (notifications: readonly Notification[]) =>
  notifications.filter((n) => n.source.startsWith('alarm:'));
const statusesOf = (document: DriftReportDocument) =>
  Object.fromEntries(
    document.report.features.map((f) => [f.kind === 'numeric' ? f.feature : f.field, f.status]),
  );

// `keel up` runs its own embedded servers whatever KEEL_TEST_EMULATOR says: the moto pass would repeat
// the same run, so it is left to the embedded one.
describe.skipIf(TEST_EMULATOR === 'moto')('alarms end to end through keel up', () => {
  it('keel alarms says what to do when nothing is running', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keel-alarms-none-'));
    try {
      const result = await runKeel(['alarms'], { KEEL_HOME: home });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^keel: nothing is running in .*: start the local platform with `npm start`/,
      );
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('income ×1.9 pages through data drift (file, console, webhook); a sicker population pages through prediction drift', async () => {
    const p = await startMonitoredPlatform('alarms-drift', { KEEL_ONCALL_WEBHOOK: `${webhookUrl}/drift` });
    try {
      const incomeFrom = new Date();
      await p.serve(1000, 7, 'income=1.9');
      const income = await p.driftCheck(incomeFrom, 1000);
      const drifted = Object.entries(statusesOf(income)).filter(([, status]) => status !== 'ok');
      expect(drifted.map(([name]) => name).sort()).toEqual(['income', 'log_income']);

      const afterIncome = await p.alarms();
      expect(stateOf(afterIncome.alarms, ALARM_IDS.dataDriftPage)).toBe('ALARM');
      expect(stateOf(afterIncome.alarms, ALARM_IDS.dataDriftWarn)).toBe('ALARM');
      expect(stateOf(afterIncome.alarms, ALARM_IDS.positiveRateDrift)).toBe('OK');
      expect(stateOf(afterIncome.alarms, ALARM_IDS.scoreDrift)).toBe('OK');
      expect(stateOf(afterIncome.alarms, ALARM_IDS.page)).toBe('ALARM');
      // The AWS service metrics do not exist locally: listed, not given a made-up state.
      const notLocal = afterIncome.alarms.filter((a) => a.state === 'NOT_EVALUATED');
      expect(notLocal.map((a) => a.id)).toContain('lambda-errors-predict');
      expect(notLocal.every((a) => a.reason.startsWith('not evaluated locally: '))).toBe(true);

      const page = alarmNotifications(afterIncome.notifications).find(
        (n) => n.source === `alarm:${ALARM_IDS.dataDriftPage}`,
      )!;
      expect(page.subject).toBe('ALARM: "keel-local-data-drift-page" in us-east-1');
      expect(page.message).toMatchObject({
        AlarmName: 'keel-local-data-drift-page',
        NewStateValue: 'ALARM',
        OldStateValue: 'INSUFFICIENT_DATA',
        Trigger: { MetricName: 'MaxFeaturePsi', Namespace: 'Keel', Statistic: 'MAXIMUM', Threshold: 0.25 },
      });
      expect((page.message as { NewStateReason: string }).NewStateReason).toMatch(
        /^Threshold Crossed: 1 out of the last 1 datapoint \[/,
      );
      expect(page.webhook).toMatchObject({ status: 'delivered', attempts: 1, detail: 'HTTP 200' });
      expect(p.keel.output()).toContain('notification: ALARM: "keel-local-data-drift-page"');

      const delivered = received.filter((r) => r.path === '/drift');
      expect(delivered.map((r) => r.body.Subject)).toEqual(
        expect.arrayContaining([
          'ALARM: "keel-local-data-drift-page" in us-east-1',
          'ALARM: "keel-local-data-drift-warn" in us-east-1',
          'ALARM: "keel-local-page" in us-east-1',
        ]),
      );
      const sns = delivered.find((r) => r.body.Subject.includes('data-drift-page'))!;
      expect(sns.headers['x-amz-sns-message-type']).toBe('Notification');
      expect(sns.body).toMatchObject({
        Type: 'Notification',
        TopicArn: expect.stringMatching(/:keel-local-oncall$/),
      });
      expect(JSON.parse(sns.body.Message)).toMatchObject({
        AlarmName: 'keel-local-data-drift-page',
        NewStateValue: 'ALARM',
      });
      // The drift job's own page names what the alarm cannot: the features, their PSI, window and report.
      const notice = afterIncome.notifications.find(
        (n) => n.source.startsWith('topic:') && (n.message as { kind?: string }).kind === 'drift',
      )!;
      expect(notice.subject).toMatch(/^Keel churn: data drift \(page\): .*\bincome PSI \d\.\d\d/);
      expect(notice.message).toMatchObject({
        status: 'page',
        model: { name: 'churn' },
        window: { from: income.window.from, to: income.window.to },
        report: expect.stringMatching(/^s3:\/\/[^/]+\/drift-reports\/model=churn\//),
        features: expect.arrayContaining([expect.objectContaining({ feature: 'income', status: 'page' })]),
      });
      expect(notice.webhook).toMatchObject({ status: 'delivered' });
      expect(delivered.map((r) => r.body.Subject)).toContain(notice.subject);
      const composite = JSON.parse(
        delivered.find((r) => r.body.Subject.includes('"keel-local-page"'))!.body.Message,
      );
      expect(composite.AlarmRule).toContain('ALARM("keel-local-data-drift-page")');

      // Prediction drift: five support tickets each (the strongest churn driver, Poisson around one in
      // the training data) moves the positive rate by far more than 10 points; three moved it by only
      // 9 points for a model trained on another split of the same customers.
      const sickerFrom = new Date();
      await p.serve(1000, 8, 'support_tickets_90d=5');
      const sicker = await p.driftCheck(sickerFrom, 1000);
      expect(Math.abs(sicker.report.prediction.positiveRateDelta!)).toBeGreaterThanOrEqual(10);
      const afterSicker = await p.alarms();
      expect(stateOf(afterSicker.alarms, ALARM_IDS.positiveRateDrift)).toBe('ALARM');
      expect(alarmNotifications(afterSicker.notifications).map((n) => n.source)).toContain(
        `alarm:${ALARM_IDS.positiveRateDrift}`,
      );
      expect(
        received.some(
          (r) => r.path === '/drift' && r.body.Subject.includes('prediction-drift-positive-rate'),
        ),
      ).toBe(true);
      // Its notice names the model version and the size of the move (the subject may be cut at 100 characters).
      const summaries = received
        .map((r) => JSON.parse(r.body.Message) as { kind?: string; summary?: string })
        .filter((m) => m.kind === 'drift')
        .map((m) => m.summary);
      expect(summaries).toContainEqual(
        expect.stringMatching(
          /prediction drift \(page\) of v\d+: score PSI \d+\.\d\d, positive rate [+-]\d+\.\d points/,
        ),
      );

      // Restarting keeps the states: nothing is notified twice.
      expect(await p.keel.stop()).toBe(0);
      const before = received.length;
      const again = await startKeelUp(p.env);
      try {
        const restarted = await p.keelJson<AlarmsSnapshot>(['alarms', '--evaluate']);
        expect(stateOf(restarted.alarms, ALARM_IDS.dataDriftPage)).toBe('ALARM');
        expect(received.length).toBe(before);
      } finally {
        expect(await again.stop()).toBe(0);
      }
    } finally {
      await p.keel.stop();
      await rm(p.home, { recursive: true, force: true });
    }
  }, 240_000);

  it('raises nothing when the served customers look like the training data', async () => {
    const p = await startMonitoredPlatform('alarms-quiet', { KEEL_ONCALL_WEBHOOK: `${webhookUrl}/quiet` });
    try {
      const from = new Date();
      await p.serve(1000, 9);
      const report = await p.driftCheck(from, 1000);
      expect(report.status).toBe('ok');
      const { alarms, notifications } = await p.alarms();
      const evaluated = alarms.filter((a) => a.state !== 'NOT_EVALUATED');
      expect(evaluated.length).toBeGreaterThanOrEqual(7);
      expect(evaluated.filter((a) => a.state === 'ALARM')).toEqual([]);
      for (const id of [
        ALARM_IDS.dataDriftWarn,
        ALARM_IDS.dataDriftPage,
        ALARM_IDS.scoreDrift,
        ALARM_IDS.positiveRateDrift,
      ]) {
        expect(stateOf(alarms, id)).toBe('OK');
      }
      expect(alarmNotifications(notifications)).toEqual([]);
      // The webhook heard of the promotion of the model served (on-call receives the pipelines'
      // notifications), and of no alarm.
      const quiet = received.filter((r) => r.path === '/quiet');
      expect(quiet.filter((r) => !/:Keel-local-Pipelines-Notifications\w+$/.test(r.body.TopicArn))).toEqual(
        [],
      );
      expect(quiet.map((r) => r.body.Subject)).toContain('Keel local: retrain promoted');
    } finally {
      await p.close();
    }
  }, 180_000);
});
