import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { provisionResources } from '#local/provision.ts';
import { roleSessionEnvironment } from '#local/rules/credentials.ts';
import { startRulesFront } from '#local/rules/proxy.ts';
import { awsRulesEnforced } from '#local/rules/switch.ts';
import { writeRuntime } from '#local/running-platform.ts';
import { startLocalServers } from '#local/servers.ts';
import {
  type AwsClients,
  type AwsTarget,
  createAwsClients,
  createDynamoClient,
  createS3Client,
} from '#shared/aws/clients.ts';
import { type EtlDeps, type EtlReport, runEtl } from '#shared/etl/etl.ts';
import { CSV_HEADER, type LabeledRecord, toCsvLine } from '#shared/features/index.ts';
import { LOCAL_ENVIRONMENT, type ResourceNames, resourceNames } from '#shared/resources.ts';

/**
 * The AWS that integration tests run against: the embedded servers of `keel up` by default, or
 * `moto_server` with KEEL_TEST_EMULATOR=moto, so the same tests prove Keel does not lean on one
 * emulator's quirks.
 */
export interface TestAws {
  readonly emulator: 'embedded' | 'moto';
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly clients: AwsClients;
  close(): Promise<void>;
}

/** The ETL steps' dependencies on a test's servers. */
export const etlDepsOf = (aws: TestAws): EtlDeps => ({
  s3: aws.clients.s3,
  dynamo: aws.clients.dynamo,
  rawBucket: aws.names.raw,
  featuresBucket: aws.names.features,
  onlineTable: aws.names.onlineFeatures,
});

/** Puts `records` as the raw CSV `key` and runs the ETL over it (metrics discarded); its report. */
export async function etlOfRecords(
  aws: TestAws,
  key: string,
  records: readonly LabeledRecord[],
): Promise<EtlReport> {
  const body = `${[CSV_HEADER, ...records.map(toCsvLine)].join('\n')}\n`;
  await aws.clients.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: body }));
  return runEtl({ ...etlDepsOf(aws), emit: () => {} }, { inputKey: key });
}

export const TEST_EMULATOR = process.env.KEEL_TEST_EMULATOR === 'moto' ? 'moto' : 'embedded';

import { freePort } from '#local/free-port.ts';

export { freePort };

async function waitForHttp(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (error) {
      if (Date.now() > until)
        throw new Error(`${url} did not answer within ${deadlineMs} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A fresh moto_server on a free port (also used where a test needs services the embedded servers lack). */
export async function startMoto(): Promise<{ target: AwsTarget; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitForHttp(`${endpoint}/moto-api/`, 30_000);
  return {
    target: {
      region: LOCAL_ENVIRONMENT.region,
      endpoints: { s3: endpoint, dynamodb: endpoint, sagemaker: endpoint },
    },
    process: child,
  };
}

export async function startTestAws(): Promise<TestAws> {
  const home = await mkdtemp(join(tmpdir(), 'keel-test-'));
  if (TEST_EMULATOR === 'moto') {
    const moto = await startMoto();
    const names = resourceNames(LOCAL_ENVIRONMENT);
    const s3 = createS3Client(moto.target);
    const dynamo = createDynamoClient(moto.target);
    await provisionResources({ s3, dynamo }, names);
    s3.destroy();
    dynamo.destroy();
    // moto ignores IAM: the same rules proxies as in front of the embedded servers check each call.
    const rules = awsRulesEnforced() ? await startRulesFront(moto.target) : undefined;
    // The state machine's SageMaker calls go to moto directly, checked by the local runner.
    const target: AwsTarget = rules
      ? {
          ...rules.target,
          endpoints: { ...rules.target.endpoints!, sagemaker: moto.target.endpoints!.sagemaker! },
        }
      : moto.target;
    const clients = createAwsClients(target);
    return {
      emulator: 'moto',
      home,
      target,
      names,
      clients,
      async close() {
        clients.s3.destroy();
        clients.dynamo.destroy();
        await rules?.close();
        moto.process.kill('SIGTERM');
        await rm(home, { recursive: true, force: true });
      },
    };
  }
  const servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  const clients = createAwsClients(servers.target);
  return {
    emulator: 'embedded',
    home,
    target: servers.target,
    names: servers.names,
    clients,
    async close() {
      clients.s3.destroy();
      clients.dynamo.destroy();
      await servers.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Publishes the test's servers in its home as a running `keel up` would, for commands that look for one. */
export async function publishRuntime(aws: Pick<TestAws, 'home' | 'target' | 'names'>): Promise<void> {
  await writeRuntime(aws.home, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    stage: LOCAL_ENVIRONMENT.stage,
    region: aws.target.region,
    endpoints: { s3: aws.target.endpoints!.s3, dynamodb: aws.target.endpoints!.dynamodb },
    names: { ...aws.names },
  });
}

/** Clients holding a function's role session, as that function's environment holds its credentials. */
export function roleClients(target: AwsTarget, roleArn: string, session: string): AwsClients {
  const saved = process.env.AWS_SESSION_TOKEN;
  process.env.AWS_SESSION_TOKEN = roleSessionEnvironment(roleArn, session).AWS_SESSION_TOKEN;
  try {
    return createAwsClients(target);
  } finally {
    if (saved === undefined) delete process.env.AWS_SESSION_TOKEN;
    else process.env.AWS_SESSION_TOKEN = saved;
  }
}
