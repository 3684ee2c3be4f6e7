import { expect } from 'vitest';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';
import type { Statement } from './cfn-template.ts';

/** A data-stack bucket's ARN as another stack of stage `test` imports it. */
const bucketArn = (role: 'Features' | 'Models') => ({
  'Fn::ImportValue': expect.stringMatching(
    new RegExp(`^Keel-test-Data:ExportsOutputFnGetAtt${role}Bucket\\w*Arn`),
  ),
});
const objects = (role: 'Features' | 'Models', key: string) => ({
  'Fn::Join': ['', [bucketArn(role), `/${key}`]],
});

/**
 * What `grantPromotionReads` (lib/promotion-grants.ts) gives a role of stage `test` outside the data
 * stack: the metadata of the model's versions and the online store's field manifest, and listing that
 * one key (so that S3 says NoSuchKey, not AccessDenied, before an ETL wrote it). No KMS: SSE-S3 buckets.
 */
export const promotionReadStatements = (): Statement[] => [
  {
    Effect: 'Allow',
    Action: 's3:GetObject',
    Resource: [objects('Features', STORE_FIELDS_KEY), objects('Models', 'models/churn/*/metadata.json')],
  },
  {
    Effect: 'Allow',
    Action: 's3:ListBucket',
    Condition: { StringEquals: { 's3:prefix': STORE_FIELDS_KEY } },
    Resource: bucketArn('Features'),
  },
];
