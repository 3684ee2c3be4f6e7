import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BulkAdmission, runWhenAdmitted } from '#local/bulk-admission.ts';
import { type LocalDeployment, loadLocalDeployment } from '#local/deployment/deployment.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import { AccessDeniedError, Authorizer, type Principal } from './authorizer.ts';
import { principalFromSessionToken } from './credentials.ts';
import {
  dynamoRequestActions,
  isMultipartRequest,
  type RequestedAction,
  s3RequestActions,
} from './requests.ts';

/**
 * The front door of a local AWS service: every request signed with a local role session (what the
 * Lambda-like environments and state machines use) is authorized by {@link Authorizer} before it
 * reaches the emulator behind, and refused as AWS refuses it (S3's 403 AccessDenied XML, DynamoDB's
 * AccessDeniedException JSON) when the synthesized policies would not allow it. Requests without a
 * session are the operator's (the CLI, a test's setup) and pass, as an administrator's would.
 */

export type ServiceName = 's3' | 'dynamodb';

export interface Denial {
  readonly at: string;
  readonly service: ServiceName;
  readonly message: string;
}

export interface RulesProxy {
  readonly endpoint: string;
  /** Calls refused since the start, newest last (at most 1,000 kept). */
  readonly denials: readonly Denial[];
  close(): Promise<void>;
}

export interface RulesProxyOptions {
  readonly service: ServiceName;
  /** The emulator's endpoint, e.g. `http://127.0.0.1:4568`. */
  readonly upstream: string;
  readonly deployment: LocalDeployment;
  readonly authorizer: Authorizer;
  /** Told of every refused call (keel up prints them: a denial locally is a deploy that would fail). */
  readonly onDenied?: (denial: Denial) => void;
  /** @default - 0, a free port */
  readonly port?: number;
  /**
   * The emulator's own request handler, when it runs in this process: requests reach it without a
   * second HTTP hop. @default - requests go to `upstream` over HTTP
   */
  readonly upstreamHandler?: RequestListener;
  /** What holds a pipeline's bulk calls before they reach `upstreamHandler`. @default - nothing holds them */
  readonly upstreamAdmission?: BulkAdmission;
}

const DENIALS_KEPT = 1_000;
/** The largest body the proxy buffers to read (DynamoDB's request size limit; S3 delete lists are far smaller). */
const MAX_BUFFERED_BODY = 16 * 1024 * 1024;

export async function startRulesProxy(options: RulesProxyOptions): Promise<RulesProxy> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 128 });
  const denials: Denial[] = [];
  const { deployment, authorizer, service } = options;

  const forward = (req: IncomingMessage, res: ServerResponse, body?: Buffer) => {
    const handler = options.upstreamHandler;
    if (handler) {
      runWhenAdmitted(options.upstreamAdmission, req, res, () => handOver(handler, req, res, body));
      return;
    }
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    out.on('error', () => {
      // The emulator is down: the client sees a reset connection, as it would without this proxy.
      res.destroy();
    });
    if (body) out.end(body);
    else req.pipe(out);
  };

  const refuse = (req: IncomingMessage, res: ServerResponse, error: AccessDeniedError) => {
    const denial = { at: new Date().toISOString(), service, message: error.message };
    denials.push(denial);
    if (denials.length > DENIALS_KEPT) denials.shift();
    options.onDenied?.(denial);
    const requestId = randomUUID();
    if (service === 'dynamodb') {
      const payload = JSON.stringify({
        __type: 'com.amazon.coral.service#AccessDeniedException',
        message: error.message,
      });
      res.writeHead(400, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': requestId,
        'x-amzn-errortype': 'AccessDeniedException',
      });
      res.end(payload);
      return;
    }
    res.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
    // HEAD responses carry no body; the SDK reports a bare 403 as AccessDenied/Forbidden.
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${escapeXml(error.message)}</Message><RequestId>${requestId}</RequestId></Error>`,
    );
  };

  const authorizeAll = async (principal: Principal, actions: readonly RequestedAction[]) => {
    for (const { action, resource, context } of actions) {
      await authorizer.authorize({ principal, action, resource, context });
    }
  };

  const handleS3 = async (req: IncomingMessage, res: ServerResponse, principal: Principal) => {
    const url = new URL(req.url ?? '/', 'http://local');
    // Only a multi-object delete names its objects in the body: that body is read, any other streams through.
    const multiDelete = url.searchParams.has('delete') && req.method === 'POST';
    const body = multiDelete ? await readBody(req, MAX_BUFFERED_BODY) : undefined;
    const actions = s3RequestActions({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      deleteKeys: body
        ? [...body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1]!))
        : undefined,
    });
    await authorizeAll(principal, actions);
    // SSE-KMS: S3 uses the bucket's key with the caller's permissions.
    for (const { action, resource } of actions) {
      const bucket = resource.startsWith('arn:aws:s3:::') ? resource.slice(13).split('/')[0]! : '';
      const keyArn = deployment.buckets.get(bucket)?.keyArn;
      if (!keyArn || !resource.includes('/')) continue;
      const kms =
        action === 's3:PutObject'
          ? isMultipartRequest(url.searchParams)
            ? ['kms:GenerateDataKey', 'kms:Decrypt']
            : ['kms:GenerateDataKey']
          : action === 's3:GetObject' && req.method === 'GET'
            ? ['kms:Decrypt']
            : [];
      await authorizer.authorizeKey(principal, keyArn, kms, `s3.${deployment.env.region}.amazonaws.com`);
    }
    forward(req, res, body);
  };

  const handleDynamo = async (req: IncomingMessage, res: ServerResponse, principal: Principal) => {
    const body = await readBody(req, MAX_BUFFERED_BODY);
    const target = String(req.headers['x-amz-target'] ?? '');
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      // Malformed JSON is DynamoDB's to refuse, as it would be in AWS.
    }
    const actions = dynamoRequestActions(target, parsed, deployment.env);
    await authorizeAll(principal, actions);
    for (const { resource } of actions) {
      const table = resource.split(':table/')[1]?.split('/')[0];
      const keyArn = table ? deployment.tables.get(table)?.keyArn : undefined;
      if (keyArn) {
        await authorizer.authorizeKey(
          principal,
          keyArn,
          ['kms:Decrypt'],
          `dynamodb.${deployment.env.region}.amazonaws.com`,
        );
      }
    }
    forward(req, res, body);
  };

  const server: Server = createServer((req, res) => {
    const token = req.headers['x-amz-security-token'];
    const principal = principalFromSessionToken(Array.isArray(token) ? token[0] : token);
    if (!principal) {
      forward(req, res);
      return;
    }
    (service === 's3' ? handleS3 : handleDynamo)(req, res, principal).catch((error: unknown) => {
      if (error instanceof AccessDeniedError) refuse(req, res, error);
      else {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`local IAM check failed: ${(error as Error).message}`);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    denials,
    async close() {
      agent.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Gives a request to an HTTP handler in this process. A body already read is replayed to it as the
 * stream it would have read; an unread one streams through.
 */
function handOver(handler: RequestListener, req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
  if (!body) {
    handler(req, res);
    return;
  }
  const replay = Object.assign(new EventEmitter(), {
    method: req.method,
    url: req.url,
    headers: req.headers,
    socket: req.socket,
  });
  handler(replay as unknown as IncomingMessage, res);
  replay.emit('data', body);
  replay.emit('end');
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new Error(`request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unescapeXml = (text: string) =>
  text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

/** The rules proxies of a local target: one in front of its S3, one in front of its DynamoDB. */
export interface RulesFront {
  /** The proxies' endpoints: what every client of the local platform uses. */
  readonly target: AwsTarget;
  /** Refused calls of both services since the start, oldest first. */
  denials(): Denial[];
  close(): Promise<void>;
}

export interface RulesFrontOptions {
  /** Told of every refused call. */
  readonly onDenied?: (denial: Denial) => void;
  /** The proxies' ports (a restarted storage process keeps its endpoints). @default - free ports */
  readonly ports?: { readonly s3?: number; readonly dynamodb?: number };
  /** DynamoDB's request handler when the emulator runs in this process (no second HTTP hop). */
  readonly dynamodbHandler?: RequestListener;
  /** What holds a pipeline's bulk calls before they reach `dynamodbHandler`. @default - nothing holds them */
  readonly dynamodbAdmission?: BulkAdmission;
}

/**
 * Puts the rules proxies in front of `upstream` (the embedded servers, or moto), so every call signed
 * by a local role session is checked against the local stage's policies.
 */

export async function startRulesFront(
  upstream: AwsTarget,
  options: RulesFrontOptions = {},
): Promise<RulesFront> {
  if (!upstream.endpoints) throw new Error('the rules proxies need local endpoints to stand in front of');
  const deployment = await loadLocalDeployment();
  const authorizer = new Authorizer(deployment);
  const common = { deployment, authorizer, onDenied: options.onDenied };
  const s3 = await startRulesProxy({
    ...common,
    service: 's3',
    upstream: upstream.endpoints.s3,
    port: options.ports?.s3,
  });
  const dynamodb = await startRulesProxy({
    ...common,
    service: 'dynamodb',
    upstream: upstream.endpoints.dynamodb,
    port: options.ports?.dynamodb,
    upstreamHandler: options.dynamodbHandler,
    upstreamAdmission: options.dynamodbAdmission,
  }).catch(async (error: unknown) => {
    await s3.close();
    throw error;
  });
  return {
    target: { region: upstream.region, endpoints: { s3: s3.endpoint, dynamodb: dynamodb.endpoint } },
    denials: () => [...s3.denials, ...dynamodb.denials].sort((a, b) => a.at.localeCompare(b.at)),
    async close() {
      await Promise.all([s3.close(), dynamodb.close()]);
    },
  };
}
