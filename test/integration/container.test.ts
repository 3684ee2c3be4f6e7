import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_TARGET_ENV } from '#shared/aws/clients.ts';
import { resourceEnvironment } from '#shared/resources.ts';
import { freePort, startTestAws, type TestAws } from '../support/aws.ts';

/** The ECS entry (lambdas/predict/container.ts) as its container runs it: a process, env vars, a port. */
let aws: TestAws;
let child: ChildProcess;
let url: string;

beforeAll(async () => {
  aws = await startTestAws();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const entry = fileURLToPath(new URL('../../lambdas/predict/container.ts', import.meta.url));
  child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: {
      ...process.env,
      ...resourceEnvironment(aws.names),
      AWS_REGION: aws.target.region,
      [AWS_TARGET_ENV.s3]: aws.target.endpoints!.s3,
      [AWS_TARGET_ENV.dynamodb]: aws.target.endpoints!.dynamodb,
      HOST: '127.0.0.1',
      PORT: String(port),
    },
    stdio: 'ignore',
  });
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      await fetch(`${url}/health`);
      break;
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
});
afterAll(async () => {
  child?.kill('SIGTERM');
  await aws?.close();
});

describe('the predict container entry', () => {
  it('serves the API contract from the Lambda handler', async () => {
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ error: { code: 'NoModel' } });
    const bad = await fetch(`${url}/predict`, { method: 'POST', body: '{"customerId": 7}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'ValidationError' } });
  });

  it('stops cleanly on SIGTERM, as ECS stops a task', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
