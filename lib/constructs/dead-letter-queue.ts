import { CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  type DeadLetterQueueId,
  deadLetterQueueOutputs,
  RESOURCE_ALARM_PREFIX,
} from '#shared/monitoring/alarm-definitions.ts';

/** Props of {@link DeadLetterQueue}. */
export interface DeadLetterQueueProps {
  /**
   * What delivers its failures here, for the cdk-nag acknowledgement (e.g. "the drift schedule
   * (EventBridge)"). cdk-nag does not recognise EventBridge, SNS or Lambda destinations as DLQ use.
   */
  readonly deadLetterFor: string;
  /**
   * How long a failed message is kept for someone to look at it.
   *
   * @default - 14 days (the SQS maximum)
   */
  readonly retention?: Duration;
}

/** An encrypted, TLS-only SQS queue that receives what another service could not deliver. */
export class DeadLetterQueue extends Queue {
  constructor(scope: Construct, id: string, props: DeadLetterQueueProps) {
    // Before super(): a bad prop must not leave a half-built queue in the scope.
    DeadLetterQueue.validateProps(id, props);
    super(scope, id, {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: props.retention ?? Duration.days(14),
    });
    for (const ruleId of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) {
      Validations.of(this).acknowledge({
        id: ruleId,
        reason: `This queue is the dead-letter queue of ${props.deadLetterFor}, which cdk-nag does not recognise as DLQ use`,
      });
    }
  }

  /** Refuses an empty `deadLetterFor`: the acknowledgement must say what uses the queue. */
  private static validateProps(id: string, props: DeadLetterQueueProps): void {
    if (props.deadLetterFor.trim() === '') {
      throw new Error(`DeadLetterQueue ${id}: deadLetterFor must say what sends its failures here`);
    }
  }
}

/**
 * The queue's URL and ARN as outputs of its stack, named by `deadLetterQueueOutputs(id)` (e.g.
 * `OnCallDeadLetterQueueUrl`): what the runbook reads them by when its `dlq-depth-<id>` alarm fires.
 */
export function addDeadLetterQueueOutputs(id: DeadLetterQueueId, queue: IQueue): void {
  const stack = Stack.of(queue);
  const keys = deadLetterQueueOutputs(id);
  const alarm = `${RESOURCE_ALARM_PREFIX.dlqDepth}${id}`;
  new CfnOutput(stack, keys.url, { value: queue.queueUrl, description: `URL of the queue ${alarm} watches` });
  new CfnOutput(stack, keys.arn, { value: queue.queueArn, description: `ARN of the queue ${alarm} watches` });
}
