import { Duration } from 'aws-cdk-lib';
import type { IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import { Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';

/** Props of {@link RetrainOnAlarm}. */
export interface RetrainOnAlarmProps {
  /** The alarm whose move to ALARM starts a retraining (the data-drift page alarm). */
  readonly alarm: IAlarm;
  /** The retrain state machine (`PipelinesStack.stateMachines.retrain`). */
  readonly stateMachine: IStateMachine;
  /** Execution input: the retrain schedule's (`SCHEDULES`), so a drift-started run promotes only if better. */
  readonly input: Readonly<Record<string, unknown>>;
}

/**
 * An EventBridge rule that starts the retrain state machine when the alarm changes to ALARM. A start
 * EventBridge cannot deliver after its retries lands in an encrypted dead-letter queue.
 */
export class RetrainOnAlarm extends Construct {
  public readonly rule: Rule;
  public readonly deadLetterQueue: Queue;
  /** The role EventBridge assumes to start the execution. */
  public readonly role: Role;

  constructor(scope: Construct, id: string, props: RetrainOnAlarmProps) {
    super(scope, id);
    // The rule's own role, beside the rule. SfnStateMachine's default role is created beside the state
    // machine, in another stack, and exported from there to the rule: switching the rule off would then
    // make that stack, updated first, delete an export the rule's stack still imports.
    this.role = new Role(this, 'StartRole', {
      assumedBy: new ServicePrincipal('events.amazonaws.com'),
      description: 'Keel: EventBridge starts the retrain state machine when the drift alarm fires',
    });
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor: 'the retrain-on-drift rule target (EventBridge)',
    });
    this.rule = new Rule(this, 'Rule', {
      description: 'Keel: start the retrain pipeline when the data-drift page alarm goes to ALARM',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        resources: [props.alarm.alarmArn],
        detail: { state: { value: ['ALARM'] } },
      },
      targets: [
        new SfnStateMachine(props.stateMachine, {
          role: this.role,
          input: RuleTargetInput.fromObject(props.input),
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 3,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });
  }
}
