/**
 * The SageMaker engine's fixed parts (stage config `retrain.engine: "sagemaker"`), shared by the stage
 * config, the state machine's construct and the retrain tasks: the algorithm image, its
 * hyperparameters, and where a run's training channels and output live in the features bucket.
 */

/** The built-in XGBoost algorithm's version: its container saves `xgboost-model` as UBJSON. */
export const XGBOOST_IMAGE_VERSION = '3.0-5';

/** The account of AWS's built-in XGBoost image in each region Keel knows it for. */
export const XGBOOST_IMAGE_ACCOUNTS: Readonly<Record<string, string>> = {
  'us-east-1': '683313688378',
  'us-east-2': '257758044811',
  'us-west-2': '246618743249',
  'eu-west-1': '141502667606',
  'eu-central-1': '492215442770',
  'ap-south-1': '720646828776',
};

/** AWS's built-in XGBoost image in `region`, or undefined where Keel does not know its account. */
export function builtInXgboostImage(region: string): string | undefined {
  const account = XGBOOST_IMAGE_ACCOUNTS[region];
  return account === undefined
    ? undefined
    : `${account}.dkr.ecr.${region}.amazonaws.com/sagemaker-xgboost:${XGBOOST_IMAGE_VERSION}`;
}

export const ECR_IMAGE =
  /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/;
export const ECR_IMAGE_RULE =
  'an ECR image URI, e.g. 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5';
export const SAGEMAKER_INSTANCE_TYPE = /^ml\.[a-z0-9]+\.[a-z0-9]+$/;

export const SAGEMAKER_TRAINING_DEFAULTS = {
  instanceType: 'ml.m5.xlarge',
  instanceCount: 1,
  maxRuntimeHours: 4,
  volumeSizeGb: 50,
} as const;

/** SageMaker's own limits: 28 days of runtime, 16 TB volumes; Keel's: 20 instances. */
export const SAGEMAKER_TRAINING_LIMITS = {
  instanceCount: 20,
  maxRuntimeHours: 672,
  volumeSizeGb: 16_384,
} as const;

/**
 * The reference FastAPI service's XGBoost parameters, plus early stopping on the validation channel
 * as Keel's own trainer stops (10 rounds without improvement).
 */
export const XGBOOST_HYPERPARAMETERS = {
  objective: 'binary:logistic',
  num_round: '100',
  max_depth: '6',
  eta: '0.1',
  tree_method: 'hist',
  early_stopping_rounds: '10',
} as const;

/** Shares of customers in each channel, by the hash of their id (held-out as the Lambda trainer's). */
export const SPLIT = { heldOut: 0.2, validation: 0.1 } as const;

/** Held-out rows read back for parity and the champion gate, at most (memory of the import task). */
export const HELD_OUT_CAP = 200_000;

/**
 * A run's objects in the features bucket, each kind under its own prefix so that IAM can hold the
 * training job to reading `train/` and `validation/` and writing `output/` (never the held-out rows).
 */
export const SAGEMAKER_PREFIX = 'sagemaker/';
/**
 * Days a run's channels and model archive stay in the features bucket: the imported model lives on in
 * the registry, and the channels are copies of the offline dataset.
 */
export const SAGEMAKER_RUN_RETENTION_DAYS = 30;
export type Channel = 'train' | 'validation' | 'heldout';
export const sagemakerKeys = {
  channelPrefix: (channel: Channel) => `${SAGEMAKER_PREFIX}${channel}/`,
  outputPrefix: `${SAGEMAKER_PREFIX}output/`,
  runsPrefix: `${SAGEMAKER_PREFIX}runs/`,
} as const;

/** The run's prefixes: `sagemaker/<kind>/<run>/`. */
export function runPrefixes(run: string) {
  const channel = (c: Channel) => `${sagemakerKeys.channelPrefix(c)}${run}/`;
  return {
    train: channel('train'),
    validation: channel('validation'),
    heldout: channel('heldout'),
    output: `${sagemakerKeys.outputPrefix}${run}/`,
    run: `${sagemakerKeys.runsPrefix}${run}/`,
  };
}

export const channelPartKey = (prefix: string, index: number) =>
  `${prefix}part-${String(index).padStart(5, '0')}.csv`;

/**
 * The training job's name (also the run's): unique per start, under SageMaker's 63 characters, and
 * starting `keel-<stage>-`, the prefix the state machine may create jobs under.
 */
export function trainingJobName(stage: string, at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${trainingJobPrefix(stage)}${stamp}-${random}`;
}
export const trainingJobPrefix = (stage: string) => `keel-${stage}-`;
