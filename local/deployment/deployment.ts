import { join } from 'node:path';
import { ENTRY_METADATA } from '#lib/paths.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { type AccountEnvironment, StageResolver, type Template } from './intrinsics.ts';
import { synthesizeLocalStage } from './synthesize.ts';

/**
 * The local stage as CloudFormation would deploy it, read from the synthesized templates: each
 * function with its role, environment and limits, each state machine with its role and definition,
 * and every policy that decides what they may do (identity policies of the roles, bucket, topic, queue
 * and key policies). The local platform runs the handlers and state machines from this, and checks
 * every AWS call they make against these policies.
 */

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

export interface LocalRole {
  readonly name: string;
  readonly arn: string;
  /** Inline and attached customer policies, by name. */
  readonly policies: readonly { readonly name: string; readonly document: PolicyDocument }[];
  /** AWS managed policies: their statements are not in the template (none of them grants data access). */
  readonly managedPolicyArns: readonly string[];
}

export interface LocalFunction {
  readonly stack: string;
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
  readonly roleArn: string;
  /** The handler's source file relative to the repository (KeelFunction's {@link ENTRY_METADATA}). */
  readonly entry: string | undefined;
  /** The exported handler function (`index.<name>` in the template). */
  readonly handler: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The function's built code, when it runs from a cloud assembly (`asset.<hash>` folders): the
   * bundle's folder and its layers' folders. Absent: the sources run, from the repository.
   */
  readonly artifact?: { readonly codeDir: string; readonly layerDirs: readonly string[] };
}

export interface LocalStateMachine {
  readonly name: string;
  readonly arn: string;
  readonly roleArn: string;
  readonly definition: Record<string, unknown>;
}

/** A resource whose access a resource policy or an encryption key also governs. */
export interface GovernedResource {
  readonly arn: string;
  /** Name (buckets, tables, queues) or ARN (topics). */
  readonly name: string;
  /** The customer managed KMS key encrypting it, if any. */
  readonly keyArn?: string;
  readonly policy?: PolicyDocument;
}

export interface LocalDeployment {
  readonly env: AccountEnvironment;
  readonly roles: ReadonlyMap<string, LocalRole>;
  readonly functions: ReadonlyMap<string, LocalFunction>;
  readonly stateMachines: ReadonlyMap<string, LocalStateMachine>;
  readonly buckets: ReadonlyMap<string, GovernedResource>;
  readonly tables: ReadonlyMap<string, GovernedResource>;
  readonly topics: ReadonlyMap<string, GovernedResource>;
  readonly queues: ReadonlyMap<string, GovernedResource>;
  /** Key policies by key ARN. */
  readonly keys: ReadonlyMap<string, PolicyDocument>;
}

/** The function of the local deployment whose code is `entry` and export `handler`. */
export function functionOf(deployment: LocalDeployment, entry: string, handler = 'handler'): LocalFunction {
  const matches = [...deployment.functions.values()].filter(
    (fn) => fn.entry === entry && fn.handler === handler,
  );
  if (matches.length !== 1) {
    throw new Error(
      `the local stage has ${matches.length} functions running ${entry}#${handler} (expected exactly one)`,
    );
  }
  return matches[0]!;
}

const asArray = (value: unknown): unknown[] =>
  Array.isArray(value) ? value : value === undefined ? [] : [value];

let loaded: Promise<LocalDeployment> | undefined;

/** The deployment of the local stage, read from its synthesized templates once per process. */
export function loadLocalDeployment(): Promise<LocalDeployment> {
  loaded ??= synthesizeLocalStage().then((templates) => deploymentOf(templates, LOCAL_ENVIRONMENT));
  // A failed synthesis is reported to every caller, and tried again by the next.
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/**
 * The deployment the templates describe. With `assemblyDir` (a cloud assembly synthesized with
 * bundling and asset metadata), each function runs its built code: its `asset.<hash>` folder and its
 * layers' folders.
 */
export function deploymentOf(
  templates: Readonly<Record<string, Template>>,
  env: AccountEnvironment,
  options: { readonly assemblyDir?: string } = {},
): LocalDeployment {
  const resolver = new StageResolver(templates, env);
  const roles = new Map<string, LocalRole & { policies: { name: string; document: PolicyDocument }[] }>();
  const functions = new Map<string, LocalFunction>();
  const stateMachines = new Map<string, LocalStateMachine>();
  const buckets = new Map<string, GovernedResource>();
  const tables = new Map<string, GovernedResource>();
  const topics = new Map<string, GovernedResource>();
  const queues = new Map<string, GovernedResource>();
  const keys = new Map<string, PolicyDocument>();
  const resourcePolicies: {
    kind: 'bucket' | 'topic' | 'queue';
    targets: string[];
    document: PolicyDocument;
  }[] = [];
  const attachments: { roles: string[]; name: string; document: PolicyDocument }[] = [];

  for (const [stack, template] of Object.entries(templates)) {
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (!resolver.exists(stack, logicalId)) continue;
      const props = (resolver.resolve(stack, resource.Properties ?? {}) ?? {}) as Record<string, unknown>;
      const arn = () => resolver.arnOf(stack, logicalId);
      const name = () => resolver.physicalName(stack, logicalId);
      switch (resource.Type) {
        case 'AWS::IAM::Role':
          roles.set(arn(), {
            name: name(),
            arn: arn(),
            policies: asArray(props.Policies).map((p) => {
              const { PolicyName, PolicyDocument } = p as {
                PolicyName: string;
                PolicyDocument: PolicyDocument;
              };
              return { name: PolicyName, document: PolicyDocument };
            }),
            managedPolicyArns: asArray(props.ManagedPolicyArns).map(String),
          });
          break;
        case 'AWS::IAM::Policy':
          attachments.push({
            roles: asArray(props.Roles).map(String),
            name: String(props.PolicyName),
            document: props.PolicyDocument as PolicyDocument,
          });
          break;
        case 'AWS::Lambda::Function': {
          const handler = String(props.Handler ?? 'index.handler');
          const variables = ((props.Environment as { Variables?: Record<string, unknown> } | undefined)
            ?.Variables ?? {}) as Record<string, unknown>;
          functions.set(name(), {
            stack,
            logicalId,
            name: name(),
            arn: arn(),
            roleArn: String(props.Role),
            entry: resource.Metadata?.[ENTRY_METADATA] as string | undefined,
            handler: handler.slice(handler.lastIndexOf('.') + 1),
            timeoutSeconds: Number(props.Timeout ?? 3),
            memoryMb: Number(props.MemorySize ?? 128),
            environment: Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)])),
            ...(options.assemblyDir
              ? { artifact: artifactOf(templates[stack]!, logicalId, options.assemblyDir) }
              : {}),
          });
          break;
        }
        case 'AWS::StepFunctions::StateMachine':
          stateMachines.set(name(), {
            name: name(),
            arn: arn(),
            roleArn: String(props.RoleArn),
            definition: JSON.parse(String(props.DefinitionString)) as Record<string, unknown>,
          });
          break;
        case 'AWS::S3::Bucket': {
          const rule = asArray(
            (props.BucketEncryption as { ServerSideEncryptionConfiguration?: unknown } | undefined)
              ?.ServerSideEncryptionConfiguration,
          )[0] as
            | { ServerSideEncryptionByDefault?: { SSEAlgorithm?: string; KMSMasterKeyID?: string } }
            | undefined;
          const sse = rule?.ServerSideEncryptionByDefault;
          buckets.set(name(), {
            arn: arn(),
            name: name(),
            keyArn: sse?.SSEAlgorithm?.startsWith('aws:kms') ? keyArnOf(sse.KMSMasterKeyID, env) : undefined,
          });
          break;
        }
        case 'AWS::DynamoDB::Table': {
          const sse = props.SSESpecification as { SSEType?: string; KMSMasterKeyId?: string } | undefined;
          tables.set(name(), {
            arn: arn(),
            name: name(),
            keyArn:
              sse?.SSEType === 'KMS' && sse.KMSMasterKeyId ? keyArnOf(sse.KMSMasterKeyId, env) : undefined,
          });
          break;
        }
        case 'AWS::SNS::Topic':
          topics.set(arn(), { arn: arn(), name: arn(), keyArn: keyArnOf(props.KmsMasterKeyId, env) });
          break;
        case 'AWS::SQS::Queue':
          queues.set(arn(), { arn: arn(), name: name(), keyArn: keyArnOf(props.KmsMasterKeyId, env) });
          break;
        case 'AWS::KMS::Key':
          keys.set(arn(), props.KeyPolicy as PolicyDocument);
          break;
        case 'AWS::S3::BucketPolicy':
          resourcePolicies.push({
            kind: 'bucket',
            targets: [String(props.Bucket)],
            document: props.PolicyDocument as PolicyDocument,
          });
          break;
        case 'AWS::SNS::TopicPolicy':
          resourcePolicies.push({
            kind: 'topic',
            targets: asArray(props.Topics).map(String),
            document: props.PolicyDocument as PolicyDocument,
          });
          break;
        case 'AWS::SQS::QueuePolicy':
          resourcePolicies.push({
            kind: 'queue',
            // Queue policies name queues by URL; the queue map is keyed by ARN.
            targets: asArray(props.Queues).map((url) => {
              const [account, queue] = String(url).split('/').slice(-2);
              return `arn:aws:sqs:${env.region}:${account}:${queue}`;
            }),
            document: props.PolicyDocument as PolicyDocument,
          });
          break;
      }
    }
  }
  for (const attachment of attachments) {
    for (const roleName of attachment.roles) {
      const role = [...roles.values()].find((r) => r.name === roleName);
      if (!role)
        throw new Error(`policy ${attachment.name} is attached to role ${roleName}, which the stage lacks`);
      role.policies.push({ name: attachment.name, document: attachment.document });
    }
  }
  const byKind = { bucket: buckets, topic: topics, queue: queues };
  for (const { kind, targets, document } of resourcePolicies) {
    for (const target of targets) {
      const map = byKind[kind];
      const resource = map.get(target);
      if (!resource) throw new Error(`a ${kind} policy governs ${target}, which the stage lacks`);
      map.set(target, { ...resource, policy: document });
    }
  }
  return { env, roles, functions, stateMachines, buckets, tables, topics, queues, keys };
}

/** A KMS key reference as templates hold it (ARN, key id or alias) as an ARN, if customer managed. */
function keyArnOf(value: unknown, env: AccountEnvironment): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  // AWS managed keys (alias/aws/sns, …) are usable by any principal of the account via the service.
  if (value.startsWith('alias/aws/') || value.includes(':alias/aws/')) return undefined;
  return value.startsWith('arn:') ? value : `arn:aws:kms:${env.region}:${env.account}:key/${value}`;
}

/** The built code of a function in a cloud assembly: its asset folder and its layers' asset folders. */
function artifactOf(template: Template, logicalId: string, assemblyDir: string) {
  const assetDir = (id: string) => {
    const path = template.Resources[id]?.Metadata?.['aws:asset:path'];
    if (typeof path !== 'string') {
      throw new Error(`${id} has no aws:asset:path metadata: synthesize with bundling and asset metadata`);
    }
    return join(assemblyDir, path);
  };
  const layers = asArray(template.Resources[logicalId]?.Properties?.Layers).map((layer) => {
    const ref = (layer as { Ref?: string }).Ref;
    if (!ref) throw new Error(`${logicalId} uses a layer that is not in its stack: ${JSON.stringify(layer)}`);
    return assetDir(ref);
  });
  return { codeDir: assetDir(logicalId), layerDirs: layers };
}
