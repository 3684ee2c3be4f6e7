import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';
import { CDK_CONTEXT } from '../support/cdk.ts';

/**
 * No customer data in X-Ray (docs/security.md): every traced Lambda function and the ECS container run
 * with Powertools' tracer told to record neither responses nor error messages.
 */
const TRACER_OFF = { POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false', POWERTOOLS_TRACER_CAPTURE_ERROR: 'false' };

type Container = { Name: string; Environment?: { Name: string; Value: unknown }[] };
type Resource = {
  Type: string;
  Properties: {
    TracingConfig?: { Mode: string };
    Environment?: { Variables: Record<string, unknown> };
    ContainerDefinitions?: Container[];
  };
};

/** The environment of each traced function and of each container, by where it is, for one compute variant. */
function environments(compute: 'lambda' | 'ecs') {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const config = parseKeelConfig({ inference: { compute } }, 'config/test.json');
  addKeelStacks(app, { stage: 'test', env: { account: '123456789012', region: 'us-east-1' }, config });
  const functions: [string, unknown][] = [];
  const containers: [string, unknown][] = [];
  for (const stack of app.synth().stacks) {
    for (const [id, { Type, Properties }] of Object.entries(
      stack.template.Resources as Record<string, Resource>,
    )) {
      if (Type === 'AWS::Lambda::Function' && Properties.TracingConfig?.Mode === 'Active') {
        functions.push([`${stack.stackName}/${id}`, Properties.Environment?.Variables]);
      }
      if (Type === 'AWS::ECS::TaskDefinition') {
        for (const c of Properties.ContainerDefinitions ?? []) {
          const variables = Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));
          containers.push([`${stack.stackName}/${id}/${c.Name}`, variables]);
        }
      }
    }
  }
  return { functions, containers };
}

describe('X-Ray tracing of every Keel process', () => {
  it.each(['lambda', 'ecs'] as const)('records no responses or error messages (%s inference)', (compute) => {
    const { functions, containers } = environments(compute);
    // The pipelines' tasks and the drift job, and predict as a function or a container.
    expect(functions.length).toBeGreaterThanOrEqual(compute === 'lambda' ? 10 : 9);
    expect(containers).toHaveLength(compute === 'lambda' ? 0 : 1);
    for (const [where, variables] of [...functions, ...containers]) {
      expect(variables, where).toMatchObject(TRACER_OFF);
    }
  });
});
