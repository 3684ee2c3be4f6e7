import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { Construct } from 'constructs';

/**
 * The cdk-nag rule packs every Keel app is checked against; the CDK app and the infrastructure tests
 * both call this, so a test passes only if `cdk synth` would. Findings are acknowledged one at a time,
 * on the construct concerned, with `Validations.of(construct).acknowledge({ id, reason })`.
 */
export function addNagChecks(app: Construct): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
}
