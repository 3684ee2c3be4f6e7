import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AlarmState } from '#shared/monitoring/evaluate.ts';
import { readAlarmsSnapshot } from './alarms.ts';
import type { LocalDeployment } from './deployment/deployment.ts';
import { serveOnLoopback } from './loopback.ts';
import { AccessDeniedError, type Authorizer } from './rules/authorizer.ts';
import { principalFromSessionToken } from './rules/credentials.ts';

/**
 * The local stand-in for CloudWatch's DescribeAlarms, for code that reads alarm states itself (the
 * rollout decision reads its guardrails): the local alarm loop's states (`${KEEL_HOME}/alarms.json`)
 * answered in CloudWatch's JSON protocol. An alarm the stage deploys but the loop has not evaluated yet
 * is INSUFFICIENT_DATA, as a new alarm is in AWS. A request signed with a local role session is checked
 * as CloudWatch checks it: cloudwatch:DescribeAlarms on each named alarm's ARN, on "*" without names.
 */
export interface LocalCloudWatchOptions {
  readonly home: string;
  readonly deployment: LocalDeployment;
  /** Absent when AWS's rules are off (KEEL_AWS_RULES=off): every call is answered. */
  readonly authorizer?: Authorizer;
  /** The metric alarms the stage deploys, by name (the local alarm catalog's). */
  readonly alarmNames: readonly string[];
}

export interface LocalCloudWatch {
  readonly endpoint: string;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'GraniteServiceVersion20100801.';
const MAX_BODY = 64 * 1024;

class CloudWatchError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CloudWatchError';
  }
}

async function bodyOf(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY) throw new CloudWatchError(400, 'InvalidParameterValue', 'the request is too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    throw new CloudWatchError(400, 'SerializationException', 'the request body is not JSON');
  }
}

/** CloudWatch's JSON protocol writes times as epoch seconds. */
const epochSeconds = (iso: string | null) => (iso === null ? 0 : Date.parse(iso) / 1000);

export async function startLocalCloudWatch(options: LocalCloudWatchOptions): Promise<LocalCloudWatch> {
  const { deployment, authorizer } = options;
  const { region, account } = deployment.env;
  const arnOf = (name: string) => `arn:aws:cloudwatch:${region}:${account}:alarm:${name}`;
  const deployed = new Set(options.alarmNames);

  const describeAlarms = async (req: IncomingMessage) => {
    const body = await bodyOf(req);
    const names = Array.isArray(body.AlarmNames) ? body.AlarmNames.map(String) : undefined;
    const types = Array.isArray(body.AlarmTypes) ? body.AlarmTypes.map(String) : ['MetricAlarm'];
    const token = req.headers['x-amz-security-token'];
    const principal = principalFromSessionToken(Array.isArray(token) ? token[0] : token);
    if (principal && authorizer) {
      for (const resource of names ? names.map(arnOf) : ['*']) {
        await authorizer.authorize({ principal, action: 'cloudwatch:DescribeAlarms', resource });
      }
    }
    if (!types.includes('MetricAlarm')) return { MetricAlarms: [], CompositeAlarms: [] };
    const snapshot = await readAlarmsSnapshot(options.home);
    const states = new Map(snapshot?.alarms.map((a) => [a.name, a]) ?? []);
    const metricAlarms = [...deployed]
      .filter((name) => !names || names.includes(name))
      .map((name) => {
        const status = states.get(name);
        const state: AlarmState =
          status && status.state !== 'NOT_EVALUATED' ? status.state : 'INSUFFICIENT_DATA';
        const since = epochSeconds(status?.since ?? null);
        return {
          AlarmName: name,
          AlarmArn: arnOf(name),
          StateValue: state,
          StateReason: status?.reason ?? 'Unchecked: Initial alarm creation',
          StateUpdatedTimestamp: since,
          StateTransitionedTimestamp: since,
        };
      });
    return { MetricAlarms: metricAlarms, CompositeAlarms: [] };
  };

  const server: Server = createServer((req, res) => {
    const requestId = randomUUID();
    const target = String(req.headers['x-amz-target'] ?? '');
    const answer =
      target === `${TARGET_PREFIX}DescribeAlarms`
        ? describeAlarms(req)
        : Promise.reject(
            new CloudWatchError(
              400,
              'InvalidAction',
              `the local CloudWatch answers DescribeAlarms only, not ${target}`,
            ),
          );
    answer.then(
      (result) => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId });
        res.end(JSON.stringify(result));
      },
      (error: unknown) => {
        const known =
          error instanceof CloudWatchError
            ? error
            : error instanceof AccessDeniedError
              ? new CloudWatchError(403, 'AccessDenied', error.message)
              : new CloudWatchError(500, 'InternalServiceError', String(error));
        res.writeHead(known.status, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-requestid': requestId,
          // The query-compatible error code the SDK names the error by.
          'x-amzn-query-error': `${known.code};${known.status < 500 ? 'Sender' : 'Receiver'}`,
        });
        res.end(JSON.stringify({ __type: known.code, message: known.message }));
      },
    );
  });
  return serveOnLoopback(server);
}
