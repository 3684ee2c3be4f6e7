import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { FEATURES_PREFIX } from '#shared/offline/features-dataset.ts';
import { QUALITY_REPORT_PREFIX } from '#shared/quality/job.ts';
import { OUTCOME_QUARANTINE_PREFIX } from '#shared/quality/outcomes.ts';
import { KEYS } from '#shared/resources.ts';
import { ScheduledJob, type ScheduledJobProps } from './scheduled-job.ts';

/**
 * Props of {@link QualityJob}: captures are read from and reports written to `outputs`, outcomes read
 * from `raw`, offline features read from and bad outcome rows quarantined in `features`.
 */
export type QualityJobProps = ScheduledJobProps;

/**
 * The daily quality job (`lambdas/quality/handler.ts`): a window of captured answers joined with the
 * outcomes that arrived, per version — realized and estimated quality, batch/real-time consistency,
 * training/serving skew — as EMF metrics (what the quality alarms watch) and a report under
 * `quality-reports/`. It holds a whole window of captured answers in memory, about 0.75 KB each: its
 * 3,008 MB hold about 3 million (docs/capacity-and-cost.md; lower the capture sample rates beyond).
 */
export class QualityJob extends ScheduledJob {
  constructor(scope: Construct, id: string, props: QualityJobProps) {
    super(scope, id, props, {
      job: 'quality',
      entry: 'lambdas/quality/handler.ts',
      description:
        'Keel quality job: captured answers joined with outcomes → realized and estimated quality, consistency, skew',
      serviceName: 'keel-quality',
      memorySize: 3008,
      timeout: Duration.minutes(15),
    });
    const { buckets } = props;
    this.grantObjects(buckets.outputs, QUALITY_REPORT_PREFIX, ['s3:PutObject'], 'Writes the quality report');
    this.grantList(buckets.raw, KEYS.outcomesPrefix);
    this.grantObjects(buckets.raw, KEYS.outcomesPrefix, ['s3:GetObject'], 'Reads the outcome files');
    this.grantObjects(
      buckets.features,
      OUTCOME_QUARANTINE_PREFIX,
      ['s3:PutObject'],
      'Quarantines bad outcome rows with their reason, beside the ETL’s quarantine',
    );
    this.grantList(buckets.features, FEATURES_PREFIX);
    this.grantObjects(
      buckets.features,
      FEATURES_PREFIX,
      ['s3:GetObject'],
      'Reads the offline features the skew check compares with',
    );
  }
}
