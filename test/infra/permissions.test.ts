import { beforeAll, describe, expect, it } from 'vitest';
import { functionOf, type LocalDeployment, loadLocalDeployment } from '#local/deployment/deployment.ts';
import { StageResolver } from '#local/deployment/intrinsics.ts';
import { synthesizeLocalStage } from '#local/deployment/synthesize.ts';
import { AccessDeniedError, Authorizer, type Principal } from '#local/rules/authorizer.ts';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';

/**
 * The synthesized app's permissions, evaluated as IAM and KMS evaluate them (the local platform's
 * authorizer over the local stage's templates): every call Keel's state machines and alarms make in
 * AWS must be allowed, and roles must not reach beyond their job.
 */
let deployment: LocalDeployment;
let authorizer: Authorizer;

beforeAll(async () => {
  deployment = await loadLocalDeployment();
  authorizer = new Authorizer(deployment);
});

const allowed = (request: Parameters<Authorizer['authorize']>[0]) =>
  authorizer.authorize(request).then(
    () => true,
    (error: unknown) => {
      if (error instanceof AccessDeniedError) return error.message;
      throw error;
    },
  );

type State = {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  ItemProcessor?: { States: Record<string, State> };
};

function taskStates(states: Record<string, State>): [string, State][] {
  return Object.entries(states).flatMap(([name, state]) => [
    ...(state.Type === 'Task' ? [[name, state] as [string, State]] : []),
    ...(state.ItemProcessor ? taskStates(state.ItemProcessor.States) : []),
  ]);
}

describe('what the state machines do with their roles', () => {
  it('every SNS publish state may publish to its topic and use the topic key (SNS checks both)', async () => {
    const checked: string[] = [];
    for (const machine of deployment.stateMachines.values()) {
      const principal: Principal = { kind: 'role', roleArn: machine.roleArn, session: machine.name };
      const states = taskStates((machine.definition as { States: Record<string, State> }).States);
      for (const [name, state] of states.filter(([, s]) =>
        s.Resource?.startsWith('arn:aws:states:::sns:publish'),
      )) {
        const topic = String(state.Parameters?.TopicArn);
        expect(
          await allowed({ principal, action: 'sns:Publish', resource: topic }),
          `${machine.name} "${name}"`,
        ).toBe(true);
        const key = deployment.topics.get(topic)?.keyArn;
        for (const action of key ? ['kms:GenerateDataKey', 'kms:Decrypt'] : []) {
          const decision = await allowed({
            principal,
            action,
            resource: key!,
            context: { 'kms:ViaService': 'sns.us-east-1.amazonaws.com' },
          });
          expect(decision, `${machine.name} "${name}" ${action}`).toBe(true);
        }
        checked.push(`${machine.name}/${name}`);
      }
    }
    expect(checked.length).toBeGreaterThanOrEqual(3);
  });

  it('every Lambda task may invoke its function, and nothing else', async () => {
    for (const machine of deployment.stateMachines.values()) {
      const principal: Principal = { kind: 'role', roleArn: machine.roleArn, session: machine.name };
      const states = taskStates((machine.definition as { States: Record<string, State> }).States);
      const invoked = states
        .map(([, s]) => String(s.Resource))
        .filter((r) => r.startsWith('arn:aws:lambda:'));
      expect(invoked.length).toBeGreaterThan(0);
      for (const fn of deployment.functions.values()) {
        const decision = await allowed({ principal, action: 'lambda:InvokeFunction', resource: fn.arn });
        expect(decision === true, `${machine.name} → ${fn.name}`).toBe(invoked.includes(fn.arn));
      }
    }
  });
});

describe('what the alarms do', () => {
  it('CloudWatch may publish every alarm action to its topic and use the topic key (topic and key policies)', async () => {
    const templates = await synthesizeLocalStage();
    const resolver = new StageResolver(templates, deployment.env);
    const actions: { alarm: string; topic: string }[] = [];
    for (const [stack, template] of Object.entries(templates)) {
      for (const [id, resource] of Object.entries(template.Resources)) {
        if (!resource.Type.startsWith('AWS::CloudWatch::') || !resource.Type.endsWith('Alarm')) continue;
        const props = resolver.resolve(stack, resource.Properties) as Record<string, string[] | undefined>;
        for (const topic of [...(props.AlarmActions ?? []), ...(props.OKActions ?? [])]) {
          if (topic.startsWith('arn:aws:sns:')) actions.push({ alarm: resolver.arnOf(stack, id), topic });
        }
      }
    }
    expect(actions.length).toBeGreaterThan(5);
    for (const { alarm, topic } of actions) {
      const principal: Principal = { kind: 'service', service: 'cloudwatch.amazonaws.com', sourceArn: alarm };
      expect(await allowed({ principal, action: 'sns:Publish', resource: topic }), alarm).toBe(true);
      const key = deployment.topics.get(topic)?.keyArn;
      for (const action of key ? ['kms:GenerateDataKey', 'kms:Decrypt'] : []) {
        expect(await allowed({ principal, action, resource: key! }), `${alarm} ${action}`).toBe(true);
      }
    }
  });
});

describe('least privilege of the functions', () => {
  it('an ETL chunk may read raw files and write features, not read models or write the registry', async () => {
    const fn = functionOf(deployment, 'lambdas/etl/handler.ts', 'chunk');
    const principal: Principal = { kind: 'role', roleArn: fn.roleArn, session: fn.name };
    const bucket = (role: string) => `arn:aws:s3:::keel-local-${role}-000000000000-us-east-1`;
    expect(await allowed({ principal, action: 's3:GetObject', resource: `${bucket('raw')}/raw/a.csv` })).toBe(
      true,
    );
    expect(
      await allowed({ principal, action: 's3:PutObject', resource: `${bucket('features')}/features/x` }),
    ).toBe(true);
    expect(
      await allowed({
        principal,
        action: 's3:GetObject',
        resource: `${bucket('models')}/models/churn/v1/model.onnx`,
      }),
    ).toMatch(
      /^User: arn:aws:sts::000000000000:assumed-role\/.+EtlChunk.+ is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::keel-local-models-.+\/model\.onnx because no identity-based policy allows the s3:GetObject action$/,
    );
    const registry = `arn:aws:dynamodb:us-east-1:000000000000:table/keel-local-model-registry`;
    expect(await allowed({ principal, action: 'dynamodb:PutItem', resource: registry })).not.toBe(true);
  });

  it('the functions that promote may read a version’s metadata and the store’s field manifest, nothing more', async () => {
    const bucket = (role: string) => `arn:aws:s3:::keel-local-${role}-000000000000-us-east-1`;
    for (const fn of [
      functionOf(deployment, 'lambdas/retrain/handler.ts', 'promote'),
      functionOf(deployment, 'lambdas/rollout/handler.ts', 'decide'),
    ]) {
      const principal: Principal = { kind: 'role', roleArn: fn.roleArn, session: fn.name };
      const reads = (resource: string) => allowed({ principal, action: 's3:GetObject', resource });
      expect(await reads(`${bucket('models')}/models/churn/v12/metadata.json`), fn.name).toBe(true);
      expect(await reads(`${bucket('features')}/${STORE_FIELDS_KEY}`), fn.name).toBe(true);
      // Listing that one key only: S3 then says NoSuchKey, not AccessDenied, before an ETL wrote it.
      const lists = (prefix: string) =>
        allowed({
          principal,
          action: 's3:ListBucket',
          resource: bucket('features'),
          context: { 's3:prefix': prefix },
        });
      expect(await lists(STORE_FIELDS_KEY), fn.name).toBe(true);
      for (const denied of [
        reads(`${bucket('models')}/models/churn/v12/model.onnx`),
        reads(`${bucket('models')}/models/other/v1/metadata.json`),
        reads(`${bucket('features')}/features/part-00000.csv`),
        lists('features/'),
        allowed({ principal, action: 's3:PutObject', resource: `${bucket('features')}/${STORE_FIELDS_KEY}` }),
      ]) {
        expect(await denied, fn.name).toMatch(/is not authorized to perform/);
      }
    }
  });

  it('the predict function may read the store and the registry, and write nothing there', async () => {
    const fn = functionOf(deployment, 'lambdas/predict/handler.ts');
    const principal: Principal = { kind: 'role', roleArn: fn.roleArn, session: fn.name };
    const table = (name: string) => `arn:aws:dynamodb:us-east-1:000000000000:table/keel-local-${name}`;
    expect(await allowed({ principal, action: 'dynamodb:GetItem', resource: table('online-features') })).toBe(
      true,
    );
    expect(
      await allowed({ principal, action: 'dynamodb:PutItem', resource: table('online-features') }),
    ).not.toBe(true);
    expect(
      await allowed({ principal, action: 'dynamodb:UpdateItem', resource: table('model-registry') }),
    ).not.toBe(true);
  });
});
