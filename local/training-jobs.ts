import {
  CreateTrainingJobCommand,
  type CreateTrainingJobCommandInput,
  DescribeTrainingJobCommand,
  type DescribeTrainingJobCommandOutput,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { type AwsTarget, localCredentials } from '#shared/aws/clients.ts';
import type { TaskHandler } from './execution.ts';

/**
 * `arn:aws:states:::sagemaker:createTrainingJob.sync` (the retrain's training job, engine sagemaker)
 * as Step Functions runs it: CreateTrainingJob with the state's Parameters, then DescribeTrainingJob
 * until the job ends; its output is the last description, a failed or stopped job fails the task.
 * Locally the API is the emulator's (moto, `endpoints.sagemaker`); the embedded servers have none.
 */
export const TRAINING_JOB_RESOURCE = 'arn:aws:states:::sagemaker:createTrainingJob.sync';

export interface LocalTrainingJobsOptions {
  readonly target: AwsTarget;
  /** Checks the state machine's grant for each call (`action`, `resource`, condition keys). */
  readonly authorize: (action: string, resource: string, context?: Record<string, string>) => Promise<void>;
  /** The account and region of the job's ARN. */
  readonly env: { readonly account: string; readonly region: string };
  /**
   * Called once the job is created, before it is described: an emulator's job does no training, so a
   * test supplies the model the algorithm would have written.
   */
  readonly onCreated?: (name: string) => Promise<void>;
  /** Between two descriptions. @default - 1000 */
  readonly pollMs?: number;
}

/** SageMaker's own default MaxRuntimeInSeconds, when a job sets none. */
const DEFAULT_MAX_RUNTIME_SECONDS = 86_400;

/** An error as the Step Functions SageMaker integration reports it (its name is what Catch matches). */
const taskError = (name: string, message: string) => Object.assign(new Error(message), { name });

export function localTrainingJobs(options: LocalTrainingJobsOptions): TaskHandler {
  return async (parameters) => {
    const endpoint = options.target.endpoints?.sagemaker;
    if (!endpoint) {
      throw taskError(
        'SageMaker.AmazonSageMakerException',
        'no SageMaker endpoint: the local platform runs a training job only against an emulator that answers SageMaker (moto); the embedded servers do not',
      );
    }
    const input = parameters as CreateTrainingJobCommandInput;
    const name = String(input.TrainingJobName);
    const { account, region } = options.env;
    const job = `arn:aws:sagemaker:${region}:${account}:training-job/${name}`;
    await options.authorize('sagemaker:CreateTrainingJob', job);
    await options.authorize('iam:PassRole', String(input.RoleArn), {
      'iam:PassedToService': 'sagemaker.amazonaws.com',
    });
    // Step Functions' wait ends with the job, which SageMaker stops at its StoppingCondition: so does this one.
    const maxSeconds = input.StoppingCondition?.MaxRuntimeInSeconds ?? DEFAULT_MAX_RUNTIME_SECONDS;
    const deadline = Date.now() + maxSeconds * 1000;
    const client = new SageMakerClient({ region, endpoint, credentials: localCredentials() });
    try {
      await client.send(new CreateTrainingJobCommand(input)).catch((error: Error) => {
        throw taskError('SageMaker.AmazonSageMakerException', `${error.name}: ${error.message}`);
      });
      await options.onCreated?.(name);
      for (;;) {
        await options.authorize('sagemaker:DescribeTrainingJob', job);
        const { $metadata: _, ...described }: DescribeTrainingJobCommandOutput = await client.send(
          new DescribeTrainingJobCommand({ TrainingJobName: name }),
        );
        const status = described.TrainingJobStatus;
        if (status === 'Completed') return JSON.parse(JSON.stringify(described)) as unknown;
        if (status === 'Failed' || status === 'Stopped') {
          throw taskError(
            'States.TaskFailed',
            `training job ${name} ${status.toLowerCase()}: ${described.FailureReason ?? 'no reason given'}`,
          );
        }
        if (Date.now() > deadline) {
          throw taskError(
            'States.Timeout',
            `training job ${name} is still ${status} after its MaxRuntimeInSeconds (${maxSeconds} s)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
      }
    } finally {
      client.destroy();
    }
  };
}
