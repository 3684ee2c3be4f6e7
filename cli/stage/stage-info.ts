import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { type AwsTarget, awsTargetFromEnv } from '#shared/aws/clients.ts';
import { KeelError } from '#shared/errors.ts';
import type { PipelineName } from '#shared/pipelines/definitions.ts';
import { BUCKET_ROLES, type ResourceNames, TABLE_ROLES } from '#shared/resources.ts';

/**
 * A deployed stage as the CLI sees it: resource names, the API URL and the state machines, read from
 * the outputs of its CloudFormation stacks (`Keel-<stage>-Data`, `-Inference`, `-Pipelines`; see
 * lib/keel-app.ts), so nothing about a deployment is configured twice.
 */
export interface StageInfo {
  readonly stage: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  /** The API's base URL (stage path included), from the inference stack; undefined if not deployed. */
  readonly apiUrl: string | undefined;
  /** State machine ARNs by pipeline, from the pipelines stack; empty if not deployed. */
  readonly stateMachines: Partial<Record<PipelineName, string>>;
}

/** The stage cannot be resolved (not deployed, another region or account, no credentials). */
export class StageError extends KeelError {
  readonly code = 'Unavailable';
}

export const stackName = (stage: string, part: 'Data' | 'Inference' | 'Pipelines') => `Keel-${stage}-${part}`;

const pascal = (role: string) => role.charAt(0).toUpperCase() + role.slice(1);

/** Output keys of the stacks (lib/stacks/*.ts), by what the CLI needs. */
export const STAGE_OUTPUTS = {
  bucket: (role: string) => `${pascal(role)}BucketName`,
  table: (role: string) => `${pascal(role)}TableName`,
  apiUrl: 'ApiUrl',
  stateMachines: {
    etl: 'EtlStateMachineArn',
    retrain: 'RetrainStateMachineArn',
    batch: 'BatchScoringStateMachineArn',
    rollout: 'RolloutStateMachineArn',
  },
} as const;

async function outputsOf(
  cfn: CloudFormationClient,
  name: string,
  required: boolean,
): Promise<Record<string, string> | undefined> {
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: name }));
    return Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (!required && /does not exist/.test(message)) return undefined;
    throw new StageError(
      /does not exist/.test(message)
        ? `stack ${name} does not exist in ${await cfn.config.region()}: deploy the stage (npx cdk deploy -c stage=...) ` +
            'or pass the --region (and --profile) it was deployed with'
        : `cannot read stack ${name}: ${message}`,
      { cause: error },
    );
  }
}

/**
 * Resolves a stage from its stack outputs. The data stack is required; the inference and pipelines
 * stacks only for the commands that use them. Emulators: KEEL_S3_ENDPOINT / KEEL_DYNAMODB_ENDPOINT
 * and the SDK's AWS_ENDPOINT_URL_CLOUDFORMATION point the clients elsewhere.
 */
export async function resolveStage(
  stage: string,
  options: { region?: string; cfn?: CloudFormationClient } = {},
) {
  const fromEnv = awsTargetFromEnv();
  const target: AwsTarget = { ...fromEnv, region: options.region ?? fromEnv.region };
  const cfn = options.cfn ?? new CloudFormationClient({ region: target.region });
  try {
    const [data, inference, pipelines] = await Promise.all([
      outputsOf(cfn, stackName(stage, 'Data'), true),
      outputsOf(cfn, stackName(stage, 'Inference'), false),
      outputsOf(cfn, stackName(stage, 'Pipelines'), false),
    ]);
    const names = {} as ResourceNames;
    const missing: string[] = [];
    for (const [role, key] of [
      ...BUCKET_ROLES.map((r) => [r, STAGE_OUTPUTS.bucket(r)] as const),
      ...TABLE_ROLES.map((r) => [r, STAGE_OUTPUTS.table(r)] as const),
    ]) {
      const value = data?.[key];
      if (value) names[role] = value;
      else missing.push(key);
    }
    if (missing.length > 0) {
      throw new StageError(
        `stack ${stackName(stage, 'Data')} lacks the outputs ${missing.join(', ')}: redeploy it with this version of Keel`,
      );
    }
    const stateMachines: Partial<Record<PipelineName, string>> = {};
    for (const [pipeline, key] of Object.entries(STAGE_OUTPUTS.stateMachines)) {
      const arn = pipelines?.[key];
      if (arn) stateMachines[pipeline as PipelineName] = arn;
    }
    const info: StageInfo = {
      stage,
      target,
      names,
      apiUrl: inference?.[STAGE_OUTPUTS.apiUrl],
      stateMachines,
    };
    return info;
  } finally {
    if (!options.cfn) cfn.destroy();
  }
}
