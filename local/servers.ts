import { mkdir } from 'node:fs/promises';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { type AwsTarget, createDynamoClient, createS3Client } from '#shared/aws/clients.ts';
import { type DeploymentEnvironment, type ResourceNames, resourceNames } from '#shared/resources.ts';
import { type BulkAdmission, createBulkAdmission, withBulkAdmission } from './bulk-admission.ts';
import { installTableDescriptionCache } from './dynalite-tables.ts';
import { installLevelDbBounds } from './leveldb-bounds.ts';
import { provisionResources } from './provision.ts';
import { type Denial, startRulesFront } from './rules/proxy.ts';
import { awsRulesEnforced } from './rules/switch.ts';

export interface LocalServersOptions {
  /** State directory; S3 objects go to `<home>/s3`, DynamoDB tables to `<home>/dynamodb`. */
  readonly home: string;
  /** Port of the S3 server; 0 picks a free one. */
  readonly s3Port: number;
  /** Port of the DynamoDB server; 0 picks a free one. */
  readonly dynamoPort: number;
  /**
   * Ports of the rules proxies, the endpoints clients use (a restarted storage process keeps them).
   * @default - free ports
   */
  readonly proxyPorts?: { readonly s3?: number; readonly dynamodb?: number };
  readonly environment: DeploymentEnvironment;
  /** Told of every call the rules proxies refuse. */
  readonly onDenied?: (denial: Denial) => void;
  /**
   * What holds a pipeline's bulk DynamoDB calls while point reads are served.
   * @default - createBulkAdmission(): bulk calls one at a time, each followed by an equal pause, while serving
   */
  readonly bulkAdmission?: BulkAdmission;
}

export interface LocalServers {
  readonly target: AwsTarget;
  /** The emulators themselves, behind the rules proxies (what the benchmarks measure the proxies against). */
  readonly emulators: AwsTarget;
  readonly names: ResourceNames;
  /** Buckets and tables this start created (empty when the state already had them). */
  readonly created: string[];
  /** Calls the rules proxies refused (none when KEEL_AWS_RULES=off). */
  denials(): Denial[];
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

function rethrowPortInUse(error: NodeJS.ErrnoException, what: string, port: number): never {
  if (error.code === 'EADDRINUSE') {
    throw new Error(
      `${what} port ${port} on ${HOST} is already in use: stop what holds it or choose another port`,
    );
  }
  throw error;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive connections from SDK clients would otherwise hold close() open.
    server.closeAllConnections();
  });
}

/**
 * Starts S3 (s3rver) and DynamoDB (dynalite) in this process on 127.0.0.1, with state on disk, and
 * creates the buckets and tables the CDK data stack declares, under the same names. The target it
 * returns is the rules proxies in front of them (local/rules), unless KEEL_AWS_RULES=off.
 */
export async function startLocalServers(options: LocalServersOptions): Promise<LocalServers> {
  const s3Dir = join(options.home, 's3');
  const dynamoDir = join(options.home, 'dynamodb');
  await mkdir(s3Dir, { recursive: true });
  await mkdir(dynamoDir, { recursive: true });

  const s3rver = new S3rver({ address: HOST, port: options.s3Port, directory: s3Dir, silent: true });
  const s3Port = (await s3rver.run().catch((error) => rethrowPortInUse(error, 'S3', options.s3Port))).port;
  installLevelDbBounds();
  installTableDescriptionCache();
  const dynamoServer = dynalite({ path: dynamoDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // Point reads before a pipeline's bulk calls, whichever port a client calls (local/bulk-admission.ts).
  const dynamoHandler = dynamoServer.listeners('request')[0] as RequestListener;
  const admission = options.bulkAdmission ?? createBulkAdmission();
  dynamoServer.removeAllListeners('request');
  dynamoServer.on('request', withBulkAdmission(dynamoHandler, admission));
  const dynamoPort = await new Promise<number>((resolve, reject) => {
    dynamoServer.once('error', reject);
    dynamoServer.listen(options.dynamoPort, HOST, () =>
      resolve((dynamoServer.address() as AddressInfo).port),
    );
  }).catch(async (error) => {
    await closeServer(s3rver.httpServer);
    return rethrowPortInUse(error, 'DynamoDB', options.dynamoPort);
  });

  const emulators: AwsTarget = {
    region: options.environment.region,
    endpoints: { s3: `http://${HOST}:${s3Port}`, dynamodb: `http://${HOST}:${dynamoPort}` },
  };
  const names = resourceNames(options.environment);
  const s3 = createS3Client(emulators);
  const dynamo = createDynamoClient(emulators);
  const created = await provisionResources({ s3, dynamo }, names);
  s3.destroy();
  dynamo.destroy();
  const closeEmulators = () => Promise.all([closeServer(s3rver.httpServer), closeServer(dynamoServer)]);
  // Every client goes through the rules proxies, which check what the functions' roles may do.
  const rules = awsRulesEnforced()
    ? await startRulesFront(emulators, {
        onDenied: options.onDenied,
        ports: options.proxyPorts,
        // The hot path (every online-store read) skips a second HTTP hop to the emulator.
        dynamodbHandler: dynamoHandler,
        dynamodbAdmission: admission,
      }).catch(async (error: unknown) => {
        await closeEmulators();
        throw error;
      })
    : undefined;

  return {
    target: rules?.target ?? emulators,
    emulators,
    names,
    created,
    denials: () => rules?.denials() ?? [],
    async close() {
      await rules?.close();
      await closeEmulators();
    },
  };
}
