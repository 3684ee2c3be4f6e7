import { userInfo } from 'node:os';
import { type AwsClients, createAwsClients } from '#shared/aws/clients.ts';
import type { EtlDeps } from '#shared/etl/etl.ts';
import { modelNameFromEnv } from '#shared/registry/metadata.ts';
import type { RegistryDeps } from '#shared/registry/registry.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { type RuntimeInfo, runtimeTarget } from './running-platform.ts';

/** What CLI commands need to work against a running platform, built once per command. */
export interface PlatformContext {
  readonly clients: AwsClients;
  readonly names: ResourceNames;
  readonly modelName: string;
  readonly registry: RegistryDeps;
  readonly etl: EtlDeps;
  /** Who is acting, for the deployment log. */
  readonly actor: string;
  close(): void;
}

/** Builds the context from a running local platform's runtime.json, or a deployed stage (no endpoints). */
export function platformContext(
  runtime: Pick<RuntimeInfo, 'region' | 'names'> & { endpoints?: RuntimeInfo['endpoints'] },
): PlatformContext {
  const clients = createAwsClients(
    runtime.endpoints
      ? runtimeTarget({ ...runtime, endpoints: runtime.endpoints })
      : { region: runtime.region },
  );
  const names = runtime.names as ResourceNames;
  return {
    clients,
    names,
    modelName: modelNameFromEnv(),
    registry: { s3: clients.s3, dynamo: clients.dynamo, bucket: names.models, table: names.modelRegistry },
    etl: {
      s3: clients.s3,
      dynamo: clients.dynamo,
      rawBucket: names.raw,
      featuresBucket: names.features,
      onlineTable: names.onlineFeatures,
    },
    actor: `${userInfo().username}@cli`,
    close() {
      clients.s3.destroy();
      clients.dynamo.destroy();
    },
  };
}
