import type { Duration } from 'aws-cdk-lib';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Subscription, SubscriptionProtocol, Topic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';
import { isKnown } from '#lib/prop-checks.ts';

/** Props of {@link ApprovalsTopic}. */
export interface ApprovalsTopicProps {
  /** Shown as the sender of the messages, e.g. `Keel prod approvals`. */
  readonly displayName: string;
  /**
   * Approvers' email addresses, each subscribed (SNS sends each a confirmation email first).
   *
   * @default - none
   */
  readonly emails?: readonly string[];
  /**
   * HTTPS endpoints (a chat or ticketing webhook) subscribed to every request and outcome.
   *
   * @default - none
   */
  readonly webhookUrls?: readonly string[];
  /**
   * How long a message SNS could not deliver to an approver stays in the dead-letter queue.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
}

/** What SNS accepts as an email endpoint, checked before a deploy fails on it. */
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The topic the retrain's approval gate asks on: each request (what is asked, and the exact commands
 * that approve or reject it) and each outcome (not approved, expired) is published here, and the
 * stage's approvers are subscribed to it. KMS-encrypted with a rotated key of its own and TLS-only,
 * like Keel's other topics; a publisher needs `sns:Publish` and the key's `kms:GenerateDataKey*` and
 * `kms:Decrypt` (`topic.grantPublish` grants all three).
 */
export class ApprovalsTopic extends Construct {
  public readonly topic: Topic;
  public readonly key: Key;
  /** Where SNS puts a request or outcome it could not deliver to an approver. */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: ApprovalsTopicProps) {
    super(scope, id);
    this.validateProps(props);
    const emails = props.emails ?? [];
    const webhookUrls = props.webhookUrls ?? [];

    this.key = new Key(this, 'Key', {
      enableKeyRotation: true,
      description: `${props.displayName}: encrypts the approvals topic`,
    });
    this.topic = new Topic(this, 'Topic', {
      displayName: props.displayName,
      masterKey: this.key,
      enforceSSL: true,
    });
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor: 'the approval subscriptions (SNS redrive policy)',
      retention: props.deadLetterRetention,
    });
    // Ids by position: a URL's slashes are not allowed in a construct id. The subscription lets SNS
    // send to the dead-letter queue (its queue policy, scoped to this topic).
    const subscribe = (id: string, protocol: SubscriptionProtocol, endpoint: string) =>
      new Subscription(this, id, {
        topic: this.topic,
        protocol,
        endpoint,
        deadLetterQueue: this.deadLetterQueue,
      });
    for (const [index, endpoint] of emails.entries()) {
      subscribe(`Email${index}`, SubscriptionProtocol.EMAIL, endpoint);
    }
    for (const [index, endpoint] of webhookUrls.entries()) {
      subscribe(`Webhook${index}`, SubscriptionProtocol.HTTPS, endpoint);
    }
  }

  /** Refuses endpoints SNS would refuse, and one listed twice; values known only at deploy time pass. */
  private validateProps(props: ApprovalsTopicProps): void {
    const owner = `ApprovalsTopic ${this.node.path}`;
    const emails = (props.emails ?? []).filter(isKnown);
    const webhookUrls = (props.webhookUrls ?? []).filter(isKnown);
    for (const email of emails) {
      if (!EMAIL_PATTERN.test(email)) {
        throw new Error(`${owner}: "${email}" is not an email address: give one like lead@example.com`);
      }
    }
    for (const url of webhookUrls) {
      if (!isHttpsUrl(url)) {
        throw new Error(
          `${owner}: "${url}" is not an https:// URL: SNS delivers only to https endpoints, e.g. https://hooks.example.com/keel`,
        );
      }
    }
    for (const list of [emails, webhookUrls]) {
      const twice = list.find((value, index) => list.indexOf(value) !== index);
      if (twice !== undefined) throw new Error(`${owner}: "${twice}" is listed twice`);
    }
  }
}

function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname !== '';
  } catch {
    return false;
  }
}
