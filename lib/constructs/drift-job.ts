import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { DRIFT_REPORT_PREFIX } from '#shared/drift/job.ts';
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
    this.grantObjects(
      props.buckets.outputs,
      DRIFT_REPORT_PREFIX,
      ['s3:PutObject'],
      'Writes the drift report of its window',
    );
  }
}
