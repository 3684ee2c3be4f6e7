import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionOf, type LocalDeployment, loadLocalDeployment } from '#local/deployment/deployment.ts';
import { fileNotifier, readNotifications } from '#local/notifications.ts';
import { Authorizer } from '#local/rules/authorizer.ts';
import { roleSessionEnvironment } from '#local/rules/credentials.ts';
import { type LocalSns, startLocalSns } from '#local/sns.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { type RecordingWebhook, startRecordingWebhook } from '../support/webhook.ts';

/**
 * The local SNS stand-in the drift function publishes its notice through: SNS's own checks (the role's
 * sns:Publish, then the topic key's KMS actions) against the synthesized policies, SNS's errors, and
 * delivery to the notifications file and the on-call webhook.
 */
let deployment: LocalDeployment;
let home: string;
let sns: LocalSns;
let webhook: RecordingWebhook;
let posted: Record<string, string>[];
let onCallTopic: string;

beforeAll(async () => {
  deployment = await loadLocalDeployment();
  home = await mkdtemp(join(tmpdir(), 'keel-sns-'));
  webhook = await startRecordingWebhook();
  posted = webhook.posted;
  onCallTopic = functionOf(deployment, 'lambdas/drift/handler.ts').environment[KEEL_ENV.onCallTopicArn]!;
  sns = await startLocalSns({
    deployment,
    authorizer: new Authorizer(deployment),
    publish: fileNotifier(home),
    webhook: {
      options: { url: webhook.url, retries: 0 },
      topicArns: [onCallTopic],
    },
  });
}, 120_000);
afterAll(async () => {
  await sns?.close();
  await webhook?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

/** An SNS client signed as `entry`'s function role, as the function's environment would be. */
function clientAs(entry: string, handler = 'handler'): SNSClient {
  const { AWS_SESSION_TOKEN } = roleSessionEnvironment(
    functionOf(deployment, entry, handler).roleArn,
    'test',
  );
  return new SNSClient({
    region: deployment.env.region,
    endpoint: sns.endpoint,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: AWS_SESSION_TOKEN! },
  });
}

describe('local SNS Publish', () => {
  it('accepts the drift role on the on-call topic: notifications file, and the webhook in SNS’s envelope', async () => {
    const client = clientAs('lambdas/drift/handler.ts');
    const { MessageId } = await client.send(
      new PublishCommand({
        TopicArn: onCallTopic,
        Subject: 'Keel churn: data drift (page)',
        Message: '{"kind":"drift"}',
      }),
    );
    client.destroy();
    expect(MessageId).toMatch(/^[0-9a-f-]{36}$/);
    const [notification] = await readNotifications(home, 1);
    expect(notification).toMatchObject({
      source: `topic:${onCallTopic.split(':').at(-1)}`,
      subject: 'Keel churn: data drift (page)',
      message: { kind: 'drift' },
      webhook: { status: 'delivered', attempts: 1 },
    });
    expect(posted.at(-1)).toMatchObject({
      Type: 'Notification',
      TopicArn: onCallTopic,
      Message: '{"kind":"drift"}',
    });
  });

  it('refuses a role without sns:Publish on the topic as SNS does (AuthorizationErrorException), publishing nothing', async () => {
    const client = clientAs('lambdas/etl/handler.ts', 'plan');
    const error = await client
      .send(new PublishCommand({ TopicArn: onCallTopic, Message: 'x' }))
      .catch((e: Error) => e);
    client.destroy();
    expect(error).toMatchObject({ name: 'AuthorizationErrorException', $metadata: { httpStatusCode: 403 } });
    expect((await readNotifications(home, 10)).length).toBe(1);
  });

  it('posts to the webhook only what a topic on-call is subscribed to carries (not the approvals topic)', async () => {
    const approvals = [...deployment.topics.keys()].find((arn) => /-Approvals/.test(arn))!;
    // Unsigned: no role's policy to check, as with KEEL_AWS_RULES=off.
    const client = new SNSClient({
      region: deployment.env.region,
      endpoint: sns.endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const before = posted.length;
    await client.send(
      new PublishCommand({ TopicArn: approvals, Subject: 'approval', Message: '{"kind":"ask"}' }),
    );
    client.destroy();
    const [notification] = await readNotifications(home, 1);
    expect(notification).toMatchObject({ subject: 'approval', message: { kind: 'ask' } });
    expect(notification!.webhook).toBeUndefined();
    expect(posted.length).toBe(before);
  });

  it('answers an unknown topic with NotFound', async () => {
    const client = clientAs('lambdas/drift/handler.ts');
    const error = await client
      .send(new PublishCommand({ TopicArn: `${onCallTopic}-nope`, Message: 'x' }))
      .catch((e: Error) => e);
    client.destroy();
    expect(error).toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });
  });
});
