/**
 * Names shared by the CDK state machines and the local runner: the runner binds each task state, by
 * name, to the same handler the Lambda runs, so a renamed state must be renamed here, once.
 */
export const PIPELINES = {
  etl: {
    name: 'etl',
    states: {
      plan: 'Plan chunks',
      chunks: 'Process chunks',
      chunk: 'Process chunk',
      finalize: 'Finalize ETL',
    },
  },
  retrain: {
    name: 'retrain',
    states: {
      train: 'Train and register',
      /** Engine `sagemaker` (stage config `retrain.engine`): these four stand where `train` stands. */
      prepareTraining: 'Prepare training',
      channels: 'Write training channels',
      channel: 'Write training channel',
      trainingJob: 'Train on SageMaker',
      importModel: 'Import and register',
      decide: 'Better than the champion?',
      prepareApproval: 'Prepare approval',
      requestApproval: 'Request approval',
      approve: 'Wait for approval',
      approved: 'Approved?',
      notApproved: 'Notify not approved',
      approvalExpired: 'Notify approval expired',
      promote: 'Promote',
      rolledOut: 'Promoted or rolled out?',
      startDecision: 'Start the rollout decision',
      notify: 'Notify result',
    },
  },
  batch: {
    name: 'batch-scoring',
    states: {
      plan: 'Plan batch',
      segments: 'Score segments',
      score: 'Score segment',
      finalize: 'Finalize batch',
    },
  },
  /**
   * One execution per rollout, started with it (input `{name, rolloutId, bakeEndsAt}`): waits until
   * the bake ends, then decides (lambdas/rollout/handler.ts `decide`). A guardrail firing during the
   * bake ends the rollout through the guard at once; the decision then finds it ended and does nothing.
   */
  rollout: {
    name: 'rollout',
    states: {
      bake: 'Wait for the bake end',
      decide: 'Decide',
      notify: 'Notify decision',
    },
  },
} as const;

/**
 * The rollout functions, created by the monitoring stack beside the on-call topic and the guardrail
 * alarms they page about and read. The pipelines stack's rollout state machine invokes `decide` by this
 * name: a reference to the monitoring stack would make the two stacks depend on each other.
 */
export const ROLLOUT_FUNCTIONS = {
  decideName: (stage: string) => `keel-${stage}-rollout-decide`,
  /** Both functions' timeout; the Decide state's too. */
  timeoutSeconds: 60,
} as const;

/** Every pipeline's failure path publishes to the notifications topic from a state of this name. */
export const NOTIFY_FAILURE_STATE = 'Notify failure';

export type PipelineName = keyof typeof PIPELINES;

export const stateMachineName = (pipeline: PipelineName, stage: string) =>
  `keel-${stage}-${PIPELINES[pipeline].name}`;

/**
 * Errors worth retrying beyond the Lambda service errors CDK already retries on every Lambda task:
 * throttling, and Keel's "a dependency is unavailable".
 */
export const TRANSIENT_ERRORS = ['Lambda.TooManyRequestsException', 'UnavailableError'] as const;

/**
 * SNS Publish's transient errors as a Step Functions SNS task reports them (`SNS.` + the API error with
 * an `Exception` suffix: Throttled, InternalError, KMSThrottling; the casing of the acronym in the last
 * is not documented, so both), and the integration's own client error.
 */
export const SNS_TRANSIENT_ERRORS = [
  'SNS.ThrottledException',
  'SNS.InternalErrorException',
  'SNS.KMSThrottlingException',
  'SNS.KmsThrottlingException',
  'SNS.SdkClientException',
] as const;

/** The error a retrain ends with when its outcome stands but its notification could not be published. */
export const NOTIFICATION_FAILED_ERROR = 'NotificationFailed';

/** The error a retrain ends with when nobody answered its approval request in time (not promoted). */
export const APPROVAL_EXPIRED_ERROR = 'ApprovalExpired';
