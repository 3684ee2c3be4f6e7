import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { postWebhook, snsEnvelope, type WebhookOptions } from './alarms-message.ts';
import type { LocalDeployment } from './deployment/deployment.ts';
import { serveOnLoopback } from './loopback.ts';
import type { Notifier } from './notifications.ts';
import { AccessDeniedError, type Authorizer, type Principal } from './rules/authorizer.ts';
import { principalFromSessionToken } from './rules/credentials.ts';

/**
 * The local stand-in for SNS's Publish, for code that calls SNS itself (the drift function's notice;
 * the state machines' publish states are the runner's own). A request signed with a local role session
 * is checked as SNS checks it: sns:Publish on the topic through the role's policies, then the topic
 * key's kms:GenerateDataKey and kms:Decrypt through the key policy, refused with SNS's error when not
 * allowed. An accepted message goes where the topic's messages go on this machine ({@link deliverLocally}).
 */
export interface LocalSnsOptions {
  readonly deployment: LocalDeployment;
  /** Absent when AWS's rules are off (KEEL_AWS_RULES=off): every publish is accepted. */
  readonly authorizer?: Authorizer;
  readonly publish: Notifier;
  readonly webhook?: OnCallWebhook;
}

/**
 * On-call's webhook (`KEEL_ONCALL_WEBHOOK`) and the topics it is subscribed to, as on-call's HTTPS
 * endpoint is in AWS: the on-call topic and the pipelines' notifications topic.
 */
export interface OnCallWebhook {
  readonly options: WebhookOptions;
  readonly topicArns: readonly string[];
}

/** A message SNS accepted on a topic. */
export interface PublishedMessage {
  readonly topicArn: string;
  /** Who published, for the notifications file: `topic:<name>`, `pipeline:<name>`. */
  readonly source: string;
  readonly subject: string;
  /** The message, parsed when it is JSON. */
  readonly body: unknown;
  readonly at: Date;
}

/**
 * Where a topic's messages go on this machine: the notifications file and the console, and for a topic
 * on-call's webhook is subscribed to, the webhook, in SNS's HTTPS envelope (the delivery's outcome is
 * recorded on the notification; a failed one fails no publish, as in SNS).
 */
export async function deliverLocally(
  publish: Notifier,
  webhook: OnCallWebhook | undefined,
  message: PublishedMessage,
): Promise<void> {
  const { topicArn, subject, body, at } = message;
  const delivery = webhook?.topicArns.includes(topicArn)
    ? await postWebhook(webhook.options, snsEnvelope(subject, body as Record<string, unknown>, topicArn, at))
    : undefined;
  await publish({
    at: at.toISOString(),
    source: message.source,
    subject,
    message: body,
    ...(delivery ? { webhook: delivery } : {}),
  });
}

export interface LocalSns {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** What SNS asks of a publisher on an encrypted topic. */
const SNS_PUBLISHER_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'];

/**
 * What SNS checks before it accepts a publish, for the state machines' publish states and for this
 * stand-in alike: the principal may publish to the topic, then use the topic's key through SNS.
 * A denial is an {@link AccessDeniedError} naming the action (sns:… or kms:…) that was refused.
 */
export async function authorizePublish(
  authorizer: Authorizer,
  deployment: LocalDeployment,
  principal: Principal,
  topicArn: string,
): Promise<void> {
  await authorizer.authorize({ principal, action: 'sns:Publish', resource: topicArn });
  const key = deployment.topics.get(topicArn)?.keyArn;
  if (key) {
    await authorizer.authorizeKey(
      principal,
      key,
      SNS_PUBLISHER_KEY_ACTIONS,
      `sns.${deployment.env.region}.amazonaws.com`,
    );
  }
}
const MAX_BODY = 512 * 1024;
const XMLNS = 'http://sns.amazonaws.com/doc/2010-03-31/';

const escapeXml = (text: string) =>
  text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );

class SnsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SnsError';
  }
}

async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY)
      throw new SnsError(400, 'InvalidParameter', 'the request is over the size SNS accepts');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startLocalSns(options: LocalSnsOptions): Promise<LocalSns> {
  const { deployment, authorizer } = options;

  const publish = async (req: IncomingMessage): Promise<string> => {
    const form = await formOf(req);
    if (form.get('Action') !== 'Publish') {
      throw new SnsError(
        400,
        'InvalidAction',
        `the local SNS answers Publish only, not ${form.get('Action')}`,
      );
    }
    const topicArn = form.get('TopicArn') ?? '';
    const message = form.get('Message');
    const subject = form.get('Subject') ?? '';
    const topic = deployment.topics.get(topicArn);
    if (!topic) throw new SnsError(404, 'NotFound', `Topic does not exist: ${topicArn}`);
    if (message === null) throw new SnsError(400, 'InvalidParameter', 'Invalid parameter: Message');
    const token = req.headers['x-amz-security-token'];
    const principal = principalFromSessionToken(Array.isArray(token) ? token[0] : token);
    if (principal && authorizer) {
      await authorizePublish(authorizer, deployment, principal, topicArn).catch(asSnsError);
    }
    let body: unknown = message;
    try {
      body = JSON.parse(message);
    } catch {
      // a plain-text message
    }
    await deliverLocally(options.publish, options.webhook, {
      topicArn,
      source: `topic:${topicArn.split(':').at(-1)}`,
      subject,
      body,
      at: new Date(),
    });
    return randomUUID();
  };

  const server: Server = createServer((req, res) => {
    const requestId = randomUUID();
    publish(req).then(
      (messageId) => {
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<PublishResponse xmlns="${XMLNS}"><PublishResult><MessageId>${messageId}</MessageId></PublishResult>` +
            `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
        );
      },
      (error: unknown) => {
        const known = error instanceof SnsError ? error : new SnsError(500, 'InternalError', String(error));
        res.writeHead(known.status, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${known.status < 500 ? 'Sender' : 'Receiver'}</Type>` +
            `<Code>${known.code}</Code><Message>${escapeXml(known.message)}</Message></Error>` +
            `<RequestId>${requestId}</RequestId></ErrorResponse>`,
        );
      },
    );
  });
  return serveOnLoopback(server);
}

/** An authorizer's denial as SNS reports it (the policy's, or the topic key's); anything else as it is. */
function asSnsError(error: unknown): never {
  if (!(error instanceof AccessDeniedError)) throw error;
  if (error.request.action.startsWith('kms:')) throw new SnsError(400, 'KMSAccessDenied', error.message);
  throw new SnsError(403, 'AuthorizationError', error.message);
}
