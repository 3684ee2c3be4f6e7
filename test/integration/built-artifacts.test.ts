import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { App } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { deploymentOf, functionOf, type LocalDeployment } from '#local/deployment/deployment.ts';
import type { Template } from '#local/deployment/intrinsics.ts';
import { type LocalFunctions, startLocalFunctions } from '#local/lambda/functions.ts';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import { loadKeelConfig } from '#shared/config/keel-config.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { LAMBDA_NODE_VERSION, lambdaNodeBinary } from '../support/node22.ts';

/**
 * What `cdk deploy` uploads, run as Lambda runs it: the local stage synthesized with bundling, each
 * function started from its own asset folder (index.mjs) on Lambda's Node.js 22 with its layers on
 * NODE_PATH and no project node_modules within reach, its role checked by the rules proxies. The
 * synthesized state machines drive the pipeline functions with their real events; the predict
 * function answers API Gateway events.
 */
let outdir: string;
let deployment: LocalDeployment;
let aws: TestAws;
let runner: PipelineRunner;
let functions: LocalFunctions;
let node: string;

beforeAll(async () => {
  node = await lambdaNodeBinary();
  outdir = mkdtempSync(join(tmpdir(), 'keel-assembly-'));
  const { context } = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({ outdir, context: { ...context, 'aws:cdk:enable-asset-metadata': true } });
  addKeelStacks(app, {
    stage: LOCAL_ENVIRONMENT.stage,
    env: { account: LOCAL_ENVIRONMENT.account, region: LOCAL_ENVIRONMENT.region },
    config: loadKeelConfig({ root: REPO_ROOT, stage: LOCAL_ENVIRONMENT.stage }),
  });
  const assembly = app.synth();
  const templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template as Template]));
  deployment = deploymentOf(templates, LOCAL_ENVIRONMENT, { assemblyDir: outdir });
  aws = await startTestAws();
  const customers = [...generateRecords({ rows: 2000, seed: 7, asOf: new Date() })];
  await aws.clients.s3.send(
    new PutObjectCommand({
      Bucket: aws.names.raw,
      Key: 'raw/20261201T000000Z-n2000-s7.csv',
      Body: `${[CSV_HEADER, ...customers.map(toCsvLine)].join('\n')}\n`,
    }),
  );
  const common = { home: aws.home, target: aws.target, deployment, nodeBinary: node };
  runner = await createPipelineRunner({ ...common, names: aws.names });
  functions = await startLocalFunctions(common);
}, 600_000);

afterAll(async () => {
  await runner?.close();
  await functions?.close();
  await aws?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('the built Lambda assets', () => {
  it('are one bundle per function with no node_modules; onnxruntime comes from the layer', () => {
    expect(deployment.functions.size).toBeGreaterThanOrEqual(10);
    for (const fn of deployment.functions.values()) {
      const files = readdirSync(fn.artifact!.codeDir);
      expect(files, fn.name).toContain('index.mjs');
      expect(files, fn.name).not.toContain('node_modules');
    }
    const predict = functionOf(deployment, 'lambdas/predict/handler.ts');
    expect(predict.artifact!.layerDirs).toHaveLength(1);
    expect(
      existsSync(join(predict.artifact!.layerDirs[0]!, 'nodejs', 'node_modules', 'onnxruntime-node')),
    ).toBe(true);
  });

  it(`run ETL, retrain, batch scoring and the drift job from their bundles on Node.js ${LAMBDA_NODE_VERSION}`, async () => {
    const etl = await runner.run('etl', { inputKey: 'raw/20261201T000000Z-n2000-s7.csv' });
    expect(etl, JSON.stringify(etl.error)).toMatchObject({ status: 'SUCCEEDED' });
    const retrain = await runner.run<{ deployment?: { to: string } }>('retrain', { promotion: 'always' });
    expect(retrain, JSON.stringify(retrain.error)).toMatchObject({ status: 'SUCCEEDED' });
    expect(retrain.output!.deployment).toMatchObject({ to: 'v1' });
    const batch = await runner.run<{ rows: number }>('batch', { segments: 2 });
    expect(batch, JSON.stringify(batch.error)).toMatchObject({ status: 'SUCCEEDED' });
    expect(batch.output!.rows).toBe(2000);
    const drift = await runner.drift({});
    expect(drift, JSON.stringify(drift.error)).toMatchObject({ status: 'SUCCEEDED' });
  });

  it('serve predictions from the predict bundle with the layer’s onnxruntime', async () => {
    const predict = functionOf(deployment, 'lambdas/predict/handler.ts');
    const event = (method: string, path: string, body?: unknown) => ({
      httpMethod: method,
      path,
      resource: path,
      headers: { 'content-type': 'application/json' },
      multiValueHeaders: {},
      queryStringParameters: null,
      multiValueQueryStringParameters: null,
      pathParameters: null,
      stageVariables: null,
      requestContext: { requestId: 'built-artifacts', stage: 'local', httpMethod: method, path },
      body: body === undefined ? null : JSON.stringify(body),
      isBase64Encoded: false,
    });
    const health = await functions.lambda.invoke<{ statusCode: number; body: string }>(
      predict.name,
      event('GET', '/health'),
    );
    expect(health.statusCode, health.body).toBe(200);
    const scored = await functions.lambda.invoke<{ statusCode: number; body: string }>(
      predict.name,
      event('POST', '/predict', { customerId: 'c-000042' }),
    );
    expect(scored.statusCode, scored.body).toBe(200);
    expect(JSON.parse(scored.body)).toMatchObject({
      customerId: 'c-000042',
      model: { name: 'churn', version: 'v1' },
    });
    const runtime = await functions.lambda.invoke<{ statusCode: number; body: string }>(
      predict.name,
      event('POST', '/predict', { customerId: 'c-999999' }),
    );
    expect(runtime.statusCode).toBe(404);
  });
});
