import { createHash, createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedPost } from '#cli/signed-fetch.ts';
import { resolveStage, STAGE_OUTPUTS, stackName } from '#cli/stage/stage-info.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { provisionResources } from '#local/provision.ts';
import type { AslDefinition } from '#local/state-machines.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT } from '#shared/features/index.ts';
import {
  captureHourPrefix,
  captureLine,
  captureObjectKey,
  captureRecord,
} from '#shared/inference/capture.ts';
import { listApprovals } from '#shared/pipelines/approvals.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import type { QualityReport } from '#shared/quality/types.ts';
import { getAliases } from '#shared/registry/registry.ts';
import { rolloutDecisionStart } from '#shared/registry/rollout.ts';
import { BUCKET_ROLES, type ResourceNames, TABLE_ROLES } from '#shared/resources.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { resolveIntrinsics } from '../support/asl.ts';
import { startMoto, type TestAws } from '../support/aws.ts';
import { CDK_CONTEXT } from '../support/cdk.ts';
import { runKeel } from '../support/cli.ts';
import { registerTrainedModel, testRegistry } from '../support/model.ts';
import {
  createOutputsStack,
  STAGE_REGION as REGION,
  STAGE,
  STAGE_CREDENTIALS,
  stageClientConfig,
  stagePipelinesTemplate,
  startTestStage,
  type TestStage,
} from '../support/stage.ts';

/**
 * `keel --stage NAME` against a "deployed" stage played by moto_server (test/support/stage.ts): its
 * CloudFormation stacks carry the outputs the real stacks export (the data stack's keys are read from
 * its synthesized template), and the CLI resolves bucket, table and API names from them instead of
 * the local platform.
 */
const ROLE = 'arn:aws:iam::123456789012:role/keel-it-states';
/**
 * Played by moto, which runs these definitions: retrain answers its input, ETL fails. moto 5.2's
 * executor answers 500 to every StartExecution after the first one of a server, so each state machine
 * gets a moto_server of its own (the ARNs are the same on each).
 */
const MACHINES = {
  retrain: { StartAt: 'Echo', States: { Echo: { Type: 'Pass', End: true } } },
  etl: { StartAt: 'Fail', States: { Fail: { Type: 'Fail', Error: 'EtlFailed', Cause: 'bad rows' } } },
  rollout: { StartAt: 'Bake', States: { Bake: { Type: 'Wait', TimestampPath: '$.bakeEndsAt', End: true } } },
};
const machineArns: Record<string, string> = {};

let testStage: TestStage;
let names: ResourceNames;
const machineServers: Record<string, Awaited<ReturnType<typeof startMoto>>> = {};
let aws: TestAws;
let api: TestApi;
let recorder: Server;
let recorderUrl: string;
const seen: { url: string; headers: Record<string, string>; body: string }[] = [];
let home: string;
let env: Record<string, string>;

/** Plays API Gateway's part: records each request's Authorization header, drops the stage path, forwards. */
function startRecorder(target: string): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () =>
      seen.push({
        url: req.url ?? '',
        headers: req.headers as Record<string, string>,
        body: Buffer.concat(chunks).toString(),
      }),
    );
    const upstream = request(
      new URL((req.url ?? '/').replace(/^\/v1\//, '/'), target),
      { method: req.method, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** The SigV4 signature of a recorded request, computed from the specification (an independent check). */
function sigV4Signature(req: (typeof seen)[number], secret: string): string {
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(req.headers.authorization!)![1]!.split(';');
  const amzDate = req.headers['x-amz-date']!;
  const scope = `${amzDate.slice(0, 8)}/${REGION}/execute-api/aws4_request`;
  const canonical = [
    'POST',
    req.url,
    '',
    ...signedHeaders.map((h) => `${h}:${req.headers[h]!.trim()}`),
    '',
    signedHeaders.join(';'),
    sha256(req.body),
  ].join('\n');
  const key = ['execute-api', 'aws4_request'].reduce(
    (k, part) => hmac(k, part),
    hmac(hmac(`AWS4${secret}`, amzDate.slice(0, 8)), REGION),
  );
  return hmac(key, ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')).toString('hex');
}

beforeAll(async () => {
  testStage = await startTestStage();
  ({ aws, names, env } = testStage);
  home = aws.home;
  api = await startTestApi(aws);
  recorder = await startRecorder(api.url);
  recorderUrl = `http://127.0.0.1:${(recorder.address() as { port: number }).port}/v1/`;

  Object.assign(process.env, STAGE_CREDENTIALS);
  for (const [pipeline, definition] of Object.entries(MACHINES)) {
    const server = await startMoto();
    machineServers[pipeline] = server;
    process.env.AWS_ENDPOINT_URL_SFN = server.target.endpoints!.s3;
    await fetch(`${process.env.AWS_ENDPOINT_URL_SFN}/moto-api/config`, {
      method: 'POST',
      body: JSON.stringify({ stepfunctions: { execute_state_machine: true } }),
    });
    const sfn = new SFNClient({ region: REGION });
    const created = await sfn.send(
      new CreateStateMachineCommand({
        name: `keel-${STAGE}-${pipeline}`,
        definition: JSON.stringify(definition),
        roleArn: ROLE,
      }),
    );
    sfn.destroy();
    machineArns[pipeline] = created.stateMachineArn!;
  }
  await createOutputsStack(testStage.endpoint, stackName(STAGE, 'Inference'), {
    [STAGE_OUTPUTS.apiUrl]: recorderUrl,
  });
  await createOutputsStack(testStage.endpoint, stackName(STAGE, 'Pipelines'), {
    [STAGE_OUTPUTS.stateMachines.retrain]: machineArns.retrain!,
    [STAGE_OUTPUTS.stateMachines.etl]: machineArns.etl!,
    [STAGE_OUTPUTS.stateMachines.rollout]: machineArns.rollout!,
  });
}, 120_000);

afterAll(async () => {
  recorder?.close();
  await api?.close();
  for (const server of Object.values(machineServers)) server.process.kill('SIGTERM');
  await testStage?.close();
});

describe('the CLI against a deployed stage (--stage)', { timeout: 120_000 }, () => {
  it('reads the output keys the data stack really exports', () => {
    const app = new App({ context: CDK_CONTEXT });
    const stack = new DataStack(app, stackName(STAGE, 'Data'), {
      stage: STAGE,
      env: { account: '123456789012', region: REGION },
    });
    const outputs = Object.keys(Template.fromStack(stack).toJSON().Outputs);
    for (const role of BUCKET_ROLES) expect(outputs).toContain(STAGE_OUTPUTS.bucket(role));
    for (const role of TABLE_ROLES) expect(outputs).toContain(STAGE_OUTPUTS.table(role));
  });

  it('resolves names, API URL and state machines from the stack outputs', async () => {
    const cfn = new CloudFormationClient(stageClientConfig(testStage.endpoint));
    const stage = await resolveStage(STAGE, { cfn });
    expect(stage.names).toEqual(names);
    expect(stage.apiUrl).toBe(recorderUrl);
    expect(stage.stateMachines).toEqual({
      retrain: machineArns.retrain,
      etl: machineArns.etl,
      rollout: machineArns.rollout,
    });
    // A data stack of another Keel version, without the table outputs: named, not guessed.
    await createOutputsStack(testStage.endpoint, stackName('old', 'Data'), { RawBucketName: 'raw' });
    await expect(resolveStage('old', { cfn })).rejects.toThrow(
      'stack Keel-old-Data lacks the outputs FeaturesBucketName, ModelsBucketName, OutputsBucketName, ' +
        'OnlineFeaturesTableName, ModelRegistryTableName: redeploy it',
    );
    cfn.destroy();
  });

  it('keel --stage models list reads the stage registry, with no local platform running', async () => {
    const list = await runKeel(['--json', '--stage', STAGE, 'models', 'list'], env);
    expect(list.stderr).toBe('');
    expect(JSON.parse(list.stdout)).toMatchObject({
      name: 'churn',
      champion: 'v1',
      versions: [{ version: 'v1' }],
    });
    const local = await runKeel(['models', 'list'], env);
    expect(local.code).toBe(1);
    expect(local.stderr).toContain('nothing is running');
  });

  it('keel --stage predict signs the request with SigV4 and gets the API’s answer', async () => {
    const result = await runKeel(['--json', '--stage', STAGE, 'predict', 'c-000007'], env);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({
      customerId: 'c-000007',
      model: { name: 'churn', version: 'v1' },
    });
    const signed = seen.at(-1)!;
    expect(signed.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/execute-api\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(signed.headers.authorization).toContain(`Signature=${sigV4Signature(signed, 'secret')}`);
  });

  it('runs the pipelines as executions of the deployed state machines, and reports their failure', async () => {
    const sfn = (pipeline: string) => ({
      ...env,
      AWS_ENDPOINT_URL_SFN: machineServers[pipeline]!.target.endpoints!.s3,
    });
    const train = await runKeel(
      ['--json', '--stage', STAGE, 'train', '--algorithm', 'logistic'],
      sfn('retrain'),
    );
    expect(train.stderr).toMatch(
      /execution arn:aws:states:us-east-1:123456789012:execution:keel-it-retrain:/,
    );
    expect(JSON.parse(train.stdout)).toEqual({
      algorithm: 'logistic',
      seed: 42,
      margin: 0,
      promotion: 'never',
      requireApproval: false,
      // The stage config's retrain.maxTrainingRows (the default), which `keel train --max-rows` overrides.
      maxTrainingRows: 1_000_000,
    });
    const etl = await runKeel(['--stage', STAGE, 'etl', 'run'], sfn('etl'));
    expect(etl.code).toBe(1);
    expect(etl.stderr).toMatch(/the etl execution failed: EtlFailed: bad rows \(execution arn:aws:states:/);
    const batch = await runKeel(['--stage', STAGE, 'batch', 'run'], env);
    expect(batch.stderr).toContain('stack Keel-it-Pipelines has no batch state machine: deploy it');
  });

  it('keel --stage data import streams a checked file into the stage’s raw bucket', async () => {
    const file = join(home, 'outcomes.csv');
    await writeFile(file, 'customer_id,churned,observed_at\nc-000001,1,2026-12-01T00:00:00Z\n');
    const imported = await runKeel(
      ['--json', '--stage', STAGE, 'data', 'import', file, '--kind', 'outcomes'],
      env,
    );
    expect(imported.code, imported.stderr).toBe(0);
    const { bucket, key, rows } = JSON.parse(imported.stdout) as {
      bucket: string;
      key: string;
      rows: number;
    };
    expect({ bucket, rows }).toEqual({ bucket: names.raw, rows: 1 });
    expect(key).toMatch(/^outcomes\/\d{8}T\d{6}Z-outcomes\.csv$/);
    const object = await aws.clients.s3.send(new GetObjectCommand({ Bucket: names.raw, Key: key }));
    expect(await object.Body!.transformToString()).toContain('c-000001,1,');
    // The quality check below counts every outcome file of the stage.
    await aws.clients.s3.send(new DeleteObjectCommand({ Bucket: names.raw, Key: key }));
    const generate = await runKeel(['--stage', STAGE, 'data', 'generate', '--rows', '10'], env);
    expect(generate.stderr).toContain('keel data generate works on the local platform only');
  });

  it('keel --stage models canary starts the rollout and its decision on the stage; rollout and rollout abort act on it', async () => {
    const customers = [...generateRecords({ rows: 1000, seed: 3, asOf: new Date() })];
    const { version } = await registerTrainedModel(aws, customers, { seed: 2, nTrees: 5 });
    const sfnEndpoint = machineServers.rollout!.target.endpoints!.s3;
    const started = await runKeel(
      ['--json', '--stage', STAGE, 'models', 'canary', version, '--percent', '10', '--bake', '2h'],
      { ...env, AWS_ENDPOINT_URL_SFN: sfnEndpoint },
    );
    expect(started.stderr).toBe('');
    const { rollout, decision } = JSON.parse(started.stdout) as {
      rollout: { id: string; bake_ends_at: string };
      decision: { execution: string; where: string };
    };
    // The decision: an execution of the stage's rollout state machine, named after the rollout.
    expect(decision).toEqual({
      where: 'stage',
      execution: `${machineArns.rollout!.replace(':stateMachine:', ':execution:')}:${rollout.id}`,
    });
    const sfn = new SFNClient({ region: REGION, endpoint: sfnEndpoint });
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: decision.execution }));
    sfn.destroy();
    expect(JSON.parse(execution.input!)).toEqual(rolloutDecisionStart('churn', rollout));
    expect(rollout).toMatchObject({
      version,
      champion: 'v1',
      mode: 'canary',
      percent: 10,
      bake_seconds: 7200,
    });
    const status = await runKeel(['--stage', STAGE, 'models', 'rollout'], env);
    expect(status.stdout).toContain(
      `churn: the canary of ${version} (10%) (${rollout.id}) against champion v1`,
    );
    const abort = await runKeel(
      ['--json', '--stage', STAGE, 'models', 'rollout', 'abort', '--reason', 'stage test'],
      env,
    );
    expect(JSON.parse(abort.stdout)).toMatchObject({
      kind: 'rollout-end',
      from: version,
      to: 'v1',
      reason: 'stage test',
      rollout: { id: rollout.id },
    });
    expect(await getAliases(testRegistry(aws), 'churn')).toEqual({ champion: 'v1', rollout: undefined });
  });

  it('keel --stage quality check judges the stage’s captures by its outcomes, and changes nothing', async () => {
    const at = new Date(Date.now() - 60_000);
    const scored = [...generateRecords({ rows: 400, seed: 8, asOf: at })];
    const probability = (i: number) =>
      scored[i]!.churned === 1 ? 0.6 + (i % 7) / 100 : 0.3 + (i % 11) / 100;
    const lines = scored.map((c, i) =>
      captureLine(
        captureRecord(
          {
            customerId: c.customer_id,
            requestId: `r-${i}`,
            model: { name: 'churn', version: 'v1' },
            probability: probability(i),
            prediction: probability(i) >= 0.5 ? 1 : 0,
            vector: new Float32Array(FEATURE_COUNT),
          },
          at,
          'api',
        ),
      ),
    );
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: names.outputs,
        Key: captureObjectKey(captureHourPrefix('churn', at), at),
        Body: `${lines.join('\n')}\n`,
      }),
    );
    const outcomes = scored.map((c) => `${c.customer_id},${c.churned},${new Date().toISOString()}`);
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: names.raw,
        Key: 'outcomes/stage.csv',
        Body: `customer_id,churned,observed_at\n${outcomes.join('\n')}\n`,
      }),
    );
    const result = await runKeel(['--json', '--stage', STAGE, 'quality', 'check', '--window', '1h'], env);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as QualityReport;
    const v1 = report.versions.find((v) => v.version === 'v1')!;
    // Every churned customer scored above every other: a realized AUC of 1 on all 400.
    expect(v1.realized).toMatchObject({ matched: 400, auc: 1 });
    expect(report.outcomes).toMatchObject({ files: 1, rows: 400, quarantined: 0 });
    const written = await aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: names.outputs, Prefix: 'quality-reports/' }),
    );
    expect(written.KeyCount ?? 0).toBe(0);
  });

  it('names the missing stack, and refuses --stage for local-only commands', async () => {
    const missing = await runKeel(['--stage', 'nope', 'models', 'list'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/stack Keel-nope-Data does not exist in us-east-1: deploy the stage/);
    const local = await runKeel(['--stage', STAGE, 'up'], env);
    expect(local.stderr).toContain('keel up works on the local platform only');
  });
});

/**
 * The synthesized retrain definition as moto can run it: its two Lambda tasks become Pass states
 * returning what they would (a candidate that asks for approval, a deployment), its topics are one moto
 * topic and its table the stage's registry. Every approval state runs as synthesized.
 */
function retrainForMoto(topicArn: string): AslDefinition {
  const [machine] = Object.values(
    stagePipelinesTemplate().findResources('AWS::StepFunctions::StateMachine', {
      Properties: { StateMachineName: `keel-${STAGE}-retrain` },
    }),
  );
  const asl = JSON.parse(resolveIntrinsics(machine!.Properties.DefinitionString)) as AslDefinition;
  const states = JSON.parse(
    JSON.stringify(asl.States)
      .replace(/arn:aws:sns:[^"]+/g, topicArn)
      .replace(/"import:[^"]+"/g, JSON.stringify(names.modelRegistry)),
  ) as AslDefinition['States'];
  const s = PIPELINES.retrain.states;
  expect(Object.keys(states)).toEqual(expect.arrayContaining([s.train, s.promote, s.approve]));
  states[s.train] = {
    Type: 'Pass',
    Result: {
      version: 'v2',
      champion: 'v1',
      reason: 'AUC 0.81 beats 0.80',
      promote: true,
      requireApproval: true,
    },
    ResultPath: '$.candidate',
    Next: s.decide,
  };
  states[s.promote] = {
    Type: 'Pass',
    Parameters: { 'to.$': '$.candidate.version' },
    ResultPath: '$.deployment',
    Next: s.notify,
  };
  return { ...asl, States: states };
}

/** A moto_server of its own (moto runs one execution per server) with the registry table, a topic and the retrain. */
async function retrainStage() {
  const server = await startMoto();
  const endpoint = server.target.endpoints!.s3;
  const clients = createAwsClients(server.target);
  await provisionResources(clients, names);
  await fetch(`${endpoint}/moto-api/config`, {
    method: 'POST',
    body: JSON.stringify({ stepfunctions: { execute_state_machine: true } }),
  });
  const topic = await signedPost(new URL(`${endpoint}/`), {
    service: 'sns',
    region: REGION,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: 'Action=CreateTopic&Name=keel-it-approvals&Version=2010-03-31',
  });
  const topicArn = /<TopicArn>([^<]+)</.exec(await topic.text())![1]!;
  const sfn = new SFNClient(stageClientConfig(endpoint));
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: `keel-${STAGE}-retrain`,
      definition: JSON.stringify(retrainForMoto(topicArn)),
      roleArn: ROLE,
    }),
  );
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: '{}' }));
  // The CLI reads the stage's outputs from the first moto, and its registry, STS and SFN here.
  const cliEnv = {
    ...env,
    KEEL_DYNAMODB_ENDPOINT: endpoint,
    AWS_ENDPOINT_URL_SFN: endpoint,
    AWS_ENDPOINT_URL_STS: endpoint,
  };
  const approvals = () => listApprovals({ dynamo: clients.dynamo, table: names.modelRegistry });
  return {
    cliEnv,
    approvals,
    async pending() {
      for (let i = 0; i < 100; i++) {
        const [request] = (await approvals()).filter((a) => a.status === 'pending');
        if (request) return request;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error('the retrain recorded no approval request');
    },
    async finished() {
      for (let i = 0; i < 100; i++) {
        const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        if (execution.status !== 'RUNNING') return execution;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`execution ${executionArn} still runs`);
    },
    close() {
      sfn.destroy();
      clients.s3.destroy();
      clients.dynamo.destroy();
      server.process.kill('SIGTERM');
    },
  };
}

describe('approving a retrain of a deployed stage (--stage)', { timeout: 120_000 }, () => {
  it('lists the waiting request, approves it with SendTaskSuccess as the caller, and refuses a second answer', async () => {
    const stage = await retrainStage();
    try {
      const request = await stage.pending();
      expect(request).toMatchObject({ model: 'churn', version: 'v2', reason: 'AUC 0.81 beats 0.80' });
      expect(Date.parse(request.expiresAt) - Date.parse(request.requestedAt)).toBe(86_400_000);
      const listed = await runKeel(['--json', '--stage', STAGE, 'models', 'approvals'], stage.cliEnv);
      expect(listed.stderr).toBe('');
      expect(JSON.parse(listed.stdout).approvals).toEqual([expect.objectContaining({ id: request.id })]);
      // The token stays in the table.
      expect(listed.stdout).not.toContain('taskToken');

      const approve = await runKeel(
        ['--stage', STAGE, 'models', 'approve', request.id, '--note', 'checked the report'],
        stage.cliEnv,
      );
      expect(approve.stderr).toBe('');
      expect(approve.stdout).toContain(`${request.id}: approved by arn:aws:sts::123456789012:user/moto`);
      const execution = await stage.finished();
      expect(execution.status).toBe('SUCCEEDED');
      expect(JSON.parse(execution.output!)).toMatchObject({
        approvalRequest: { id: request.id },
        approval: {
          approved: true,
          note: 'checked the report',
          actor: 'arn:aws:sts::123456789012:user/moto',
        },
        deployment: { to: 'v2' },
      });
      expect((await stage.approvals())[0]).toMatchObject({ status: 'approved', note: 'checked the report' });

      const again = await runKeel(['--stage', STAGE, 'models', 'reject', request.id], stage.cliEnv);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(
        `approval request ${request.id} was already approved by arn:aws:sts::123456789012:user/moto at`,
      );
      const unknown = await runKeel(['--stage', STAGE, 'models', 'approve', 'ffffffff'], stage.cliEnv);
      expect(unknown.stderr).toContain('no approval request ffffffff');
    } finally {
      stage.close();
    }
  });

  it('rejects: the retrain keeps the champion and ends SUCCEEDED', async () => {
    const stage = await retrainStage();
    try {
      const request = await stage.pending();
      const reject = await runKeel(
        ['--stage', STAGE, 'models', 'reject', request.id, '--note', 'trained on a broken feed'],
        stage.cliEnv,
      );
      expect(reject.stderr).toBe('');
      const execution = await stage.finished();
      expect(execution.status).toBe('SUCCEEDED');
      const output = JSON.parse(execution.output!);
      expect(output.approval).toMatchObject({ approved: false, note: 'trained on a broken feed' });
      expect(output.deployment).toBeUndefined();
    } finally {
      stage.close();
    }
  });
});
