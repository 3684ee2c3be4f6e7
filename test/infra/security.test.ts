import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApp } from '../support/cdk.ts';

/**
 * Security properties of every template `cdk synth` writes (the app run as the CDK CLI runs it, cdk-nag
 * included): no IAM action `*`; a `Resource: "*"` only where a cdk-nag acknowledgement with a reason
 * names it; every bucket encrypted and TLS-only; every queue and topic encrypted; every log group, and
 * the log group of every function, with a retention.
 */
type Resource = { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> };
type Statement = { Effect: string; Action?: unknown; Resource?: unknown; Condition?: unknown };
interface Template {
  readonly stack: string;
  readonly resources: Record<string, Resource>;
}

let outdir: string;
let templates: Template[];
/** Every acknowledged cdk-nag finding: construct path, rule id, reason. */
let acknowledgements: { path: string; id: string; reason: string }[];

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'keel-security-'));
  // As the CLI does: each resource names its construct path (where acknowledgements are recorded).
  const failure = await runApp(outdir, { 'aws:cdk:enable-path-metadata': 'true' });
  if (failure) throw failure;
  const files = readdirSync(outdir);
  templates = files
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => ({
      stack: f.replace('.template.json', ''),
      resources: JSON.parse(readFileSync(join(outdir, f), 'utf8')).Resources,
    }));
  acknowledgements = files
    .filter((f) => f.endsWith('.metadata.json'))
    .flatMap((f) =>
      Object.entries(
        JSON.parse(readFileSync(join(outdir, f), 'utf8')) as Record<
          string,
          { type: string; data: unknown }[]
        >,
      ).flatMap(([path, entries]) =>
        entries
          .filter((e) => e.type === 'aws:cdk:acknowledged-rules')
          .flatMap((e) =>
            Object.entries(e.data as Record<string, string>).map(([id, reason]) => ({
              path,
              id: id.replace(/^annotation::/i, ''),
              reason,
            })),
          ),
      ),
    );
}, 600_000);
afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);
const all = (type: string) =>
  templates.flatMap(({ stack, resources }) =>
    Object.entries(resources)
      .filter(([, r]) => r.Type === type)
      .map(([id, r]) => ({ stack, id, resource: r, props: r.Properties ?? {} })),
  );
const pathOf = (resource: Resource) => `/${String(resource.Metadata?.['aws:cdk:path'] ?? '')}`;

/** Identity policies: policy resources, inline policies of roles, managed policies. */
function identityStatements() {
  const found: { where: string; path: string; statement: Statement }[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::Role']) {
    for (const { stack, id, resource, props } of all(type)) {
      const documents = [
        props.PolicyDocument,
        ...((props.Policies as { PolicyDocument: unknown }[] | undefined) ?? []).map((p) => p.PolicyDocument),
      ];
      for (const document of documents) {
        for (const statement of ((document as { Statement?: Statement[] })?.Statement ?? []) as Statement[])
          found.push({ where: `${stack}/${id}`, path: pathOf(resource), statement });
      }
    }
  }
  return found;
}

/** Resource policies: buckets, topics, queues, keys. */
function resourceStatements() {
  const found: { where: string; statement: Statement }[] = [];
  for (const [type, key] of [
    ['AWS::S3::BucketPolicy', 'PolicyDocument'],
    ['AWS::SNS::TopicPolicy', 'PolicyDocument'],
    ['AWS::SQS::QueuePolicy', 'PolicyDocument'],
    ['AWS::KMS::Key', 'KeyPolicy'],
  ] as const) {
    for (const { stack, id, props } of all(type)) {
      for (const statement of ((props[key] as { Statement?: Statement[] })?.Statement ?? []) as Statement[])
        found.push({ where: `${stack}/${id}`, statement });
    }
  }
  return found;
}

describe('IAM in every synthesized template', () => {
  it('synthesizes the four stacks', () => {
    expect(templates.map((t) => t.stack).sort()).toEqual(
      ['Data', 'Inference', 'Monitoring', 'Pipelines'].map((s) =>
        expect.stringMatching(new RegExp(`-${s}$`)),
      ),
    );
    expect(identityStatements().length).toBeGreaterThan(20);
  });

  it('grants no action "*" in any identity or resource policy', () => {
    const offenders = [...identityStatements(), ...resourceStatements()]
      .filter(({ statement }) => statement.Effect === 'Allow')
      .filter(({ statement }) => asArray(statement.Action).some((a) => a === '*' || a === '*:*'))
      .map(({ where }) => where);
    expect(offenders).toEqual([]);
  });

  it('allows Resource "*" only where a cdk-nag acknowledgement with a reason covers that role', () => {
    const wildcard = identityStatements().filter(
      ({ statement }) => statement.Effect === 'Allow' && asArray(statement.Resource).includes('*'),
    );
    expect(wildcard.length).toBeGreaterThan(0); // X-Ray and log delivery have no resource-level permissions
    const unexplained = wildcard
      .filter(
        ({ path }) =>
          !acknowledgements.some(
            (a) =>
              a.id === 'AwsSolutions-IAM5[Resource::*]' &&
              a.reason.trim().length >= 20 &&
              (path === a.path || path.startsWith(`${a.path}/`)),
          ),
      )
      .map(({ where, statement }) => `${where}: ${JSON.stringify(statement.Action)}`);
    expect(unexplained).toEqual([]);
  });

  it('gives every acknowledgement a reason that says why', () => {
    expect(acknowledgements.length).toBeGreaterThan(0);
    const bare = acknowledgements.filter((a) => a.reason.trim().length < 20).map((a) => `${a.path} ${a.id}`);
    expect(bare).toEqual([]);
  });
});

describe('encryption, TLS and retention in every synthesized template', () => {
  it('encrypts every bucket and denies it any request without TLS', () => {
    const buckets = all('AWS::S3::Bucket');
    expect(buckets.length).toBeGreaterThan(0);
    const policies = all('AWS::S3::BucketPolicy');
    for (const { stack, id, props } of buckets) {
      const rules = (props.BucketEncryption as { ServerSideEncryptionConfiguration?: unknown[] } | undefined)
        ?.ServerSideEncryptionConfiguration;
      expect(rules?.length, `${stack}/${id} encryption`).toBeGreaterThan(0);
      const policy = policies.find(
        (p) => p.stack === stack && JSON.stringify(p.props.Bucket) === JSON.stringify({ Ref: id }),
      );
      const statements = ((policy?.props.PolicyDocument as { Statement: Statement[] } | undefined)
        ?.Statement ?? []) as Statement[];
      expect(
        statements.some(
          (s) =>
            s.Effect === 'Deny' &&
            JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
        ),
        `${stack}/${id} TLS-only policy`,
      ).toBe(true);
    }
  });

  it('encrypts every queue and every topic', () => {
    const queues = all('AWS::SQS::Queue');
    const topics = all('AWS::SNS::Topic');
    expect(queues.length + topics.length).toBeGreaterThan(0);
    for (const { stack, id, props } of queues)
      expect(props.KmsMasterKeyId ?? props.SqsManagedSseEnabled, `${stack}/${id}`).toBeTruthy();
    for (const { stack, id, props } of topics) expect(props.KmsMasterKeyId, `${stack}/${id}`).toBeTruthy();
  });

  it('keeps every log group for a bounded time, including each function’s own', () => {
    const groups = all('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThan(0);
    for (const { stack, id, props } of groups)
      expect(props.RetentionInDays, `${stack}/${id}`).toEqual(expect.any(Number));
    for (const { stack, id, props } of all('AWS::Lambda::Function')) {
      const ref = (props.LoggingConfig as { LogGroup?: { Ref?: string } } | undefined)?.LogGroup?.Ref;
      expect(ref, `${stack}/${id} logs to a log group of its own stack`).toBeDefined();
      expect(groups.some((g) => g.stack === stack && g.id === ref)).toBe(true);
    }
  });
});

describe('KMS: whoever may send to an encrypted topic or queue may use its key', () => {
  type Target = { stack: string; id: string; key: string; sends: string };
  const allows = (statement: Statement, actions: readonly string[]) =>
    statement.Effect === 'Allow' && actions.every((action) => asArray(statement.Action).includes(action));
  /** What SNS and SQS need of a sender on an encrypted topic or queue: GenerateDataKey (or GenerateDataKey*) and Decrypt. */
  const allowsKms = (statement: Statement) =>
    allows(statement, ['kms:Decrypt']) &&
    (allows(statement, ['kms:GenerateDataKey']) || allows(statement, ['kms:GenerateDataKey*']));
  const refersTo = (value: unknown, id: string) =>
    JSON.stringify(value ?? null).includes(`{"Ref":"${id}"}`) ||
    JSON.stringify(value ?? null).includes(`{"Fn::GetAtt":["${id}","Arn"]}`);

  /** Every topic and queue encrypted with a customer managed key, with the logical id of that key. */
  function encryptedTargets(): Target[] {
    return [
      ...all('AWS::SNS::Topic').map((t) => ({ ...t, sends: 'sns:Publish' })),
      ...all('AWS::SQS::Queue').map((q) => ({ ...q, sends: 'sqs:SendMessage' })),
    ]
      .filter(({ props }) => props.KmsMasterKeyId !== undefined)
      .map(({ stack, id, props, sends }) => {
        const key = all('AWS::KMS::Key').find(
          (k) => k.stack === stack && refersTo(props.KmsMasterKeyId, k.id),
        );
        // An AWS managed key (alias/aws/sns) cannot be granted to CloudWatch, EventBridge or SNS.
        expect(key, `${stack}/${id} is encrypted with a customer managed key of its stack`).toBeDefined();
        return { stack, id, key: key!.id, sends };
      });
  }

  /** The statements of the key's policy that let `service` encrypt and decrypt with it. */
  const keyAllowsService = (target: Target, service: string) =>
    all('AWS::KMS::Key')
      .filter((k) => k.stack === target.stack && k.id === target.key)
      .flatMap((k) => (k.props.KeyPolicy as { Statement: Statement[] }).Statement)
      .some(
        (s) =>
          allowsKms(s) &&
          asArray((s as Statement & { Principal?: { Service?: unknown } }).Principal?.Service).includes(
            service,
          ),
      );

  it('finds the encrypted topics (pipeline notifications, on-call)', () => {
    expect(encryptedTargets().length).toBeGreaterThanOrEqual(2);
  });

  it('lets every role that may send to one use its key (kms:GenerateDataKey and kms:Decrypt on that key)', () => {
    const missing: string[] = [];
    for (const target of encryptedTargets()) {
      const policies = all('AWS::IAM::Policy').filter((p) => p.stack === target.stack);
      const statementsOf = (role: unknown) =>
        policies
          .filter((p) => asArray(p.props.Roles).some((r) => JSON.stringify(r) === JSON.stringify(role)))
          .flatMap((p) => (p.props.PolicyDocument as { Statement: Statement[] }).Statement);
      const senders = policies
        .filter((p) =>
          (p.props.PolicyDocument as { Statement: Statement[] }).Statement.some(
            (s) => allows(s, [target.sends]) && refersTo(s.Resource, target.id),
          ),
        )
        .flatMap((p) => asArray(p.props.Roles));
      for (const role of senders) {
        const canUseKey = statementsOf(role).some(
          (s) => allowsKms(s) && refersTo(s.Resource, target.key) && !asArray(s.Resource).includes('*'),
        );
        if (!canUseKey) missing.push(`${target.stack}: ${JSON.stringify(role)} → ${target.id}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('lets every service that may send to one use its key (CloudWatch alarms, resource-policy principals)', () => {
    const missing: string[] = [];
    for (const target of encryptedTargets()) {
      const alarms = [...all('AWS::CloudWatch::Alarm'), ...all('AWS::CloudWatch::CompositeAlarm')].filter(
        (a) =>
          a.stack === target.stack &&
          ['AlarmActions', 'OKActions', 'InsufficientDataActions'].some((k) =>
            refersTo(a.props[k], target.id),
          ),
      );
      if (alarms.length > 0 && !keyAllowsService(target, 'cloudwatch.amazonaws.com'))
        missing.push(`${target.stack}/${target.id}: cloudwatch.amazonaws.com (${alarms.length} alarms)`);
      const services = [...all('AWS::SNS::TopicPolicy'), ...all('AWS::SQS::QueuePolicy')]
        .filter((p) => p.stack === target.stack && refersTo(p.props.Topics ?? p.props.Queues, target.id))
        .flatMap((p) => (p.props.PolicyDocument as { Statement: Statement[] }).Statement)
        .filter((s) => allows(s, [target.sends]))
        .flatMap((s) => asArray((s as Statement & { Principal?: { Service?: unknown } }).Principal?.Service));
      for (const service of new Set(services.filter(Boolean) as string[])) {
        if (!keyAllowsService(target, service)) missing.push(`${target.stack}/${target.id}: ${service}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('lets each pipeline state machine use the notifications topic’s key', () => {
    const pipelines = templates.find((t) => t.stack.endsWith('-Pipelines'))!.resources;
    const topic = Object.entries(pipelines).find(
      ([, r]) =>
        r.Type === 'AWS::SNS::Topic' && String(r.Properties?.DisplayName).endsWith('pipeline notifications'),
    )!;
    const key = JSON.stringify(topic[1].Properties!.KmsMasterKeyId);
    const machines = Object.values(pipelines).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
    expect(machines).toHaveLength(4);
    for (const machine of machines) {
      const role = (machine.Properties!.RoleArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const statements = Object.values(pipelines)
        .filter((r) => r.Type === 'AWS::IAM::Policy' && refersTo(r.Properties!.Roles, role))
        .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
      expect(
        // CDK merges grants of the same actions: the key may be one resource of several.
        statements.some((s) => allowsKms(s) && [s.Resource].flat().some((r) => JSON.stringify(r) === key)),
        String(machine.Properties!.StateMachineName),
      ).toBe(true);
    }
  });
});
