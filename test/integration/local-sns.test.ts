import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
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

/**
 * The local SNS stand-in the drift function publishes its notice through: SNS's own checks (the role's
 * sns:Publish, then the topic key's KMS actions) against the synthesized policies, SNS's errors, and
 * delivery to the notifications file and the on-call webhook.
 */
let deployment: LocalDeployment;
let home: string;
let sns: LocalSns;
let webhook: Server;
const posted: Record<string, string>[] = [];
let onCallTopic: string;

beforeAll(async () => {
  deployment = await loadLocalDeployment();
  home = await mkdtemp(join(tmpdir(), 'keel-sns-'));
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      posted.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  onCallTopic = functionOf(deployment, 'lambdas/drift/handler.ts').environment[KEEL_ENV.onCallTopicArn]!;
  sns = await startLocalSns({
    deployment,
    authorizer: new Authorizer(deployment),
    publish: fileNotifier(home),
    webhook: {
      options: { url: `http://127.0.0.1:${(webhook.address() as { port: number }).port}/`, retries: 0 },
      topicArn: onCallTopic,
    },
  });
}, 120_000);
afterAll(async () => {
  await sns?.close();
  webhook?.close();
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

  it('answers an unknown topic with NotFound', async () => {
    const client = clientAs('lambdas/drift/handler.ts');
    const error = await client
      .send(new PublishCommand({ TopicArn: `${onCallTopic}-nope`, Message: 'x' }))
      .catch((e: Error) => e);
    client.destroy();
    expect(error).toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });
  });
});
