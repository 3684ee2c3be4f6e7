import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { localTrainingJobs } from '#local/training-jobs.ts';

/**
 * The local `createTrainingJob.sync` against a SageMaker API that never finishes its job (moto's
 * finish at once): the wait ends at the job's MaxRuntimeInSeconds, as SageMaker stops it there.
 */

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** Answers SageMaker's JSON protocol: every job is created, then forever InProgress. */
async function jobThatNeverEnds(calls: string[]): Promise<string> {
  const api = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const action = String(request.headers['x-amz-target']).split('.').pop() ?? '';
      calls.push(action);
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      response.end(
        JSON.stringify(
          action === 'CreateTrainingJob'
            ? { TrainingJobArn: 'arn:aws:sagemaker:us-east-1:111111111111:training-job/keel-local-job' }
            : { TrainingJobName: 'keel-local-job', TrainingJobStatus: 'InProgress' },
        ),
      );
    });
  });
  server = api;
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}

describe('local createTrainingJob.sync', () => {
  it("times out at the job's MaxRuntimeInSeconds with States.Timeout, having described it until then", async () => {
    const calls: string[] = [];
    const endpoint = await jobThatNeverEnds(calls);
    const authorized: string[] = [];
    const run = localTrainingJobs({
      target: { region: 'us-east-1', endpoints: { s3: endpoint, dynamodb: endpoint, sagemaker: endpoint } },
      authorize: async (action) => {
        authorized.push(action);
      },
      env: { account: '111111111111', region: 'us-east-1' },
      pollMs: 100,
    });
    const started = Date.now();
    const error = await run({
      TrainingJobName: 'keel-local-job',
      RoleArn: 'arn:aws:iam::111111111111:role/training',
      StoppingCondition: { MaxRuntimeInSeconds: 1 },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'States.Timeout',
      message: 'training job keel-local-job is still InProgress after its MaxRuntimeInSeconds (1 s)',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls[0]).toBe('CreateTrainingJob');
    expect(calls.filter((call) => call === 'DescribeTrainingJob').length).toBeGreaterThan(2);
    expect(authorized.slice(0, 2)).toEqual(['sagemaker:CreateTrainingJob', 'iam:PassRole']);
  });
});
