import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { provisionResources } from '#local/provision.ts';
import { resolveStage, STAGE_OUTPUTS, stackName } from '#local/stage.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { BUCKET_ROLES, type ResourceNames, resourceNames, TABLE_ROLES } from '#shared/resources.ts';
import { CDK_CONTEXT } from '../infra/cdk-app.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startMoto, type TestAws } from '../support/aws.ts';
import { runKeel } from '../support/cli.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';

/**
 * `keel --stage NAME` against a "deployed" stage played by moto_server: its CloudFormation stacks carry
 * the outputs the real stacks export (the data stack's keys are read from its synthesized template),
 * and the CLI resolves bucket, table and API names from them instead of the local platform.
 */
const STAGE = 'it';
const REGION = 'us-east-1';
const names: ResourceNames = resourceNames({ stage: STAGE, account: '123456789012', region: REGION });
const ROLE = 'arn:aws:iam::123456789012:role/keel-it-states';
/**
 * Played by moto, which runs these definitions: retrain answers its input, ETL fails. moto 5.2's
 * executor answers 500 to every StartExecution after the first one of a server, so each state machine
 * gets a moto_server of its own (the ARNs are the same on each).
 */
const MACHINES = {
  retrain: { StartAt: 'Echo', States: { Echo: { Type: 'Pass', End: true } } },
  etl: { StartAt: 'Fail', States: { Fail: { Type: 'Fail', Error: 'EtlFailed', Cause: 'bad rows' } } },
};
const machineArns: Record<string, string> = {};

let moto: Awaited<ReturnType<typeof startMoto>>;
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

async function createStack(cfn: CloudFormationClient, name: string, outputs: Record<string, string>) {
  await cfn.send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify({
        Resources: { Placeholder: { Type: 'AWS::SQS::Queue' } },
        Outputs: Object.fromEntries(Object.entries(outputs).map(([key, value]) => [key, { Value: value }])),
      }),
    }),
  );
}

beforeAll(async () => {
  moto = await startMoto();
  const clients = createAwsClients(moto.target);
  home = await mkdtemp(join(tmpdir(), 'keel-stage-'));
  aws = { emulator: 'moto', home, target: moto.target, names, clients, close: async () => {} };
  await provisionResources(clients, names);
  const customers = [...generateRecords({ rows: 2000, seed: 8, asOf: new Date() })];
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 10 });
  await promoteVersion(aws, version);
  await writeRecords(
    { dynamo: clients.dynamo, table: names.onlineFeatures },
    customers.slice(0, 50).map(({ churned: _label, ...raw }) => raw),
  );
  api = await startTestApi(aws);
  recorder = await startRecorder(api.url);
  recorderUrl = `http://127.0.0.1:${(recorder.address() as { port: number }).port}/v1/`;

  const endpoint = moto.target.endpoints!.s3;
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret' });
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
  const cfn = new CloudFormationClient({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
  });
  await createStack(cfn, stackName(STAGE, 'Data'), {
    ...Object.fromEntries(BUCKET_ROLES.map((role) => [STAGE_OUTPUTS.bucket(role), names[role]])),
    ...Object.fromEntries(TABLE_ROLES.map((role) => [STAGE_OUTPUTS.table(role), names[role]])),
  });
  await createStack(cfn, stackName(STAGE, 'Inference'), { [STAGE_OUTPUTS.apiUrl]: recorderUrl });
  await createStack(cfn, stackName(STAGE, 'Pipelines'), {
    [STAGE_OUTPUTS.stateMachines.retrain]: machineArns.retrain!,
    [STAGE_OUTPUTS.stateMachines.etl]: machineArns.etl!,
  });
  cfn.destroy();
  env = {
    KEEL_HOME: home,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'AKIDTEST',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
    KEEL_S3_ENDPOINT: endpoint,
    KEEL_DYNAMODB_ENDPOINT: endpoint,
  };
}, 120_000);

afterAll(async () => {
  recorder?.close();
  await api?.close();
  aws?.clients.s3.destroy();
  aws?.clients.dynamo.destroy();
  moto?.process.kill('SIGTERM');
  for (const server of Object.values(machineServers)) server.process.kill('SIGTERM');
  if (home) await rm(home, { recursive: true, force: true });
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
    const cfn = new CloudFormationClient({
      region: REGION,
      endpoint: moto.target.endpoints!.s3,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    });
    const stage = await resolveStage(STAGE, { cfn });
    expect(stage.names).toEqual(names);
    expect(stage.apiUrl).toBe(recorderUrl);
    expect(stage.stateMachines).toEqual({ retrain: machineArns.retrain, etl: machineArns.etl });
    // A data stack of another Keel version, without the table outputs: named, not guessed.
    await createStack(cfn, stackName('old', 'Data'), { RawBucketName: 'raw' });
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
    });
    const etl = await runKeel(['--stage', STAGE, 'etl', 'run'], sfn('etl'));
    expect(etl.code).toBe(1);
    expect(etl.stderr).toMatch(/the etl execution failed: EtlFailed: bad rows \(execution arn:aws:states:/);
    const batch = await runKeel(['--stage', STAGE, 'batch', 'run'], env);
    expect(batch.stderr).toContain('stack Keel-it-Pipelines has no batch state machine: deploy it');
  });

  it('names the missing stack, and refuses --stage for local-only commands', async () => {
    const missing = await runKeel(['--stage', 'nope', 'models', 'list'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/stack Keel-nope-Data does not exist in us-east-1: deploy the stage/);
    const local = await runKeel(['--stage', STAGE, 'up'], env);
    expect(local.stderr).toContain('keel up works on the local platform only');
    const approvals = await runKeel(['--stage', STAGE, 'models', 'approvals'], env);
    expect(approvals.stderr).toContain('keel models approvals works on the local platform only');
  });
});
