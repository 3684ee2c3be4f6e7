import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { DRIFT_REPORT_PREFIX } from '#shared/drift/job.ts';
import { CAPTURE_PREFIX } from '#shared/inference/capture.ts';
import { ScheduledJob, type ScheduledJobProps } from './scheduled-job.ts';

/** Props of {@link DriftJob}: captures are read from and reports written to the `outputs` bucket. */
export type DriftJobProps = ScheduledJobProps;

/**
 * The hourly drift job (`lambdas/drift/handler.ts`): the champion's captured predictions of the last
 * hour against its training baseline, drift metrics as EMF (what the drift alarms watch), the report
 * under `drift-reports/`.
 */
export class DriftJob extends ScheduledJob {
  constructor(scope: Construct, id: string, props: DriftJobProps) {
    super(scope, id, props, {
      job: 'drift',
      entry: 'lambdas/drift/handler.ts',
      description:
        'Keel drift job: captured predictions vs the champion’s baseline → drift metrics and report',
      serviceName: 'keel-drift',
      memorySize: 1024,
      timeout: Duration.minutes(5),
    });
    const { buckets, tables } = props;
    const captures = `${CAPTURE_PREFIX}model=${props.modelName}/`;
    this.grantList(buckets.outputs, captures);
    this.grantObjects(
      buckets.outputs,
      captures,
      ['s3:GetObject'],
      'Reads the captured predictions of its window',
    );
    this.grantObjects(
      buckets.outputs,
      DRIFT_REPORT_PREFIX,
      ['s3:PutObject'],
      'Writes the drift report of its window',
    );
    this.grantObjects(
      buckets.models,
      `models/${props.modelName}/`,
      ['s3:GetObject'],
      'Reads the champion’s baseline',
    );
    tables.modelRegistry.grant(this.function.role, 'dynamodb:GetItem');
  }
}
