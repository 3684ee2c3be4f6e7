import { Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { Construct, IConstruct } from 'constructs';

/**
 * The cdk-nag rule packs every Keel app is checked against; the CDK app and the infrastructure tests
 * both call this, so a test passes only if `cdk synth` would. Findings are acknowledged one at a time,
 * on the construct concerned, with `Validations.of(construct).acknowledge({ id, reason })`.
 */
export function addNagChecks(app: Construct): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
}

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 finding for one wildcard `resource` (an ARN, possibly a
 * token) of the policies of `scope`, with `reason`. The finding names the resource as the template
 * has it, and a reference to another stack becomes an import only during synthesis, so the
 * acknowledgement is made then, from the resolved value, as cdk-nag flattens it.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  scope.node.addValidation({
    validate: () => {
      const flat = flattenCfnReference(Stack.of(scope).resolve(resource));
      Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
      return [];
    },
  });
}
