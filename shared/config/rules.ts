/**
 * Rules that a stage's configuration (keel-config.ts) and the constructs' props (`lib/`) both obey,
 * defined once: a value a config file may not hold, a stack may not be given either, for the same
 * reason.
 */

/** The CloudWatch Logs retention periods, in days (what `RetentionDays` offers, "never expire" excluded). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** CDK's `RetentionDays.INFINITE`: no retention, logs kept forever. */
const NEVER_EXPIRE = 9999;

/** What is wrong with keeping logs `days` days, or undefined: every log group expires its logs. */
export function logRetentionProblem(days: number): string | undefined {
  if (days === NEVER_EXPIRE) return 'keeps logs (and their cost) forever: choose a number of days';
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(days)) {
    return `must be one of ${LOG_RETENTION_DAYS.join(', ')} (the CloudWatch Logs retention periods)`;
  }
  return undefined;
}

/** SageMaker's endpoint naming rule. */
export const SAGEMAKER_ENDPOINT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
/** {@link SAGEMAKER_ENDPOINT_NAME} in words. */
export const SAGEMAKER_ENDPOINT_RULE =
  '1-63 letters, digits or dashes, starting and ending with a letter or digit';

/**
 * The keys of `settings` that are set although the predict handler does not run on Lambda (`compute`):
 * provisioned concurrency and memory size are the Lambda function's, ECS has no equivalent.
 */
export function lambdaOnlyKeysSet<Key extends string>(
  compute: string,
  settings: Readonly<Record<Key, unknown>>,
): Key[] {
  if (compute === 'lambda') return [];
  return (Object.keys(settings) as Key[]).filter((key) => settings[key] !== undefined);
}

/** Why a key of {@link lambdaOnlyKeysSet} is refused; `computeKey` names the setting that chose the compute. */
export const lambdaOnlyProblem = (computeKey: string) =>
  `applies to ${computeKey} "lambda" only: remove it, or use lambda`;

/**
 * A caller of the inference API from another AWS account, as its resource policy names it: the account
 * (every principal its own IAM policies allow) or one IAM role or user of it.
 */
export const CROSS_ACCOUNT_CALLER =
  /^(\d{12}|arn:aws(-cn|-us-gov)?:iam::\d{12}:(root|(role|user)\/[\w+=,.@/-]{1,512}))$/;
/** {@link CROSS_ACCOUNT_CALLER} in words. */
export const CROSS_ACCOUNT_CALLER_RULE =
  'must be a 12-digit AWS account id or an IAM role or user ARN, e.g. arn:aws:iam::210987654321:role/scorer';

/** The account of a {@link CROSS_ACCOUNT_CALLER}. */
export const callerAccount = (caller: string): string => /\d{12}/.exec(caller)?.[0] ?? caller;

/** What is wrong with a list of cross-account callers as a whole (each one already valid), or undefined. */
export function crossAccountCallersProblem(callers: readonly string[]): string | undefined {
  const twice = callers.find((caller, i) => callers.indexOf(caller) !== i);
  return twice === undefined ? undefined : `lists ${twice} twice`;
}
