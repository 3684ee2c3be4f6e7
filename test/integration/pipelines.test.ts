import { readFile } from 'node:fs/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipelineRunner, notificationsFile, type PipelineRunner } from '#local/pipelines.ts';
import { readRolloutDecision, startRolloutDecisions } from '#local/rollout-decisions.ts';
import type { BatchReport, BatchRunSummary } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { EtlReport, EtlRunSummary } from '#shared/etl/etl.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { decideApproval, listApprovals } from '#shared/pipelines/approvals.ts';
import { getJson } from '#shared/pipelines/run-objects.ts';
import { endRollout, getAliases, getChampion, listVersions } from '#shared/registry/registry.ts';
import { rolloutDecisionStart } from '#shared/registry/rollout.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { type RecordingWebhook, startRecordingWebhook } from '../support/webhook.ts';

/** The synthesized state machines, run locally end to end against the local (or moto) S3 and DynamoDB. */
let aws: TestAws;
let runner: PipelineRunner;
/** On-call's webhook: the bodies SNS would POST to on-call's HTTPS endpoint. */
let webhook: RecordingWebhook;
let posted: Record<string, string>[];

beforeAll(async () => {
  aws = await startTestAws();
  webhook = await startRecordingWebhook();
  posted = webhook.posted;
  runner = await createPipelineRunner({
    home: aws.home,
    target: aws.target,
    names: aws.names,
    onCallWebhook: { url: webhook.url, retries: 0 },
  });
});
afterAll(async () => {
  await runner?.close();
  await webhook?.close();
  await aws?.close();
});

const ROWS = 3000;
const records = [...generateRecords({ rows: ROWS, seed: 31, asOf: new Date() })];

async function putRaw(key: string, lines: string[]) {
  await aws.clients.s3.send(
    new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: `${lines.join('\n')}\n` }),
  );
}

async function storeIds(): Promise<string[]> {
  const ids: string[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await aws.clients.dynamo.send(
      new ScanCommand({
        TableName: aws.names.onlineFeatures,
        ProjectionExpression: 'customer_id',
        ExclusiveStartKey,
      }),
    );
    ids.push(...(page.Items ?? []).map((item) => item.customer_id as string));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return ids;
}

async function text(bucket: string, Key: string) {
  const object = await aws.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
  return object.Body!.transformToString();
}

const registry = () => ({
  s3: aws.clients.s3,
  dynamo: aws.clients.dynamo,
  bucket: aws.names.models,
  table: aws.names.modelRegistry,
});

describe('ETL state machine', () => {
  const lines = [CSV_HEADER, ...records.map(toCsvLine)];
  lines[7] = lines[7]!.replace(/,(basic|standard|premium),/, ',,');
  lines[1500] = lines[1500]!.replace(/^(c-\d+),\d+,/, '$1,150,');
  lines[2999] = 'c-002999,broken';

  it('validates, quarantines bad rows with row and reason, fills both stores, and is idempotent', async () => {
    await putRaw('raw/20261101T000000Z-n3000-s31.csv', lines);
    const tasksDone: string[] = [];
    const run = await runner.run<EtlRunSummary>('etl', { chunkRows: 1000 }, (state) => tasksDone.push(state));
    expect(run.status).toBe('SUCCEEDED');
    expect(tasksDone.filter((s) => s === 'Process chunk')).toHaveLength(3);
    expect(run.output).toMatchObject({
      rowsRead: ROWS,
      valid: ROWS - 3,
      quarantined: 3,
      onlineWritten: ROWS - 3,
    });
    // The state machine's output counts the parts; the dataset's manifest lists them.
    const manifest = await getJson<EtlReport>(aws.clients.s3, aws.names.features, run.output!.manifestKey);
    expect(run.output!.quarantinePartCount).toBe(manifest.quarantineKeys.length);
    const quarantined = (
      await Promise.all(manifest.quarantineKeys.map((key) => text(aws.names.features, key)))
    ).flatMap((part) =>
      part
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { row: number; reason: string[] }),
    );
    expect(quarantined.map((q) => q.row)).toEqual([7, 1500, 2999]);
    expect(quarantined[0]!.reason.join()).toMatch(/^plan/);
    expect(quarantined[1]!.reason.join()).toMatch(/^age/);
    expect((await storeIds()).length).toBe(ROWS - 3);

    const again = await runner.run<EtlRunSummary>('etl', {
      inputKey: 'raw/20261101T000000Z-n3000-s31.csv',
      chunkRows: 1000,
    });
    expect(again.output).toEqual(run.output);
    expect((await storeIds()).length).toBe(ROWS - 3);
  });

  const lastNotification = async () =>
    JSON.parse((await readFile(notificationsFile(aws.home), 'utf8')).trim().split('\n').at(-1)!);

  it('fails above the bad-row share, after notifying with the error', async () => {
    await putRaw('raw/20261102T000000Z-bad.csv', [
      CSV_HEADER,
      ...records.slice(0, 5).map((r) => toCsvLine({ ...r, age: 3 })),
      ...records.slice(5, 10).map((r) => toCsvLine({ ...r, orders: -1 })),
    ]);
    const run = await runner.run('etl', { inputKey: 'raw/20261102T000000Z-bad.csv', maxBadRowShare: 0.5 });
    expect(run.status).toBe('FAILED');
    const notice = await lastNotification();
    expect(notice).toMatchObject({
      source: 'pipeline:etl',
      message: {
        status: 'FAILED',
        error: 'BadRowShareError',
        cause: expect.stringContaining('10 of 10 rows are bad'),
      },
      // On-call's endpoints are subscribed to the pipelines' notifications topic: the webhook got it.
      webhook: { status: 'delivered', attempts: 1 },
    });
    expect(posted.at(-1)).toMatchObject({
      Type: 'Notification',
      TopicArn: expect.stringMatching(/:Keel-local-Pipelines-Notifications[0-9A-F]+$/),
      Subject: notice.subject,
    });
    expect(JSON.parse(posted.at(-1)!.Message!)).toEqual(notice.message);
  });

  it('reports a column whose every value fails its field (a unit change) as that field, not as bad rows', async () => {
    // Ages in months: every row is outside 18-100 years.
    await putRaw('raw/20261102T010000Z-age-months.csv', [
      CSV_HEADER,
      ...records.slice(0, 20).map((r) => toCsvLine({ ...r, age: r.age * 12 })),
    ]);
    const run = await runner.run('etl', { inputKey: 'raw/20261102T010000Z-age-months.csv' });
    expect(run.status).toBe('FAILED');
    expect(run).toMatchObject({ error: { name: 'FieldDomainChangeError' }, failedState: 'Finalize ETL' });
    expect(await lastNotification()).toMatchObject({
      message: {
        error: 'FieldDomainChangeError',
        cause: expect.stringMatching(/age: 20 of 20 rows fail the field .*its type or unit likely changed/),
      },
    });
  });

  it('stops at the header when a column was renamed: both columns named, no row read, nothing stored', async () => {
    const renamed = [CSV_HEADER.replace('income', 'annual_income')];
    // Customers the store has never seen: any write of theirs would show.
    for (const r of generateRecords({ rows: 50_000, seed: 32, asOf: new Date() }))
      renamed.push(toCsvLine({ ...r, customer_id: `renamed-${r.customer_id}` }));
    await putRaw('raw/20261102T020000Z-renamed.csv', renamed);
    const before = await storeIds();
    const states: string[] = [];
    const run = await runner.run('etl', { inputKey: 'raw/20261102T020000Z-renamed.csv' }, (state) =>
      states.push(state),
    );
    expect(run.status).toBe('FAILED');
    // The execution ends with the step's own error, cause and state, not a generic failure.
    expect(run.error).toMatchObject({
      name: 'SchemaChangeError',
      message: expect.stringContaining('annual_income'),
    });
    expect(run.failedState).toBe('Plan chunks');
    expect(states).not.toContain('Process chunk');
    expect(await lastNotification()).toMatchObject({
      message: {
        error: 'SchemaChangeError',
        cause: expect.stringContaining(
          'missing column income (renamed to annual_income?); unexpected column annual_income',
        ),
      },
    });
    expect((await storeIds()).sort()).toEqual(before.sort());
  });
});

describe('retrain state machine', () => {
  it('promotes when there is no champion and when the candidate is better; keeps a worse one registered', async () => {
    const first = await runner.run<{ candidate: { version: string }; deployment?: { to: string } }>(
      'retrain',
      { algorithm: 'gbdt', promotion: 'if-better' },
    );
    expect(first.status).toBe('SUCCEEDED');
    expect(first.output!.deployment).toMatchObject({ to: 'v1' });

    const better = await runner.run<{
      candidate: { auc: number; championAuc: number; promote: boolean };
      deployment?: { from: string; to: string };
    }>('retrain', { algorithm: 'logistic', promotion: 'if-better' });
    expect(better.output!.candidate.auc).toBeGreaterThan(better.output!.candidate.championAuc);
    expect(better.output!.deployment).toMatchObject({ from: 'v1', to: 'v2' });

    // On 3,000 customers drawn from a logistic truth the logistic baseline beats the trees, so trees again are worse.
    const worse = await runner.run<{
      candidate: { version: string; promote: boolean; reason: string };
      deployment?: unknown;
    }>('retrain', { algorithm: 'gbdt', promotion: 'if-better' });
    expect(worse.status).toBe('SUCCEEDED');
    expect(worse.output!.candidate).toMatchObject({
      version: 'v3',
      promote: false,
      reason: expect.stringMatching(/does not beat champion v2/),
    });
    expect(worse.output!.deployment).toBeUndefined();
    expect(await getChampion(registry(), 'churn')).toBe('v2');
    expect((await listVersions(registry(), 'churn')).map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
    const notifications = (await readFile(notificationsFile(aws.home), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(notifications.filter((n) => n.source === 'pipeline:retrain').map((n) => n.message.status)).toEqual(
      ['PROMOTED', 'PROMOTED', 'KEPT'],
    );
  });

  it('hands the candidate to a rollout when retrain.rollout says so, and starts its decision', async () => {
    // The running platform's side of StartExecution: it takes the request as `keel up` does.
    const decisions = startRolloutDecisions({ home: aws.home, runner, pollMs: 100 });
    try {
      const run = await runner.run<{ deployment?: Record<string, unknown> }>('retrain', {
        algorithm: 'gbdt',
        promotion: 'always',
        rollout: { mode: 'canary', percent: 20, bakeSeconds: 3600 },
      });
      expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
      const { champion, rollout } = await getAliases(registry(), 'churn');
      expect(champion).toBe('v2');
      expect(rollout).toMatchObject({
        version: 'v4',
        champion: 'v2',
        mode: 'canary',
        percent: 20,
        bake_seconds: 3600,
      });
      expect(run.output!.deployment).toMatchObject({
        kind: 'rollout-start',
        from: 'v2',
        to: 'v4',
        decision: { name: 'churn', rolloutId: rollout!.id },
      });
      const request = await readRolloutDecision(aws.home, rollout!.id);
      expect(request?.input).toEqual(rolloutDecisionStart('churn', rollout!));
      await expect
        .poll(async () => (await readRolloutDecision(aws.home, rollout!.id))?.execution)
        .toBeTruthy();
      const statuses = (await readFile(notificationsFile(aws.home), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((n) => n.source === 'pipeline:retrain')
        .map((n) => n.message.status);
      expect(statuses.at(-1)).toBe('ROLLEDOUT');
      await endRollout(registry(), {
        name: 'churn',
        rolloutId: rollout!.id,
        reason: 'test over',
        actor: 'test',
      });
    } finally {
      await decisions.stop();
    }
  });
});

/** The cells of every prediction row of a batch run's output parts (headers dropped). */
async function predictionRows(parts: readonly string[]): Promise<string[][]> {
  const texts = await Promise.all(parts.map((key) => text(aws.names.outputs, key)));
  return texts.flatMap((part) =>
    part
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')),
  );
}

describe('batch scoring state machine', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi(aws);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('scores every customer exactly once, with the champion, matching the real-time API', async () => {
    const run = await runner.run<BatchRunSummary>('batch', { segments: 3 });
    expect(run.status).toBe('SUCCEEDED');
    // The state machine's output counts the parts; its manifest lists them.
    const report = await getJson<BatchReport>(aws.clients.s3, aws.names.outputs, run.output!.manifestKey);
    expect(run.output).toMatchObject({ rows: report.rows, partCount: 3 });
    expect(report.model.version).toBe('v2');
    const ids = await storeIds();
    expect(report.rows).toBe(ids.length);
    const rows = await predictionRows(report.parts);
    expect(rows).toHaveLength(ids.length);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set(ids));
    expect(new Set(rows.map((r) => r[3]))).toEqual(new Set(['v2']));
    expect(rows.filter((r) => r[2] === '1').length).toBe(report.positives);

    for (const row of rows.slice(0, 60)) {
      const response = await fetch(`${api.url}/predict`, {
        method: 'POST',
        body: JSON.stringify({ customerId: row[0] }),
      });
      const body = (await response.json()) as {
        probability: number;
        prediction: number;
        model: { version: string };
      };
      expect(body.model.version).toBe('v2');
      expect(Math.abs(body.probability - Number(row[1]))).toBeLessThan(1e-6);
      expect(body.prediction).toBe(Number(row[2]));
    }
  });
});

describe('batch scoring of a given input file', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(aws);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('scores every valid row of the file, skips the invalid ones, and agrees with the API', async () => {
    const fresh = [...generateRecords({ rows: 2500, seed: 77, asOf: new Date() })].map((r) => ({
      ...r,
      customer_id: r.customer_id.replace('c-', 'n-'),
    }));
    const lines = [CSV_HEADER, ...fresh.map(toCsvLine)];
    lines[10] = lines[10]!.replace(/^(n-\d+),\d+,/, '$1,5,');
    await putRaw('raw/20261103T000000Z-to-score.csv', lines);
    const run = await runner.run<BatchRunSummary>('batch', {
      inputKey: 'raw/20261103T000000Z-to-score.csv',
      chunkRows: 1000,
    });
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({ rows: 2499, skipped: 1 });
    expect(run.output!.partCount).toBe(3);
    const { parts } = await getJson<BatchReport>(aws.clients.s3, aws.names.outputs, run.output!.manifestKey);
    const rows = await predictionRows(parts);
    expect(new Set(rows.map((r) => r[0])).size).toBe(2499);
    expect(rows.some((r) => r[0] === fresh[9]!.customer_id)).toBe(false);
    for (const row of rows.slice(0, 25)) {
      const {
        customer_id,
        event_time: _t,
        churned: _c,
        ...attributes
      } = fresh.find((r) => r.customer_id === row[0])!;
      const response = await fetch(`${api.url}/predict`, {
        method: 'POST',
        body: JSON.stringify({ customerId: customer_id, attributes }),
      });
      const body = (await response.json()) as { probability: number };
      expect(Math.abs(body.probability - Number(row[1]))).toBeLessThan(1e-6);
    }
  });
});

describe('retrain with a human approval (task token)', () => {
  const approvals = () => ({ dynamo: aws.clients.dynamo, table: aws.names.modelRegistry });
  /** Answers the first pending request as `keel models approve|reject` does locally (the run reads the record). */
  async function decideWhenAsked(approved: boolean): Promise<string> {
    for (let i = 0; i < 600; i++) {
      const pending = (await listApprovals(approvals())).find((r) => r.status === 'pending');
      if (pending) {
        await decideApproval(
          approvals(),
          pending.id,
          { approved, actor: 'test', note: approved ? 'looks good' : 'not now' },
          async () => {},
        );
        return pending.id;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('no approval was requested');
  }
  const notifications = async () =>
    (await readFile(notificationsFile(aws.home), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

  type Run = {
    candidate: { version: string };
    approvalRequest?: { id: string };
    approval?: { approved: boolean; actor: string; note: string | null };
    deployment?: { to: string };
  };

  it('asks the approvers, then promotes only after approval, and keeps the champion when rejected', async () => {
    const [approvedRun, id] = await Promise.all([
      runner.run<Run>('retrain', { promotion: 'always', requireApproval: true }),
      decideWhenAsked(true),
    ]);
    expect(approvedRun.status).toBe('SUCCEEDED');
    expect(approvedRun.output!.approval).toEqual({ approved: true, actor: 'test', note: 'looks good' });
    expect(approvedRun.output!.deployment).toMatchObject({ to: approvedRun.output!.candidate.version });
    // The approvers were asked with the commands that answer, and the record is closed.
    const asked = (await notifications()).find((n) => n.message?.approvalId === id);
    // Asked on the approvers' topic only: on-call's webhook is not subscribed to it.
    expect(asked.webhook).toBeUndefined();
    expect(posted.some((body) => body.Message?.includes(id))).toBe(false);
    expect(asked).toMatchObject({
      source: 'pipeline:retrain',
      message: {
        version: approvedRun.output!.candidate.version,
        approve: `keel --stage local models approve ${id}`,
        reject: `keel --stage local models reject ${id}`,
      },
    });
    expect((await listApprovals(approvals())).find((a) => a.id === id)).toMatchObject({
      status: 'approved',
      actor: 'test',
    });
    // A second answer is refused, naming the first.
    await expect(
      decideApproval(approvals(), id, { approved: false, actor: 'late' }, async () => {}),
    ).rejects.toThrow(`approval request ${id} was already approved by test at`);

    const champion = await getChampion(registry(), 'churn');
    const [rejectedRun] = await Promise.all([
      runner.run<Run>('retrain', { promotion: 'always', requireApproval: true }),
      decideWhenAsked(false),
    ]);
    expect(rejectedRun.status).toBe('SUCCEEDED');
    expect(rejectedRun.output!.deployment).toBeUndefined();
    expect(await getChampion(registry(), 'churn')).toBe(champion);
    expect((await notifications()).at(-1)).toMatchObject({
      source: 'pipeline:retrain',
      message: { status: 'NOTAPPROVED', by: 'test', note: 'not now' },
    });
    // The promotion was on-call's to hear of; the answers were the approvers'.
    const byStatus = async (status: string) =>
      (await notifications()).filter((n) => n.message?.status === status);
    expect((await byStatus('PROMOTED')).at(-1).webhook).toMatchObject({ status: 'delivered' });
    expect((await byStatus('NOTAPPROVED')).at(-1).webhook).toBeUndefined();
  });

  it('tells the approvers and fails ApprovalExpired when nobody answers in time', async () => {
    const impatient = await createPipelineRunner({
      home: aws.home,
      target: aws.target,
      names: aws.names,
      approvalTimeoutSeconds: 2,
    });
    try {
      const champion = await getChampion(registry(), 'churn');
      const run = await impatient.run<Run>('retrain', { promotion: 'always', requireApproval: true });
      expect(run.status).toBe('FAILED');
      // The Fail state `Approval expired` (error ApprovalExpired) ended it, with its cause.
      expect(run.error).toMatchObject({
        name: 'ApprovalExpired',
        message: expect.stringMatching(
          /Nobody approved or rejected the candidate within .* h: it is registered, not promoted/,
        ),
      });
      expect(await getChampion(registry(), 'churn')).toBe(champion);
      const expired = (await notifications()).at(-1);
      expect(expired).toMatchObject({
        source: 'pipeline:retrain',
        message: { status: 'APPROVALEXPIRED', approvalId: expect.stringMatching(/^[0-9a-f]{8}$/) },
      });
      const pending = (await listApprovals(approvals())).find((a) => a.id === expired.message.approvalId)!;
      // Shown expired from its expiry on (the run stopped waiting then, give or take a millisecond).
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, Date.parse(pending.expiresAt) - Date.now())),
      );
      const request = (await listApprovals(approvals())).find((a) => a.id === pending.id);
      expect(request).toMatchObject({ status: 'expired' });
      await expect(
        decideApproval(approvals(), request!.id, { approved: true, actor: 'late' }, async () => {}),
      ).rejects.toThrow(`approval request ${request!.id} expired at`);
    } finally {
      await impatient.close();
    }
  });
});
