import { Duration } from 'aws-cdk-lib';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';
import type { ScheduleDefinition } from '#shared/pipelines/schedules.ts';

/** Props of {@link PipelineSchedules}. */
export interface PipelineSchedulesProps {
  /** The schedules to create (from `shared/pipelines/schedules.ts`, the ones the local scheduler fires). */
  readonly schedules: readonly ScheduleDefinition[];
  /** The state machine each schedule target starts; a schedule whose target is missing is an error. */
  readonly targets: Readonly<Partial<Record<ScheduleDefinition['target'], IStateMachine>>>;
  /**
   * Turn every rule off, whatever each schedule's own `enabled` (e.g. a dev stage that runs pipelines by hand).
   *
   * @default - true (rules enabled)
   */
  readonly enabled?: boolean;
  /**
   * How long the dead-letter queue keeps an undelivered start.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
}

/**
 * One EventBridge rule per schedule, starting its state machine with the declared input. A start that
 * EventBridge cannot deliver after its retries lands in an encrypted dead-letter queue, not nowhere.
 */
export class PipelineSchedules extends Construct {
  public readonly deadLetterQueue: Queue;
  public readonly rules: Rule[];

  constructor(scope: Construct, id: string, props: PipelineSchedulesProps) {
    super(scope, id);
    this.validateProps(props);
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor: 'the schedule targets (EventBridge)',
      retention: props.deadLetterRetention,
    });
    this.rules = props.schedules.map((schedule) => {
      const target = props.targets[schedule.target]!;
      return new Rule(this, schedule.id, {
        description: `Keel: ${schedule.description}`,
        schedule: Schedule.expression(schedule.expression),
        enabled: (props.enabled ?? true) && (schedule.enabled ?? true),
        targets: [
          new SfnStateMachine(target, {
            input: RuleTargetInput.fromObject(schedule.input),
            deadLetterQueue: this.deadLetterQueue,
            retryAttempts: 3,
            maxEventAge: Duration.hours(2),
          }),
        ],
      });
    });
  }

  /** Refuses a schedule whose target is not given. */
  private validateProps(props: PipelineSchedulesProps): void {
    for (const schedule of props.schedules) {
      if (!props.targets[schedule.target]) {
        throw new Error(
          `PipelineSchedules ${this.node.path}: schedule ${schedule.id} targets "${schedule.target}", which is not ` +
            `among the targets given (${Object.keys(props.targets).join(', ')}); pass it or leave the schedule out`,
        );
      }
    }
  }
}
