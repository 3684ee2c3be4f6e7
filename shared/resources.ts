/**
 * The data resources Keel owns, declared once: the CDK data stack creates them in AWS and the local
 * platform creates the same names on its embedded servers. Physical names are derived here so that a
 * handler, the CLI and a test agree on them without looking anything up.
 */

/** The buckets, by role. `models` is the registry's artifact store and is versioned in AWS. */
export const BUCKET_ROLES = ['raw', 'features', 'models', 'outputs'] as const;
export type BucketRole = (typeof BUCKET_ROLES)[number];

/** Key schema of each DynamoDB table; attribute types are all strings. */
export const TABLES = {
  /** Online feature store: the latest raw record of each customer. */
  onlineFeatures: { partitionKey: 'customer_id' },
  /** Model registry: version counter, versions, aliases and the deployment log under one model key. */
  modelRegistry: { partitionKey: 'pk', sortKey: 'sk' },
} as const satisfies Record<string, { partitionKey: string; sortKey?: string }>;
export type TableRole = keyof typeof TABLES;
export const TABLE_ROLES = Object.keys(TABLES) as TableRole[];

/** Where a deployment lives; the local platform uses {@link LOCAL_ENVIRONMENT}. */
export interface DeploymentEnvironment {
  /** Deployment stage, e.g. `dev` or `prod`: lower-case letters, digits and dashes. */
  readonly stage: string;
  readonly account: string;
  readonly region: string;
}

export const LOCAL_ENVIRONMENT: DeploymentEnvironment = {
  stage: 'local',
  account: '000000000000',
  region: 'us-east-1',
};

const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,15}$/;

export function assertValidStage(stage: string): void {
  if (!STAGE_PATTERN.test(stage)) {
    throw new Error(
      `stage "${stage}" is invalid: use 1-16 lower-case letters, digits or dashes, starting with a letter`,
    );
  }
}

/** S3 bucket names are global, so they carry the account and region. */
export function bucketName(role: BucketRole, env: DeploymentEnvironment): string {
  assertValidStage(env.stage);
  return `keel-${env.stage}-${role}-${env.account}-${env.region}`;
}

const TABLE_SUFFIX: Record<TableRole, string> = {
  onlineFeatures: 'online-features',
  modelRegistry: 'model-registry',
};

export function tableName(role: TableRole, env: DeploymentEnvironment): string {
  assertValidStage(env.stage);
  return `keel-${env.stage}-${TABLE_SUFFIX[role]}`;
}

/** Environment variables through which handlers receive resource names (set by CDK and by `keel up`). */
export const RESOURCE_ENV = {
  raw: 'KEEL_RAW_BUCKET',
  features: 'KEEL_FEATURES_BUCKET',
  models: 'KEEL_MODELS_BUCKET',
  outputs: 'KEEL_OUTPUTS_BUCKET',
  onlineFeatures: 'KEEL_ONLINE_TABLE',
  modelRegistry: 'KEEL_REGISTRY_TABLE',
} as const satisfies Record<BucketRole | TableRole, string>;

export type ResourceNames = Record<BucketRole | TableRole, string>;

export function resourceNames(env: DeploymentEnvironment): ResourceNames {
  return {
    raw: bucketName('raw', env),
    features: bucketName('features', env),
    models: bucketName('models', env),
    outputs: bucketName('outputs', env),
    onlineFeatures: tableName('onlineFeatures', env),
    modelRegistry: tableName('modelRegistry', env),
  };
}

/** The variables a handler needs, as a plain record (CDK `environment`, or the local process env). */
export function resourceEnvironment(names: ResourceNames): Record<string, string> {
  return Object.fromEntries(
    (Object.keys(RESOURCE_ENV) as (keyof ResourceNames)[]).map((role) => [RESOURCE_ENV[role], names[role]]),
  );
}

/** S3 key layout, shared by writers and readers. */
export const KEYS = {
  /** Raw CSV files dropped by `keel data generate` or an upstream system. */
  rawPrefix: 'raw/',
  /** Outcome CSV files (whether customers churned), in the raw bucket. */
  outcomesPrefix: 'outcomes/',
  /** ETL runs' plans and chunk results, in the features bucket (kept out of the state machine's state). */
  etlRunsPrefix: 'etl-runs/',
  /** Batch runs' plans and segment results, in the outputs bucket. */
  batchRunsPrefix: 'batch-runs/',
} as const;

/** A time in object keys: `20261206T020000Z` (UTC, to the second), which sorts as the times do. */
export function keyTimestamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
