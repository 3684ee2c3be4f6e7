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
      decide: 'Better than the champion?',
      approve: 'Wait for approval',
      approved: 'Approved?',
      promote: 'Promote',
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
