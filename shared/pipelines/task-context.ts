import { awsTargetFromEnv, createAwsClients } from '#shared/aws/clients.ts';
import { requireEnv } from '#shared/env.ts';
import { modelNameFromEnv } from '#shared/registry/metadata.ts';
import { RESOURCE_ENV, type ResourceNames } from '#shared/resources.ts';

/** What every pipeline task needs, read once from the environment (fail-fast) and built once per module. */
export function pipelineContext(env: Readonly<Record<string, string | undefined>> = process.env) {
  const names = Object.fromEntries(
    (Object.keys(RESOURCE_ENV) as (keyof ResourceNames)[]).map((role) => [
      role,
      requireEnv(RESOURCE_ENV[role], env),
    ]),
  ) as unknown as ResourceNames;
  const clients = createAwsClients(awsTargetFromEnv(env));
  return {
    names,
    clients,
    modelName: modelNameFromEnv(env),
    registry: { s3: clients.s3, dynamo: clients.dynamo, bucket: names.models, table: names.modelRegistry },
  };
}
