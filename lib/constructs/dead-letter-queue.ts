import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

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
