import { StateMachine } from 'aws-local-stepfunctions';
import { describe, expect, it } from 'vitest';
import { executeLocally, MAX_STATE_PAYLOAD_BYTES } from '#local/execution.ts';

/**
 * The local runner holds executions to Step Functions' own limits: 256 KiB of data per state (a
 * terminal States.DataLimitExceeded that no Catch catches) and every TimeoutSeconds.
 */
const machine = (definition: Record<string, unknown>) =>
  new StateMachine(definition as never, { validationOptions: { checkArn: false } });
const catchAll = [{ ErrorEquals: ['States.ALL'], Next: 'Caught', ResultPath: '$.error' }];
const task = (extra: Record<string, unknown> = {}) => ({
  Type: 'Task',
  Resource: 'arn:aws:lambda:us-east-1:000000000000:function:f',
  Catch: catchAll,
  ...extra,
});
const withCaught = (states: Record<string, unknown>) => ({ ...states, Caught: { Type: 'Pass', End: true } });
const run = (definition: Record<string, unknown>, handler: (input: unknown) => Promise<unknown>) =>
  executeLocally(machine(definition), {}, { handlers: { Work: handler, Then: handler }, context: {} });

describe('state data limit', () => {
  it('fails the execution with States.DataLimitExceeded when a task returns more than 256 KiB; its Catch does not apply', async () => {
    let after = 0;
    const outcome = await executeLocally(
      machine({
        StartAt: 'Work',
        States: withCaught({ Work: task({ Next: 'Then' }), Then: task({ End: true }) }),
      }),
      {},
      {
        context: {},
        handlers: {
          Work: async () => ({ rows: 'x'.repeat(MAX_STATE_PAYLOAD_BYTES) }),
          Then: async () => {
            after += 1;
            return {};
          },
        },
      },
    );
    expect(outcome.status).toBe('FAILED');
    expect(outcome.error).toMatchObject({
      name: 'States.DataLimitExceeded',
      message: expect.stringContaining("The state/task 'Work' returned a result with a size exceeding"),
    });
    expect(after).toBe(0);
  });

  it('fails when a Map collects more than 256 KiB of results from small iterations', async () => {
    const work = { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:f', End: true };
    const outcome = await executeLocally(
      machine({
        StartAt: 'Fan out',
        States: {
          'Fan out': {
            Type: 'Map',
            ItemsPath: '$.items',
            ItemProcessor: { StartAt: 'Work', States: { Work: work } },
            End: true,
          },
        },
      }),
      { items: Array.from({ length: 1_000 }, (_, i) => i) },
      { context: {}, handlers: { Work: async () => ({ summary: 'y'.repeat(300) }) } },
    );
    expect(outcome).toMatchObject({ status: 'FAILED', error: { name: 'States.DataLimitExceeded' } });
    expect(outcome.error?.message).toContain("'Fan out'");
  });

  it('lets data just under the limit through', async () => {
    const outcome = await run(
      { StartAt: 'Work', States: withCaught({ Work: task({ End: true }) }) },
      async () => ({ rows: 'x'.repeat(MAX_STATE_PAYLOAD_BYTES - 100) }),
    );
    expect(outcome.status).toBe('SUCCEEDED');
  });
});

describe('TimeoutSeconds', () => {
  it('ends an execution that outlives its TimeoutSeconds as TIMED_OUT (an execution timeout is never caught)', async () => {
    const outcome = await run(
      { StartAt: 'Work', TimeoutSeconds: 1, States: withCaught({ Work: task({ End: true }) }) },
      () => new Promise((resolve) => setTimeout(() => resolve({}), 3_000)),
    );
    expect(outcome).toMatchObject({ status: 'TIMED_OUT', error: { name: 'States.Timeout' } });
  });

  it("fails a task that outlives its own TimeoutSeconds with States.Timeout, which the task's Catch takes", async () => {
    const outcome = await run(
      { StartAt: 'Work', States: withCaught({ Work: task({ TimeoutSeconds: 1, End: true }) }) },
      () => new Promise((resolve) => setTimeout(() => resolve({}), 3_000)),
    );
    expect(outcome.status).toBe('SUCCEEDED');
    expect(outcome.output).toMatchObject({ error: { Error: 'States.Timeout' } });
  });
});

describe('a failed execution', () => {
  it("reports the error and cause of the state that ended it, as Step Functions does (a Fail state's)", async () => {
    const outcome = await run(
      {
        StartAt: 'Work',
        States: {
          Work: task({ End: true, Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Failed' }] }),
          Failed: { Type: 'Fail', Error: 'PipelineFailed', Cause: 'the work failed' },
        },
      },
      async () => {
        throw new Error('boom');
      },
    );
    expect(outcome).toMatchObject({
      status: 'FAILED',
      error: { name: 'PipelineFailed', message: 'the work failed' },
    });
  });
});
