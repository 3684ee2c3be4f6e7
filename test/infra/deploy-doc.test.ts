import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AssetManifestArtifact, type CloudAssembly } from 'aws-cdk-lib/cx-api';
import { describe, expect, it } from 'vitest';
import { PREDICT_ROUTES } from '#lib/constructs/predict-api.ts';
import {
  idleCost,
  idleCostTable,
  leftAfterDestroyTable,
  scheduledRunsTable,
  stackResourcesOf,
  usd,
} from '#lib/idle-cost.ts';
import { OFFLINE_ENV, synthesizeStage } from '#lib/offline-synth.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { loadKeelConfig, parseKeelConfig } from '#shared/config/keel-config.ts';

/**
 * docs/deploy.md computed from the synthesized templates: what each example stage costs idle, what a
 * teardown leaves, the roles a deployer assumes, the services CloudFormation creates; and the capacity
 * plan's fixed costs. A resource added to a stack without updating the docs fails here.
 */

const doc = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');
const deployDoc = doc('docs/deploy.md');

/** `config/<stage>.json`, or `input` under the stage's name, synthesized as `cdk synth` would offline. */
function synth(stage: string, input?: unknown): CloudAssembly {
  const config =
    input === undefined ? loadKeelConfig({ root: REPO_ROOT, stage }) : parseKeelConfig(input, stage);
  return synthesizeStage({ stage, config });
}
const assemblies = {
  dev: synth('dev'),
  prod: synth('prod'),
  ecs: synth('ecs', { inference: { compute: 'ecs' } }),
};
const stacks = {
  dev: stackResourcesOf(assemblies.dev),
  prod: stackResourcesOf(assemblies.prod),
  ecs: stackResourcesOf(assemblies.ecs),
};

type Statement = { Sid?: string; Action: string | string[]; Resource: string | string[] };
/** The statement with `sid` of the JSON blocks of docs/deploy.md. */
function documentedStatement(sid: string): Statement {
  const statements = [...deployDoc.matchAll(/```json\n([\s\S]*?)```/g)].flatMap(
    (match) => (JSON.parse(match[1]!) as { Statement?: Statement[] }).Statement ?? [],
  );
  const found = statements.find((statement) => statement.Sid === sid);
  if (!found) throw new Error(`docs/deploy.md has no JSON policy statement "${sid}"`);
  return found;
}
const list = (value: string | string[]) => (typeof value === 'string' ? [value] : value);
/** An ARN of the assembly as the doc writes it: the doc's example account, the aws partition. */
const asDocumented = (arn: string) =>
  // The manifest's placeholder for the partition, which the CLI fills in.
  arn.replace(/\$\{AWS::Partition\}/g, 'aws').replaceAll(OFFLINE_ENV.account, '111122223333');

describe('docs/deploy.md: the idle cost and the teardown, computed from the templates', () => {
  it('quotes the idle cost of dev, prod and the ECS variant, and prod’s scheduled runs', () => {
    for (const resources of Object.values(stacks))
      expect(deployDoc).toContain(idleCostTable(idleCost(resources)));
    expect(deployDoc).toContain(scheduledRunsTable(idleCost(stacks.prod)));
  });

  it('lists what `cdk destroy` leaves of dev and prod', () => {
    expect(deployDoc).toContain(leftAfterDestroyTable(stacks.dev));
    expect(deployDoc).toContain(leftAfterDestroyTable(stacks.prod));
  });

  it('docs/capacity-and-cost.md’s fixed costs quote the same totals', () => {
    const item = doc('docs/capacity-and-cost.md')
      .split('\n- ')
      .find((text) => text.startsWith('**Fixed costs**'));
    expect(item, 'a "- **Fixed costs**" item in docs/capacity-and-cost.md').toBeDefined();
    for (const resources of Object.values(stacks)) expect(item).toContain(usd(idleCost(resources).total));
  });
});

describe('docs/deploy.md: the least a deployer needs', () => {
  it('lets the deployer assume exactly the bootstrap roles the stages deploy through, never the cfn-exec role', () => {
    const roles = new Set<string>();
    const passed = new Set<string>();
    const parameters = new Set<string>();
    for (const assembly of Object.values(assemblies)) {
      for (const stack of assembly.stacks) {
        roles.add(asDocumented(stack.assumeRoleArn!));
        roles.add(asDocumented(stack.lookupRole!.arn));
        passed.add(asDocumented(stack.cloudFormationExecutionRoleArn!));
        parameters.add(stack.bootstrapStackVersionSsmParameter!);
      }
      for (const artifact of assembly.artifacts) {
        if (!(artifact instanceof AssetManifestArtifact)) continue;
        const { files = {}, dockerImages = {} } = artifact.contents;
        for (const asset of [...Object.values(files), ...Object.values(dockerImages)]) {
          for (const destination of Object.values(asset.destinations))
            roles.add(asDocumented(destination.assumeRoleArn!));
        }
      }
    }
    const assume = documentedStatement('AssumeCdkBootstrapRoles');
    expect(assume.Action).toBe('sts:AssumeRole');
    // The ECS variant is what publishes an image: the image-publishing role is in the set.
    expect([...roles].some((role) => role.includes('image-publishing'))).toBe(true);
    expect([...list(assume.Resource)].sort()).toEqual([...roles].sort());
    for (const role of passed) expect(list(assume.Resource)).not.toContain(role);
    expect(list(documentedStatement('ReadBootstrapVersion').Resource)).toEqual(
      [...parameters].map((name) => `arn:aws:ssm:us-east-1:111122223333:parameter${name}`),
    );
  });

  it('narrows the cfn-exec role to exactly the services whose resources the stacks create', () => {
    /** The IAM prefix of each CloudFormation namespace the stacks use; a custom resource is a function. */
    const PREFIX: Readonly<Record<string, string>> = {
      ApiGateway: 'apigateway',
      CloudWatch: 'cloudwatch',
      DynamoDB: 'dynamodb',
      EC2: 'ec2',
      ECS: 'ecs',
      ElasticLoadBalancingV2: 'elasticloadbalancing',
      Events: 'events',
      IAM: 'iam',
      KMS: 'kms',
      KinesisFirehose: 'firehose',
      Lambda: 'lambda',
      Logs: 'logs',
      S3: 's3',
      SNS: 'sns',
      SQS: 'sqs',
      StepFunctions: 'states',
      WAFv2: 'wafv2',
    };
    const services = new Set(
      Object.values(stacks).flatMap((resources) =>
        resources.flatMap((stack) =>
          Object.values(stack.resources).map(({ Type }) => {
            if (Type.startsWith('Custom::')) return 'lambda';
            const namespace = Type.split('::')[1]!;
            expect(PREFIX, `the IAM prefix of ${Type}`).toHaveProperty(namespace);
            return PREFIX[namespace]!;
          }),
        ),
      ),
    );
    expect(list(documentedStatement('KeelStacks').Action)).toEqual([...services].sort().map((s) => `${s}:*`));
  });
});

describe('docs/deploy.md: who may call the API', () => {
  it('gives callers execute-api:Invoke on routes the API serves', () => {
    const call = documentedStatement('CallKeelPredict');
    expect(call.Action).toBe('execute-api:Invoke');
    const routes = PREDICT_ROUTES.map((route) => `/v1/${route.method}${route.path}`);
    for (const arn of list(call.Resource)) {
      expect(arn).toMatch(/^arn:aws:execute-api:us-east-1:111122223333:[a-z0-9]+\/v1\//);
      expect(routes).toContain(arn.slice(arn.indexOf('/v1/')));
    }
  });

  it('shows a cross-account configuration the schema takes', () => {
    const example = /```json\n(\{ "api": \{ "crossAccountCallers".*\})\n```/.exec(deployDoc);
    expect(example, 'the api.crossAccountCallers example of docs/deploy.md').not.toBeNull();
    expect(parseKeelConfig(JSON.parse(example![1]!), 'docs/deploy.md').api.crossAccountCallers).toHaveLength(
      2,
    );
  });
});
