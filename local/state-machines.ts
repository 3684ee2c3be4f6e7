import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { REPO_ROOT } from '#lib/paths.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';
import { type PipelineName, stateMachineName } from '#shared/pipelines/definitions.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

/** An Amazon States Language definition, as the state machine resource in the synthesized template holds it. */
export type AslDefinition = { StartAt: string; States: Record<string, AslState> } & Record<string, unknown>;
export type AslState = Record<string, unknown> & { Type: string };

type Template = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

const LOCAL_ACCOUNT = LOCAL_ENVIRONMENT.account;
const LOCAL_REGION = LOCAL_ENVIRONMENT.region;

/**
 * Resolves the intrinsic functions CDK writes into a DefinitionString to local stand-ins: a function's
 * ARN becomes `arn:aws:lambda:…:function:<logical id>` (the local runner binds task states by name, so
 * only the shape of the ARN matters), a Ref becomes the logical id.
 */
export function resolveIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, unknown>;
  if ('Fn::Join' in node) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(resolveIntrinsics).join(separator);
  }
  if ('Fn::GetAtt' in node) {
    const [logicalId] = node['Fn::GetAtt'] as [string, string];
    return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${logicalId}`;
  }
  // A value another stack exports (the data stack's table names): its export name stands in, as the
  // local runner binds each task to the local resources itself.
  if ('Fn::ImportValue' in node) return `import:${resolveIntrinsics(node['Fn::ImportValue'])}`;
  if ('Ref' in node) {
    const ref = node.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[ref] ?? `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${ref}`;
  }
  throw new Error(`cannot resolve ${JSON.stringify(value).slice(0, 200)} in a state machine definition`);
}

/**
 * The one transformation the local runner applies (documented in the README): a Distributed Map becomes
 * an inline Map. Keel's Distributed Maps read their items from the state input (no ItemReader, no
 * ResultWriter), so iterating them inline visits the same items with the same processor.
 */
export function inlineDistributedMaps(definition: AslDefinition): AslDefinition {
  const visit = (states: Record<string, AslState>): Record<string, AslState> =>
    Object.fromEntries(
      Object.entries(states).map(([name, state]) => {
        if (state.Type !== 'Map') return [name, state];
        const processor = (state.ItemProcessor ?? state.Iterator) as AslDefinition & {
          ProcessorConfig?: { Mode?: string };
        };
        const inner = { ...processor, States: visit(processor.States) };
        if (processor.ProcessorConfig?.Mode !== 'DISTRIBUTED')
          return [name, { ...state, ItemProcessor: inner }];
        for (const unsupported of ['ItemReader', 'ResultWriter', 'ItemBatcher']) {
          if (unsupported in state) {
            throw new Error(`Map state "${name}" uses ${unsupported}, which the local runner cannot run`);
          }
        }
        const { ProcessorConfig: _config, ...rest } = inner as typeof inner & { ProcessorConfig?: unknown };
        const {
          Label: _label,
          ToleratedFailurePercentage: _p,
          ToleratedFailureCount: _c,
          ...mapState
        } = state;
        return [name, { ...mapState, ItemProcessor: { ...rest, ProcessorConfig: { Mode: 'INLINE' } } }];
      }),
    );
  return { ...definition, States: visit(definition.States) };
}

/**
 * Synthesizes the pipelines stack (without bundling any function: the definitions do not depend on
 * the code) and returns each pipeline's state machine definition as CloudFormation would create it.
 */
export function synthesizeStateMachines(
  stage = LOCAL_ENVIRONMENT.stage,
): Record<PipelineName, AslDefinition> {
  const outdir = mkdtempSync(join(tmpdir(), 'keel-synth-'));
  try {
    // The feature flags of cdk.json, as `cdk synth` would apply them.
    const { context } = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    };
    const app = new App({ outdir, context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const env = { account: LOCAL_ACCOUNT, region: LOCAL_REGION };
    const data = new DataStack(app, `Keel-${stage}-Data`, { stage, env });
    const pipelines = new PipelinesStack(app, `Keel-${stage}-Pipelines`, {
      stage,
      env,
      buckets: data.buckets,
      tables: data.tables,
    });
    const template = app.synth().getStackByName(pipelines.stackName).template as Template;
    const byName = new Map<string, AslDefinition>();
    for (const resource of Object.values(template.Resources)) {
      if (resource.Type !== 'AWS::StepFunctions::StateMachine') continue;
      const props = resource.Properties!;
      byName.set(
        props.StateMachineName as string,
        JSON.parse(resolveIntrinsics(props.DefinitionString)) as AslDefinition,
      );
    }
    const pick = (pipeline: PipelineName) => {
      const definition = byName.get(stateMachineName(pipeline, stage));
      if (!definition) throw new Error(`the synthesized pipelines stack has no ${pipeline} state machine`);
      return definition;
    };
    return { etl: pick('etl'), retrain: pick('retrain'), batch: pick('batch') };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
