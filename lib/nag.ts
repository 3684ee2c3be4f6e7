import { Stack, Validations } from 'aws-cdk-lib';
import { CfnPolicy } from 'aws-cdk-lib/aws-iam';
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

/** A wildcard resource that AWS or Keel's design requires, and the only actions allowed on it. */
export interface WildcardGrant {
  /** The resource ARN with a `*` (possibly a token), or `*` itself. */
  readonly resource: string;
  /** The actions granted on it; any other action on the same resource keeps the finding. */
  readonly actions: readonly string[];
  readonly reason: string;
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 finding for one wildcard resource in the policies under
 * `scope` (a role), as long as only `grant.actions` are allowed on it: a later statement granting more
 * on the same resource is reported again. The finding names the resource as the template has it, and
 * a reference to another stack becomes an import only during synthesis, so the check and the
 * acknowledgement happen then, on the resolved policies, flattened as cdk-nag flattens them.
 */
export function acknowledgeWildcardResource(scope: IConstruct, grant: WildcardGrant): void {
  scope.node.addValidation({
    validate: () => {
      const stack = Stack.of(scope);
      const flat = flattenCfnReference(stack.resolve(grant.resource));
      const statements = scope.node
        .findAll()
        .filter((c): c is CfnPolicy => c instanceof CfnPolicy)
        .flatMap(
          (policy) => (stack.resolve(policy.policyDocument).Statement ?? []) as Record<string, unknown>[],
        );
      const onResource = statements.filter(
        (s) => s.Effect === 'Allow' && asArray(s.Resource).some((r) => flattenCfnReference(r) === flat),
      );
      if (onResource.every((s) => asArray(s.Action).every((a) => grant.actions.includes(a as string)))) {
        Validations.of(scope).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${flat}]`,
          reason: grant.reason,
        });
      }
      return [];
    },
  });
}
