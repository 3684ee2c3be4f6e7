/** Reading a synthesized CloudFormation template: its resources and IAM statements, asserted on by shape. */
import type { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';

export type Resource = {
  Type: string;
  // biome-ignore lint/suspicious/noExplicitAny: template JSON, asserted on by shape
  Properties: Record<string, any>;
  Condition?: string;
  DependsOn?: string[];
};
export type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

/** The one resource of `type` in the template, with its logical id; fails the test unless exactly one. */
export function only(template: Template, type: string): [string, Resource] {
  const found = Object.entries(template.findResources(type)) as [string, Resource][];
  expect(found, type).toHaveLength(1);
  return found[0]!;
}

/** Every statement of the policies attached to the role with logical id `role`, actions sorted. */
export function statementsOf(template: Template, role: string): Statement[] {
  return (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[])
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${role}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
    .map((s) => ({ ...s, Action: typeof s.Action === 'string' ? s.Action : [...s.Action].sort() }));
}
