import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { intEnv } from '#shared/env.ts';
import type { AlarmCatalog, AlarmDefinition } from '#shared/monitoring/alarm-catalog.ts';
import { alarmDefinitions, DEAD_LETTER_QUEUES } from '#shared/monitoring/alarm-definitions.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';
import { alarmName, renderExpression } from '#shared/monitoring/cloudwatch-alarms.ts';
import { type MetricSample, parseEmf } from '#shared/monitoring/emf.ts';
import {
  type AlarmState,
  evaluateAlarm,
  evaluateComposite,
  evaluationRange,
  periodDatapoints,
} from '#shared/monitoring/evaluate.ts';
import { PIPELINES, type PipelineName } from '#shared/pipelines/definitions.ts';
import type { DeploymentEnvironment } from '#shared/resources.ts';
import {
  alarmMessage,
  alarmSubject,
  postWebhook,
  snsEnvelope,
  stateReason,
  type Transition,
  type WebhookOptions,
} from './alarms-message.ts';
import { metricsFile } from './metrics-file.ts';
import type { Notification, Notifier } from './notifications.ts';

/**
 * The local CloudWatch: every interval, the EMF lines the handlers and the drift job appended to the
 * metrics file since the last look are read, the alarm catalog the monitoring stack deploys
 * (`alarmDefinitions`) is evaluated over them with shared/monitoring/evaluate.ts, states persist in
 * `${KEEL_HOME}/alarms.json`, and each state change is published as CloudWatch would publish it to the
 * on-call topic (notifications file, console, `KEEL_ONCALL_WEBHOOK`), except a rollout guardrail's move
 * to ALARM, which goes to the rollout guard as EventBridge takes it there in AWS (`onGuardrailAlarm`).
 *
 * Differences from CloudWatch, on purpose: only alarms over Keel's own EMF metrics are evaluated (the
 * AWS/* service metrics do not exist here; those alarms are listed as not evaluated, with why); the
 * period in progress counts with the data it has so far, so an hourly drift alarm reacts to the
 * drift job's datapoint at once instead of an hour later; OK is published only when leaving ALARM
 * (CloudWatch's OK action also fires on a new alarm's first INSUFFICIENT_DATA → OK).
 */

export const ALARM_INTERVAL_ENV = 'KEEL_ALARM_INTERVAL_SECONDS';
export const ONCALL_WEBHOOK_ENV = 'KEEL_ONCALL_WEBHOOK';
/** The signal `keel alarms --evaluate` sends a running `keel up` (SIGUSR1 would start Node's inspector). */
export const ALARM_EVALUATE_SIGNAL = 'SIGUSR2';

export const alarmsFile = (home: string) => join(home, 'alarms.json');

export function alarmIntervalMs(env: Readonly<Record<string, string | undefined>> = process.env): number {
  return intEnv(ALARM_INTERVAL_ENV, 10, { min: 1, max: 3600 }, env) * 1000;
}

/** Why an alarm over an AWS service's metric has no local state. */
const NOT_LOCAL: Record<string, string> = {
  'AWS/ApiGateway':
    'API Gateway metrics exist only in AWS; locally the predict handler’s own latency and 5xx alarms watch the API',
  'AWS/Lambda': 'Lambda metrics exist only in AWS; locally a handler error fails its request or pipeline run',
  'AWS/States':
    'Step Functions metrics exist only in AWS; locally a failed pipeline run notifies through its failure path',
  'AWS/SQS': 'the local platform has no dead-letter queues (a failed local schedule run is logged)',
};

/**
 * The catalog the monitoring stack deploys, over the local platform's counterparts of its resources
 * (the same function ids, pipelines and queues), so `keel alarms` lists every alarm AWS would have.
 */
export function localAlarmCatalog(options: MonitoringOptionsInput, stage: string): AlarmCatalog {
  const local = (id: string) => `keel-${stage}-${id}`;
  return alarmDefinitions(options, {
    api: { name: local('api'), stage },
    functions: ['predict', 'drift', 'quality'].map((id) => ({ id, name: local(id) })),
    stateMachines: (Object.keys(PIPELINES) as PipelineName[]).map((id) => ({ id, arn: local(id) })),
    queues: Object.entries(DEAD_LETTER_QUEUES).map(([id, severity]) => ({
      id,
      name: local(`${id}-dlq`),
      severity,
    })),
  });
}

/** One alarm as `alarms.json` holds it and `keel alarms` shows it. */
export interface AlarmStatus {
  readonly id: string;
  readonly name: string;
  readonly severity: 'warn' | 'page';
  /** What it watches, e.g. `Keel MaxFeaturePsi Maximum` or the metric-math label. */
  readonly metric: string;
  /** e.g. `>= 0.25 (1 of 1 × 3600 s)`; for the composite, its children. */
  readonly condition: string;
  readonly state: AlarmState | 'NOT_EVALUATED';
  /** When the state was entered; null when never evaluated. */
  readonly since: string | null;
  readonly reason: string;
  /** The newest datapoint of the evaluation range. */
  readonly lastValue: number | null;
  readonly description: string;
  readonly runbook: string;
}

export interface AlarmsSnapshot {
  readonly evaluatedAt: string;
  readonly stage: string;
  readonly alarms: readonly AlarmStatus[];
}

export async function readAlarmsSnapshot(home: string): Promise<AlarmsSnapshot | undefined> {
  try {
    return JSON.parse(await readFile(alarmsFile(home), 'utf8')) as AlarmsSnapshot;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

// The texts of `AlarmStatus.metric` and `.condition`, shared with the deployed stage's alarms
// (cli/stage/alarms.ts) so `keel alarms` reads the same with or without --stage.

/** e.g. `Keel MaxFeaturePsi Maximum`. */
export const metricStatText = (s: { namespace: string; metricName: string; statistic: string }) =>
  `${s.namespace} ${s.metricName} ${s.statistic}`;

/** A metric-math alarm's metric: its label, then its expression. */
export const metricMathText = (label: string, expression: string) => `${label} = ${expression}`;

const describeMetric = ({ metric }: AlarmDefinition) =>
  metric.kind === 'metric'
    ? metricStatText(metric.metric)
    : metricMathText(metric.label, renderExpression(metric.expression));

const OPERATOR: Readonly<Record<string, string>> = {
  GreaterThanOrEqualToThreshold: '>=',
  GreaterThanThreshold: '>',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '<=',
};

/** e.g. `>= 0.25 (1 of 1 × 3600 s)`; an operator Keel does not use is shown by its CloudWatch name. */
export const conditionText = (
  a: Pick<AlarmDefinition, 'threshold' | 'datapointsToAlarm' | 'evaluationPeriods' | 'periodSeconds'> & {
    readonly comparisonOperator: string;
  },
) =>
  `${OPERATOR[a.comparisonOperator] ?? a.comparisonOperator} ${a.threshold} (${a.datapointsToAlarm} of ${a.evaluationPeriods} × ${a.periodSeconds} s)`;

export const compositeConditionText = (children: number) => `any of ${children} paging alarms in ALARM`;

/**
 * A reader of the metrics file: each call returns the EMF samples appended since the last one (the
 * first reads the file from its start) that `keep` accepts; a line cut at the end of the file waits
 * for its rest. A file that shrank (deleted, truncated) is read again from its start.
 */
export function metricsTail(file: string) {
  let offset = 0;
  let decoder = new StringDecoder('utf8');
  let partial = '';
  const chunk = Buffer.alloc(1 << 20);
  return async function read(keep: (sample: MetricSample) => boolean): Promise<MetricSample[]> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const samples: MetricSample[] = [];
    try {
      const { size } = await handle.stat();
      if (size < offset) {
        offset = 0;
        partial = '';
        decoder = new StringDecoder('utf8');
      }
      while (offset < size) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - offset), offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const lines = (partial + decoder.write(chunk.subarray(0, bytesRead))).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) for (const sample of parseEmf(line)) if (keep(sample)) samples.push(sample);
      }
    } finally {
      await handle.close();
    }
    return samples;
  };
}

export interface AlarmLoopOptions {
  readonly home: string;
  readonly environment: DeploymentEnvironment;
  readonly catalog: AlarmCatalog;
  /** Publishes a notification (the notifications file and the console; see local/notifications.ts). */
  readonly notify: Notifier;
  readonly webhook?: WebhookOptions;
  /**
   * Hears a rollout guardrail's move to ALARM, as the EventBridge rule on guardrail state changes does
   * in AWS (`keel up` invokes the rollout guard function). A guardrail publishes no notification of its
   * own: the guard pages. Awaited after the snapshot is written; a failure is logged.
   */
  readonly onGuardrailAlarm?: (definition: AlarmDefinition, transition: Transition) => Promise<void>;
  readonly log?: (message: string) => void;
  readonly now?: () => Date;
}

export interface AlarmLoop {
  /** Reads new samples, evaluates every alarm, persists, publishes the transitions. One at a time. */
  evaluate(): Promise<AlarmsSnapshot>;
  /** Evaluates every `intervalMs` until stopped. */
  start(intervalMs: number): void;
  stop(): Promise<void>;
}

interface Kept {
  state: AlarmState;
  since: string | null;
  reason: string;
  lastValue: number | null;
}

export async function createAlarmLoop(options: AlarmLoopOptions): Promise<AlarmLoop> {
  const { catalog, environment } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => {});
  const nameOf = (id: string) => alarmName(environment.stage, id);
  const local = catalog.alarms.filter((a) => a.source === 'emf');
  // Memory stays bounded: a metric's samples are kept for the longest evaluation range (plus the
  // period in progress) of the alarms watching it, and samples of metrics no alarm watches not at all.
  const horizonMs = new Map<string, number>();
  const keyOf = (s: { namespace: string; metricName: string }) => `${s.namespace}\u0000${s.metricName}`;
  for (const alarm of local) {
    const range = (evaluationRange(alarm) + 1) * alarm.periodSeconds * 1000;
    const stats =
      alarm.metric.kind === 'metric' ? [alarm.metric.metric] : Object.values(alarm.metric.metrics);
    for (const stat of stats) horizonMs.set(keyOf(stat), Math.max(horizonMs.get(keyOf(stat)) ?? 0, range));
  }
  const read = metricsTail(metricsFile(options.home));
  let samples: MetricSample[] = [];

  const previous = await readAlarmsSnapshot(options.home);
  const kept = new Map<string, Kept>(
    (previous?.alarms ?? [])
      .filter((a): a is AlarmStatus & { state: AlarmState } => a.state !== 'NOT_EVALUATED')
      .map((a) => [a.id, { state: a.state, since: a.since, reason: a.reason, lastValue: a.lastValue }]),
  );
  const stateOf = (id: string): Kept =>
    kept.get(id) ?? {
      state: 'INSUFFICIENT_DATA',
      since: null,
      reason: 'Not yet evaluated.',
      lastValue: null,
    };

  async function publish(
    definition: AlarmDefinition | AlarmCatalog['page'],
    transition: Transition,
    children: readonly string[] = [],
  ) {
    const message = alarmMessage(definition, transition, environment, nameOf, children);
    const subject = alarmSubject(transition, environment.region);
    const webhook = options.webhook
      ? await postWebhook(
          options.webhook,
          snsEnvelope(
            subject,
            message,
            `arn:aws:sns:${environment.region}:${environment.account}:keel-${environment.stage}-oncall`,
            transition.at,
          ),
        )
      : undefined;
    if (webhook?.status === 'failed') {
      log(
        `alarm ${transition.name}: webhook ${webhook.url} failed after ${webhook.attempts} attempts (${webhook.detail})`,
      );
    }
    const notification: Notification = {
      at: transition.at.toISOString(),
      source: `alarm:${definition.id}`,
      subject,
      message,
      ...(webhook ? { webhook } : {}),
    };
    await options.notify(notification);
  }

  /**
   * The stack's actions: every alarm but the guardrails notifies on ALARM; page alarms and the composite
   * also on OK.
   */
  const notifies = (t: Transition, severity: 'warn' | 'page', guardrail = false) =>
    (t.to === 'ALARM' && !guardrail) || (t.to === 'OK' && t.from === 'ALARM' && severity === 'page');

  async function evaluateOnce(): Promise<AlarmsSnapshot> {
    const at = now();
    const t = at.getTime();
    const recent = (sample: MetricSample) => {
      const horizon = horizonMs.get(keyOf(sample));
      return horizon !== undefined && sample.timestamp >= t - horizon;
    };
    samples = [...samples.filter(recent), ...(await read(recent))];
    const statuses: AlarmStatus[] = [];
    const transitions: [AlarmDefinition, Transition][] = [];
    const states: Record<string, AlarmState> = {};
    for (const definition of catalog.alarms) {
      const base = {
        id: definition.id,
        name: nameOf(definition.id),
        severity: definition.severity,
        metric: describeMetric(definition),
        condition: conditionText(definition),
        description: definition.description,
        runbook: definition.runbook,
      };
      if (definition.source !== 'emf') {
        const namespace =
          definition.metric.kind === 'metric'
            ? definition.metric.metric.namespace
            : Object.values(definition.metric.metrics)[0]!.namespace;
        statuses.push({
          ...base,
          state: 'NOT_EVALUATED',
          since: null,
          reason: `not evaluated locally: ${NOT_LOCAL[namespace] ?? `${namespace} metrics exist only in AWS`}`,
          lastValue: null,
        });
        continue;
      }
      const periodMs = definition.periodSeconds * 1000;
      const end = (Math.floor(t / periodMs) + 1) * periodMs;
      const datapoints = periodDatapoints(definition, samples, { end, periods: evaluationRange(definition) });
      const before = stateOf(definition.id);
      const state = evaluateAlarm(definition, datapoints, before.state);
      const reason = stateReason(definition, datapoints, state, end);
      const lastValue = datapoints.findLast((v) => v !== null) ?? null;
      const changed = state !== before.state;
      const next: Kept = {
        state,
        since: changed || before.since === null ? at.toISOString() : before.since,
        reason: changed ? reason : before.reason,
        lastValue: lastValue ?? before.lastValue,
      };
      kept.set(definition.id, next);
      states[definition.id] = state;
      statuses.push({ ...base, ...next });
      if (changed) {
        transitions.push([definition, { name: base.name, from: before.state, to: state, reason, at }]);
      }
    }
    const { page } = catalog;
    const pageBefore = stateOf(page.id);
    const pageState = evaluateComposite(page, states);
    const children = page.anyOf.filter((id) => states[id] === 'ALARM');
    const pageChanged = pageState !== pageBefore.state;
    const pageReason =
      children.length > 0 ? `In ALARM: ${children.map(nameOf).join(', ')}.` : 'No child alarm in ALARM.';
    const pageKept: Kept = {
      state: pageState,
      since: pageChanged || pageBefore.since === null ? at.toISOString() : pageBefore.since,
      reason: pageChanged ? pageReason : pageBefore.reason,
      lastValue: null,
    };
    kept.set(page.id, pageKept);
    statuses.push({
      id: page.id,
      name: nameOf(page.id),
      severity: page.severity,
      metric: 'composite',
      condition: compositeConditionText(page.anyOf.length),
      description: page.description,
      runbook: page.runbook,
      ...pageKept,
    });

    const snapshot: AlarmsSnapshot = {
      evaluatedAt: at.toISOString(),
      stage: environment.stage,
      alarms: statuses,
    };
    for (const [definition, transition] of transitions) {
      if (notifies(transition, definition.severity, definition.guardrail))
        await publish(definition, transition);
    }
    if (pageChanged) {
      const transition = {
        name: nameOf(page.id),
        from: pageBefore.state,
        to: pageState,
        reason: pageReason,
        at,
      };
      if (notifies(transition, 'page')) await publish(page, transition, children);
    }
    // After the notifications (a crash in between notifies again rather than never), written whole
    // and renamed so a reader never sees half a file; `keel alarms --evaluate` waits for it.
    const file = alarmsFile(options.home);
    await writeFile(`${file}.tmp`, `${JSON.stringify(snapshot, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
    for (const [definition, transition] of transitions) {
      if (!definition.guardrail || transition.to !== 'ALARM' || !options.onGuardrailAlarm) continue;
      await options
        .onGuardrailAlarm(definition, transition)
        .catch((error: Error) => log(`alarm ${transition.name}: the rollout guard failed: ${error.message}`));
    }
    return snapshot;
  }

  let running: Promise<AlarmsSnapshot> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const evaluate = () => {
    running ??= evaluateOnce().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    evaluate,
    start(intervalMs) {
      const tick = () => {
        evaluate()
          .catch((error: unknown) => log(`alarm evaluation failed: ${(error as Error).message}`))
          .finally(() => {
            if (timer) timer = setTimeout(tick, intervalMs);
          });
      };
      timer = setTimeout(tick, 0);
    },
    async stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}
