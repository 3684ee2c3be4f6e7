import { ArnFormat, CfnCondition, CfnParameter, type Duration, Fn, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnSubscription, type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';
import { isKnown } from '#lib/prop-checks.ts';

/** Props of {@link OnCallTopic}. */
export interface OnCallTopicProps {
  /** Shown as the sender of the notifications, e.g. `Keel dev on-call`. */
  readonly displayName: string;
  /**
   * The on-call email address, fixed at synth time (`-c onCallEmail=…`). When left out, the stack
   * takes it at deploy time instead, from the CloudFormation parameter `OnCallEmail`, whose empty
   * default subscribes nobody.
   *
   * @default - the `OnCallEmail` parameter
   */
  readonly email?: string;
  /**
   * An HTTPS endpoint (a pager or chat webhook) that receives every notification, fixed at synth time
   * (`-c onCallWebhookUrl=https://…`). When left out, the stack takes it at deploy time from the
   * CloudFormation parameter `OnCallWebhookUrl`, whose empty default subscribes nothing.
   *
   * @default - the `OnCallWebhookUrl` parameter
   */
  readonly webhookUrl?: string;
  /**
   * How long a notification SNS could not deliver stays in the dead-letter queue.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
}

/** What SNS accepts as an email endpoint, checked before a deploy fails on it. */
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** An https URL with a host; SNS refuses anything else for the `https` protocol. */
const WEBHOOK_PATTERN = /^https:\/\/[^\s/?#]+[^\s]*$/;

/** One of on-call's endpoints: fixed, or a deploy-time parameter subscribed only when `condition` holds. */
interface OnCallEndpoint {
  readonly id: string;
  readonly protocol: 'email' | 'https';
  readonly endpoint: string;
  readonly condition?: CfnCondition;
}

/**
 * The on-call topic every Keel alarm notifies: KMS-encrypted with a rotated key that CloudWatch may
 * use to publish, TLS-only, with an email subscription and an optional HTTPS webhook subscription.
 * Each endpoint is a synth-time value (validated here) or, when absent, a deploy-time parameter whose
 * empty value creates no subscription (a CloudFormation condition). The same endpoints can receive
 * other topics' messages too ({@link OnCallTopic.deliverFrom}).
 */
export class OnCallTopic extends Construct {
  public readonly topic: Topic;
  public readonly key: Key;
  /** Where SNS puts a notification it could not deliver to a subscription (an email, the webhook). */
  public readonly deadLetterQueue: Queue;
  private readonly endpoints: readonly OnCallEndpoint[];

  constructor(scope: Construct, id: string, props: OnCallTopicProps) {
    super(scope, id);
    this.validateProps(props);

    this.key = new Key(this, 'Key', {
      enableKeyRotation: true,
      description: `${props.displayName}: encrypts the on-call topic`,
    });
    // CloudWatch alarms publish to an encrypted topic only if they may use its key.
    this.key.grant(
      new ServicePrincipal('cloudwatch.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
      }),
      'kms:Decrypt',
      'kms:GenerateDataKey*',
    );
    this.topic = new Topic(this, 'Topic', {
      displayName: props.displayName,
      masterKey: this.key,
      enforceSSL: true,
    });
    // The topic policy enforceSSL creates replaces SNS's default one, which let the account's alarms
    // publish: without this statement every alarm action fails ("no resource-based policy allows").
    const account = Stack.of(this).account;
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowAlarmsOfThisAccount',
        actions: ['sns:Publish'],
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnLike: {
            'aws:SourceArn': Stack.of(this).formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );

    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor: 'the on-call subscriptions (SNS redrive policy)',
      retention: props.deadLetterRetention,
    });

    this.endpoints = [
      this.endpoint('Email', 'email', props.email, {
        parameter: 'OnCallEmail',
        description: 'Email address of on-call (confirm the subscription email SNS sends); empty: no email',
        pattern: '^$|^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$',
      }),
      this.endpoint('Webhook', 'https', props.webhookUrl, {
        parameter: 'OnCallWebhookUrl',
        description:
          'HTTPS endpoint (pager or chat webhook) that receives every alarm and pipeline notice; empty: none',
        pattern: '^$|^https://[^\\s/?#]+[^\\s]*$',
      }),
    ];
    this.subscribeEndpoints('', this.topic);
  }

  /**
   * Delivers another topic's messages to on-call's endpoints too (the pipelines' notifications): each
   * endpoint is subscribed to it as to the on-call topic, on the same conditions, and what SNS cannot
   * deliver goes to the same dead-letter queue. No key grant is needed: SNS decrypts an encrypted
   * topic's messages itself to deliver them to email and HTTPS, and the queue is SQS-managed (SSE-SQS).
   * `id` prefixes the subscriptions' ids, e.g. `PipelineNotifications` → `PipelineNotificationsEmail`.
   */
  public deliverFrom(id: string, topic: ITopic): void {
    if (id === '')
      throw new Error(`OnCallTopic ${this.node.path}: deliverFrom needs an id for the subscriptions`);
    this.subscribeEndpoints(id, topic);
  }

  /** Subscribes each endpoint to `topic`; SNS may then dead-letter into the queue for that topic. */
  private subscribeEndpoints(prefix: string, topic: ITopic): void {
    for (const { id, protocol, endpoint, condition } of this.endpoints) {
      const subscription = new CfnSubscription(this, `${prefix}${id}`, {
        topicArn: topic.topicArn,
        protocol,
        endpoint,
        redrivePolicy: { deadLetterTargetArn: this.deadLetterQueue.queueArn },
      });
      if (condition) subscription.cfnOptions.condition = condition;
    }
    this.deadLetterQueue.addToResourcePolicy(
      new PolicyStatement({
        actions: ['sqs:SendMessage'],
        principals: [new ServicePrincipal('sns.amazonaws.com')],
        resources: [this.deadLetterQueue.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': topic.topicArn } },
      }),
    );
  }

  /** Refuses an endpoint SNS would refuse; one known only at deploy time passes. */
  private validateProps(props: OnCallTopicProps): void {
    assertValidOnCallEndpoints(`OnCallTopic ${this.node.path}`, props);
  }

  /**
   * An endpoint fixed at synth time, or else a deploy-time parameter whose empty value subscribes
   * nothing (a condition on each subscription to it).
   */
  private endpoint(
    id: string,
    protocol: 'email' | 'https',
    value: string | undefined,
    deployTime: { parameter: string; description: string; pattern: string },
  ): OnCallEndpoint {
    if (value !== undefined) return { id, protocol, endpoint: value };
    // Parameters belong to the stack: their logical ids are what `cdk deploy --parameters` names.
    const stack = Stack.of(this);
    const parameter = new CfnParameter(stack, deployTime.parameter, {
      type: 'String',
      default: '',
      description: deployTime.description,
      allowedPattern: deployTime.pattern,
      constraintDescription:
        protocol === 'email' ? 'must be an email address or empty' : 'must be an https:// URL or empty',
    });
    const condition = new CfnCondition(stack, `${deployTime.parameter}Given`, {
      expression: Fn.conditionNot(Fn.conditionEquals(parameter.valueAsString, '')),
    });
    return { id, protocol, endpoint: parameter.valueAsString, condition };
  }
}

/**
 * Refuses an email or webhook given at synth time that SNS would refuse at deploy time, saying what
 * to give instead; `owner` names the caller in the message. A value known only at deploy time passes.
 */
export function assertValidOnCallEndpoints(
  owner: string,
  endpoints: Pick<OnCallTopicProps, 'email' | 'webhookUrl'>,
): void {
  if (isKnown(endpoints.email) && !EMAIL_PATTERN.test(endpoints.email)) {
    throw new Error(
      `${owner}: email "${endpoints.email}" is not an email address: give one like oncall@example.com, or leave it out to set the OnCallEmail parameter at deploy time`,
    );
  }
  if (isKnown(endpoints.webhookUrl) && !isHttpsUrl(endpoints.webhookUrl)) {
    throw new Error(
      `${owner}: webhookUrl "${endpoints.webhookUrl}" is not an https:// URL: SNS delivers only to https endpoints; give one like https://hooks.example.com/keel, or leave it out to set the OnCallWebhookUrl parameter at deploy time`,
    );
  }
}

function isHttpsUrl(value: string): boolean {
  if (!WEBHOOK_PATTERN.test(value)) return false;
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}
