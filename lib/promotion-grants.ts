import { Grant, type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';
import { modelKeys } from '#shared/registry/metadata.ts';

/**
 * What a function that promotes, rolls back or starts a rollout reads besides the registry table
 * (`checkPromotable`, shared/registry/registry.ts): the `metadata.json` of the version it moves (its
 * feature definition) and the online store's field manifest (which raw fields the ETL has loaded).
 * Both buckets are SSE-S3, so no key grant.
 */
export function grantPromotionReads(
  role: IRole,
  props: { readonly models: IBucket; readonly features: IBucket; readonly modelName: string },
): void {
  const metadata = props.models.arnForObjects(modelKeys(props.modelName, '*').metadata);
  Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject'], resourceArns: [metadata] });
  acknowledgeWildcardResource(role, {
    resource: metadata,
    actions: ['s3:GetObject'],
    reason: 'Reads the feature definition of the version it moves: versions are only known at run time',
  });
  Grant.addToPrincipal({
    grantee: role,
    actions: ['s3:GetObject'],
    resourceArns: [props.features.arnForObjects(STORE_FIELDS_KEY)],
  });
  // Until an ETL run wrote the manifest, S3 answers a reader without s3:ListBucket AccessDenied instead
  // of NoSuchKey: listing that one key is what lets "nothing recorded yet" read as such.
  role.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [props.features.bucketArn],
      conditions: { StringEquals: { 's3:prefix': STORE_FIELDS_KEY } },
    }),
  );
}
