import { createHash, randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, KeelError, UnknownEntityError, ValidationError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/index.ts';
import { assertFieldsInStore, featureSetOfVersion } from './feature-sets.ts';
import {
  type ModelMetadata,
  type ModelVersion,
  modelKeys,
  modelMetadataSchema,
  modelNameSchema,
  type NewModelMetadata,
  versionName,
  versionNumber,
} from './metadata.ts';

export { FieldNotInStoreError, FingerprintMismatchError } from './feature-sets.ts';

import {
  checkRolloutRequest,
  parseRollout,
  type Rollout,
  type RolloutRequest,
  type Variant,
  variantFor,
} from './rollout.ts';

/**
 * The model registry: immutable versions in S3 (`models/<name>/v<N>/…`), and in DynamoDB the version
 * counter, one item per registered version, the `champion` alias and the append-only deployment log.
 * Every function takes its dependencies; nothing here reads the environment.
 */
export interface RegistryDeps {
  readonly s3: S3Client;
  readonly dynamo: DynamoDBDocumentClient;
  /** The models bucket. */
  readonly bucket: string;
  /** The model-registry table. */
  readonly table: string;
  readonly clock?: () => Date;
}

export const CHAMPION = 'champion';

/** A version's artifact in S3 does not match what was registered: never serve it. */
export class ArtifactIntegrityError extends KeelError {
  readonly code = 'Internal';
}

/** One registered version, as listed from DynamoDB without reading S3. */
export interface VersionSummary {
  readonly name: string;
  readonly version: ModelVersion;
  readonly created_at: string;
  readonly algorithm: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly fingerprint: string;
  readonly feature_set_version: string;
  readonly metrics: { auc: number; logloss: number; accuracy: number };
  readonly threshold: number;
  readonly parent: string | null;
}

/**
 * One move of the aliases. `seq` numbers the moves of a model from 1. `promote` and `rollback` move the
 * champion (`from` → `to`); `rollout-start` puts `to` beside the champion `from` as its challenger;
 * `rollout-end` ends a rollout without promoting it (`from` the challenger, `to` the champion that keeps
 * 100%). Moves made by a rollout name it in `rollout`.
 */
export interface Deployment {
  readonly seq: number;
  readonly at: string;
  readonly from: ModelVersion | null;
  readonly to: ModelVersion;
  readonly kind: 'promote' | 'rollback' | 'rollout-start' | 'rollout-end';
  readonly reason: string;
  readonly actor: string;
  readonly rollout?: RolloutRef;
}

/** The rollout a move belongs to, as the log keeps it. */
export interface RolloutRef {
  readonly id: string;
  readonly mode: Rollout['mode'];
  readonly percent: number | null;
  readonly version: ModelVersion;
}

const rolloutRef = (rollout: Rollout): RolloutRef => ({
  id: rollout.id,
  mode: rollout.mode,
  percent: rollout.percent,
  version: rollout.version,
});

/** Whether a log entry moved the champion (rollout starts and ends leave it where it was). */
export const movesChampion = (entry: Deployment) => entry.kind === 'promote' || entry.kind === 'rollback';

const pk = (name: string) => `MODEL#${modelNameSchema.parse(name)}`;
const pad = (n: number) => String(n).padStart(9, '0');
const versionKey = (version: string) => `VERSION#${pad(versionNumber(version))}`;
const logKey = (seq: number) => `LOG#${pad(seq)}`;
const ALIAS_KEY = `ALIAS#${CHAMPION}`;
const COUNTER_KEY = 'COUNTER';

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const now = (deps: RegistryDeps) => (deps.clock ?? (() => new Date()))().toISOString();

/** Allocates the next version number atomically (DynamoDB ADD on the model's counter). */
async function allocateVersion(deps: RegistryDeps, name: string): Promise<ModelVersion> {
  const result = await deps.dynamo.send(
    new UpdateCommand({
      TableName: deps.table,
      Key: { pk: pk(name), sk: COUNTER_KEY },
      UpdateExpression: 'ADD #next :one',
      ExpressionAttributeNames: { '#next': 'next' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return versionName(Number(result.Attributes?.next));
}

export interface RegisterInput {
  readonly name: string;
  readonly onnx: Uint8Array;
  readonly metadata: NewModelMetadata;
  /** Training distributions for drift, stored as `baseline.json`. */
  readonly baseline?: unknown;
}

/**
 * Registers a new immutable version. The S3 objects are written first and the DynamoDB version item
 * last: a crash in between leaves an unlisted prefix and a skipped number, never a half version.
 */
export async function registerModel(deps: RegistryDeps, input: RegisterInput): Promise<ModelMetadata> {
  const draft = { ...input.metadata, name: input.name, version: 'v1', created_at: now(deps) };
  const artifact = { format: 'onnx' as const, sha256: sha256Hex(input.onnx), bytes: input.onnx.byteLength };
  const checked = modelMetadataSchema.safeParse({ ...draft, artifact });
  if (!checked.success) {
    throw new ValidationError(
      'model metadata is invalid',
      checked.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  const version = await allocateVersion(deps, input.name);
  const metadata: ModelMetadata = { ...checked.data, version };
  const keys = modelKeys(input.name, version);
  const put = (Key: string, Body: Uint8Array | string, ContentType: string) =>
    // IfNoneMatch: S3 refuses to overwrite an existing key, so a version is written once.
    deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key, Body, ContentType, IfNoneMatch: '*' }));
  await put(keys.model, input.onnx, 'application/octet-stream');
  if (input.baseline !== undefined)
    await put(keys.baseline, JSON.stringify(input.baseline), 'application/json');
  await put(keys.metadata, JSON.stringify(metadata, null, 2), 'application/json');

  const summary: VersionSummary = {
    name: metadata.name,
    version,
    created_at: metadata.created_at,
    algorithm: metadata.algorithm,
    sha256: artifact.sha256,
    bytes: artifact.bytes,
    fingerprint: metadata.feature_set.fingerprint,
    feature_set_version: metadata.feature_set.version,
    metrics: {
      auc: metadata.metrics.auc,
      logloss: metadata.metrics.logloss,
      accuracy: metadata.metrics.accuracy,
    },
    threshold: metadata.threshold,
    parent: metadata.parent,
  };
  await deps.dynamo.send(
    new PutCommand({
      TableName: deps.table,
      Item: { pk: pk(input.name), sk: versionKey(version), ...summary },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return metadata;
}

async function queryAll(
  deps: RegistryDeps,
  name: string,
  prefix: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await deps.dynamo.send(
      new QueryCommand({
        TableName: deps.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': pk(name), ':prefix': prefix },
        ExclusiveStartKey,
      }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

const stripKeys = <T>({ pk: _pk, sk: _sk, ...rest }: Record<string, unknown>) => rest as T;

export async function listVersions(deps: RegistryDeps, name: string): Promise<VersionSummary[]> {
  return (await queryAll(deps, name, 'VERSION#')).map((item) => stripKeys<VersionSummary>(item));
}

export async function getVersion(deps: RegistryDeps, name: string, version: string): Promise<VersionSummary> {
  const parsed = modelVersionOrThrow(version);
  const { Item } = await deps.dynamo.send(
    new GetCommand({
      TableName: deps.table,
      Key: { pk: pk(name), sk: versionKey(parsed) },
      ConsistentRead: true,
    }),
  );
  if (!Item) throw new UnknownEntityError(`model ${name} has no version ${parsed}; see \`keel models list\``);
  return stripKeys<VersionSummary>(Item);
}

function modelVersionOrThrow(version: string): ModelVersion {
  try {
    return versionName(versionNumber(version));
  } catch {
    throw new ValidationError(`"${version}" is not a version: versions look like v1, v2, …`, [
      { path: 'version', message: 'a version looks like v1, v2, …' },
    ]);
  }
}

export async function readMetadata(
  deps: RegistryDeps,
  name: string,
  version: string,
): Promise<ModelMetadata> {
  const { version: registered } = await getVersion(deps, name, version);
  return readMetadataObject(deps, name, registered);
}

/** metadata.json of a version already known to be registered. */
async function readMetadataObject(deps: RegistryDeps, name: string, version: string): Promise<ModelMetadata> {
  const object = await deps.s3.send(
    new GetObjectCommand({ Bucket: deps.bucket, Key: modelKeys(name, version).metadata }),
  );
  return modelMetadataSchema.parse(JSON.parse(await object.Body!.transformToString()));
}

/**
 * The aliases of a model, one item: the champion and, during a rollout, its challenger. One item so
 * that a single conditional write moves both (DynamoDB transactions are not needed, and a reader sees
 * champion and challenger from the same moment).
 */
interface AliasItem {
  readonly version: ModelVersion;
  readonly seq: number;
  /** The move that set this value (written with it): {@link history} restores a log entry lost to a crash. */
  readonly last_move: Omit<Deployment, 'seq'>;
  readonly challenger?: unknown;
}

async function readAlias(deps: RegistryDeps, name: string): Promise<AliasItem | undefined> {
  const { Item } = await deps.dynamo.send(
    new GetCommand({ TableName: deps.table, Key: { pk: pk(name), sk: ALIAS_KEY }, ConsistentRead: true }),
  );
  return Item ? stripKeys<AliasItem>(Item) : undefined;
}

/** The current champion, or undefined when no version has been promoted yet. */
export async function getChampion(deps: RegistryDeps, name: string): Promise<ModelVersion | undefined> {
  return (await readAlias(deps, name))?.version;
}

/** What serves now: the champion (undefined before the first promotion) and the rollout, if one runs. */
export interface Aliases {
  readonly champion: ModelVersion | undefined;
  readonly rollout: Rollout | undefined;
}

/** Champion and challenger in one strongly consistent read. */
export async function getAliases(deps: RegistryDeps, name: string): Promise<Aliases> {
  const alias = await readAlias(deps, name);
  return {
    champion: alias?.version,
    rollout: alias?.challenger === undefined ? undefined : parseRollout(alias.challenger),
  };
}

export interface PromoteInput {
  readonly name: string;
  readonly version: string;
  /**
   * The champion the caller believes is current (null: none). The alias moves only if it still is;
   * otherwise a {@link ConflictError}. Omitted: the current value is read first (CLI use).
   */
  readonly expected?: ModelVersion | null;
  /**
   * The raw fields the online store holds (`readStoreFields`); a version requiring another one is
   * refused. @default this code's raw schema
   */
  readonly storeFields?: ReadonlySet<string>;
  readonly reason: string;
  readonly actor: string;
  /** Promote although the store lacks a field the version requires; `reason` must then say why. */
  readonly force?: boolean;
  readonly kind?: 'promote' | 'rollback';
  /**
   * Promotes the challenger of this rollout and ends it, in the same write. Without it, a promotion
   * while a rollout runs is refused ({@link endRollout} first).
   */
  readonly rollout?: Rollout;
}

/**
 * Moves the champion alias with a conditional write on its current value, then appends the move to the
 * deployment log. Two concurrent promotions from the same expected champion: exactly one wins.
 */
export async function promote(deps: RegistryDeps, input: PromoteInput): Promise<Deployment> {
  const target = await getVersion(deps, input.name, input.version);
  await checkPromotable(deps, { ...input, version: target.version });
  if (input.force && input.reason.trim().length === 0) {
    throw new ValidationError('a forced promotion needs a reason', [
      { path: 'reason', message: 'required with force' },
    ]);
  }
  const current = input.expected === undefined ? await readAlias(deps, input.name) : undefined;
  const expected = input.expected === undefined ? (current?.version ?? null) : input.expected;
  if (expected === target.version) {
    throw new ConflictError(`${target.version} is already the champion of ${input.name}`);
  }
  if (input.rollout && input.rollout.version !== target.version) {
    throw new ConflictError(
      `rollout ${input.rollout.id} rolls out ${input.rollout.version}, not ${target.version}`,
    );
  }
  const move: Omit<Deployment, 'seq'> = {
    at: now(deps),
    from: expected,
    to: target.version,
    kind: input.kind ?? 'promote',
    reason: input.reason,
    actor: input.actor,
    ...(input.rollout ? { rollout: rolloutRef(input.rollout) } : {}),
  };
  const championIs = expected === null ? 'attribute_not_exists(pk)' : '#version = :expected';
  try {
    return await moveAliases(deps, input.name, move, {
      set: { '#version': target.version },
      remove: input.rollout ? ['#challenger'] : [],
      condition: input.rollout
        ? `${championIs} AND #challenger.#id = :rollout`
        : `${championIs} AND attribute_not_exists(#challenger)`,
      values: {
        ...(expected === null ? {} : { ':expected': expected }),
        ...(input.rollout ? { ':rollout': input.rollout.id } : {}),
      },
    });
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const aliases = await getAliases(deps, input.name);
    if (aliases.champion === (expected ?? undefined) && aliases.rollout?.id !== input.rollout?.id) {
      throw new ConflictError(
        aliases.rollout
          ? `${describeRollout(aliases.rollout)} is running: end it first (\`keel models rollout abort\`) ` +
              'or let it decide'
          : `rollout ${input.rollout?.id} has already ended`,
        { cause: error },
      );
    }
    throw new ConflictError(
      `the champion of ${input.name} moved: expected ${expected ?? 'none'}, it is now ${aliases.champion ?? 'none'}; ` +
        'check `keel models history` and retry',
      { cause: error },
    );
  }
}

/** `canary of v3 (20%)`, `shadow of v3`: a rollout in one phrase, for messages. */
export const describeRollout = (rollout: Pick<Rollout, 'mode' | 'version' | 'percent'>) =>
  `the ${rollout.mode} of ${rollout.version}${rollout.mode === 'canary' ? ` (${rollout.percent}%)` : ''}`;

const ALIAS_ATTRIBUTES = {
  '#version': 'version',
  '#seq': 'seq',
  '#last': 'last_move',
  '#challenger': 'challenger',
  '#id': 'id',
} as const;

interface AliasUpdate {
  /** Attribute placeholders (`#version`, `#challenger`) → values. */
  readonly set: Readonly<Record<string, unknown>>;
  readonly remove: readonly string[];
  readonly condition: string;
  readonly values: Readonly<Record<string, unknown>>;
}

/**
 * One conditional write of the alias item that also counts the move (`seq`) and keeps it (`last_move`),
 * then the log entry. A crash between the two is repaired by {@link history}.
 */
async function moveAliases(
  deps: RegistryDeps,
  name: string,
  move: Omit<Deployment, 'seq'>,
  update: AliasUpdate,
): Promise<Deployment> {
  const sets = Object.keys(update.set).map((placeholder, i) => `${placeholder} = :set${i}`);
  const UpdateExpression =
    `SET ${[...sets, '#seq = if_not_exists(#seq, :zero) + :one', '#last = :move'].join(', ')}` +
    (update.remove.length > 0 ? ` REMOVE ${update.remove.join(', ')}` : '');
  const expressions = `${UpdateExpression} ${update.condition}`;
  const result = await deps.dynamo.send(
    new UpdateCommand({
      TableName: deps.table,
      Key: { pk: pk(name), sk: ALIAS_KEY },
      UpdateExpression,
      ConditionExpression: update.condition,
      // DynamoDB refuses a name placeholder that no expression uses.
      ExpressionAttributeNames: Object.fromEntries(
        Object.entries(ALIAS_ATTRIBUTES).filter(([placeholder]) =>
          new RegExp(`${placeholder}\\b`).test(expressions),
        ),
      ),
      ExpressionAttributeValues: {
        ...Object.fromEntries(Object.values(update.set).map((value, i) => [`:set${i}`, value])),
        ':move': move,
        ':zero': 0,
        ':one': 1,
        ...update.values,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  const deployment: Deployment = { seq: Number(result.Attributes?.seq), ...move };
  await appendLog(deps, name, deployment);
  return deployment;
}

export interface StartRolloutInput extends RolloutRequest {
  readonly name: string;
  readonly version: string;
  /** The champion the caller compared the version with; the rollout starts only beside it. */
  readonly expectedChampion?: ModelVersion;
  /** The raw fields the online store holds; a challenger requiring another one is refused. */
  readonly storeFields?: ReadonlySet<string>;
  readonly reason: string;
  readonly actor: string;
}

/**
 * Puts a registered version beside the champion as its challenger, with a conditional write: only
 * while that champion is current and no other rollout runs.
 */
export async function startRollout(
  deps: RegistryDeps,
  input: StartRolloutInput,
): Promise<{ rollout: Rollout; deployment: Deployment }> {
  checkRolloutRequest(input);
  const target = await getVersion(deps, input.name, input.version);
  await checkPromotable(deps, { name: input.name, version: target.version, storeFields: input.storeFields });
  const aliases = await getAliases(deps, input.name);
  if (!aliases.champion) {
    throw new ConflictError(
      `${input.name} has no champion to compare ${target.version} with: promote it instead ` +
        `(\`keel models promote ${target.version}\`)`,
    );
  }
  if (aliases.champion === target.version) {
    throw new ConflictError(`${target.version} is already the champion of ${input.name}`);
  }
  if (input.expectedChampion !== undefined && aliases.champion !== input.expectedChampion) {
    throw new ConflictError(
      `the champion of ${input.name} moved: expected ${input.expectedChampion}, it is now ${aliases.champion}; ` +
        `${target.version} was compared with ${input.expectedChampion}, not with it`,
    );
  }
  if (aliases.rollout) {
    throw new ConflictError(
      `${describeRollout(aliases.rollout)} is already running: one rollout at a time ` +
        '(`keel models rollout abort` ends it)',
    );
  }
  const started = (deps.clock ?? (() => new Date()))();
  const rollout: Rollout = {
    id: `r-${randomBytes(6).toString('hex')}`,
    version: target.version,
    champion: aliases.champion,
    mode: input.mode,
    percent: input.mode === 'canary' ? input.percent! : null,
    bake_seconds: input.bakeSeconds,
    started_at: started.toISOString(),
    bake_ends_at: new Date(started.getTime() + input.bakeSeconds * 1000).toISOString(),
    reason: input.reason,
    actor: input.actor,
  };
  const move: Omit<Deployment, 'seq'> = {
    at: rollout.started_at,
    from: aliases.champion,
    to: target.version,
    kind: 'rollout-start',
    reason: input.reason,
    actor: input.actor,
    rollout: rolloutRef(rollout),
  };
  try {
    const deployment = await moveAliases(deps, input.name, move, {
      set: { '#challenger': rollout },
      remove: [],
      condition: '#version = :champion AND attribute_not_exists(#challenger)',
      values: { ':champion': aliases.champion },
    });
    return { rollout, deployment };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    throw new ConflictError(
      `the aliases of ${input.name} moved while starting the rollout (another promotion or rollout); ` +
        'check `keel models rollout` and retry',
      { cause: error },
    );
  }
}

export interface EndRolloutInput {
  readonly name: string;
  /** The rollout to end; nothing happens to a rollout that replaced it. */
  readonly rolloutId: string;
  readonly reason: string;
  readonly actor: string;
}

/**
 * Ends a rollout without promoting it: the champion keeps 100%. Conditional on the rollout still being
 * the current one, so a decision and an abort racing each other cannot both act.
 */
export async function endRollout(deps: RegistryDeps, input: EndRolloutInput): Promise<Deployment> {
  const { rollout } = await getAliases(deps, input.name);
  if (rollout?.id !== input.rolloutId) {
    throw new ConflictError(
      `rollout ${input.rolloutId} of ${input.name} is not running` +
        (rollout ? ` (${describeRollout(rollout)} is, as ${rollout.id})` : ''),
    );
  }
  const move: Omit<Deployment, 'seq'> = {
    at: now(deps),
    from: rollout.version,
    to: rollout.champion,
    kind: 'rollout-end',
    reason: input.reason,
    actor: input.actor,
    rollout: rolloutRef(rollout),
  };
  try {
    return await moveAliases(deps, input.name, move, {
      set: {},
      remove: ['#challenger'],
      condition: '#challenger.#id = :rollout',
      values: { ':rollout': rollout.id },
    });
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    throw new ConflictError(`rollout ${input.rolloutId} of ${input.name} ended meanwhile`, { cause: error });
  }
}

async function appendLog(deps: RegistryDeps, name: string, deployment: Deployment): Promise<void> {
  try {
    await deps.dynamo.send(
      new PutCommand({
        TableName: deps.table,
        Item: { pk: pk(name), sk: logKey(deployment.seq), ...deployment },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  } catch (error) {
    // Append-only: an entry already written for this seq (a repair raced us) is kept as it is.
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** The deployment log, oldest first. A move whose log write was lost to a crash is restored here. */
export async function history(deps: RegistryDeps, name: string): Promise<Deployment[]> {
  const entries = (await queryAll(deps, name, 'LOG#')).map((item) => stripKeys<Deployment>(item));
  const alias = await readAlias(deps, name);
  if (alias && !entries.some((entry) => entry.seq === alias.seq)) {
    const lost: Deployment = { seq: alias.seq, ...alias.last_move };
    await appendLog(deps, name, lost);
    entries.push(lost);
  }
  return entries.sort((a, b) => a.seq - b.seq);
}

/** The champion that was live at `time` according to the log (undefined before the first promotion). */
export function championAt(log: readonly Deployment[], time: Date): ModelVersion | undefined {
  return liveAt(log, time).champion;
}

/** Champion and running rollout at `time`, replayed from the log. */
export function liveAt(
  log: readonly Deployment[],
  time: Date,
): { champion: ModelVersion | undefined; rollout: RolloutRef | undefined } {
  let champion: ModelVersion | undefined;
  let rollout: RolloutRef | undefined;
  for (const entry of log) {
    if (Date.parse(entry.at) > time.getTime()) break;
    if (entry.kind === 'rollout-start') rollout = entry.rollout;
    else if (entry.kind === 'rollout-end' || entry.rollout) rollout = undefined;
    if (movesChampion(entry)) champion = entry.to;
  }
  return { champion, rollout };
}

/**
 * Which version answered `customerId` at `time`, and as which variant: the champion, or the canary
 * challenger when the customer's stable hash put them in its share (a shadow never answers).
 */
export function answeredBy(
  log: readonly Deployment[],
  customerId: string,
  time: Date,
): { version: ModelVersion; variant: Variant } | undefined {
  const live = liveAt(log, time);
  if (!live.champion) return undefined;
  const variant = variantFor(live.rollout, customerId);
  return { version: variant === 'canary' ? live.rollout!.version : live.champion, variant };
}

/**
 * Where a rollback goes: the champion before the current one, treating earlier rollbacks as undone
 * promotions (v1 → v2 → v3, rollback → v2, rollback → v1).
 */
export function rollbackTarget(log: readonly Deployment[]): ModelVersion | undefined {
  const stack: ModelVersion[] = [];
  for (const entry of log.filter(movesChampion)) {
    if (entry.kind === 'rollback') {
      stack.pop();
      if (stack.at(-1) !== entry.to) stack.push(entry.to);
    } else {
      stack.push(entry.to);
    }
  }
  return stack.at(-2);
}

export async function rollback(
  deps: RegistryDeps,
  input: { name: string; reason: string; actor: string; storeFields?: ReadonlySet<string> },
): Promise<Deployment> {
  const log = await history(deps, input.name);
  const target = rollbackTarget(log);
  if (!target) {
    const moves = log.filter(movesChampion);
    throw new ConflictError(
      moves.length === 0
        ? `${input.name} has no champion yet, so there is nothing to roll back`
        : `${input.name} has no earlier champion to roll back to (champions: ${moves.map((e) => e.to).join(' → ')})`,
    );
  }
  // Checked as any promotion: the version returned to is served with the definition it was trained on,
  // which must still be computable from what the store holds (never forced).
  return promote(deps, {
    name: input.name,
    version: target,
    expected: log.filter(movesChampion).at(-1)!.to,
    storeFields: input.storeFields,
    reason: input.reason,
    actor: input.actor,
    kind: 'rollback',
  });
}

/** A version's artifact, checked byte for byte against the registry, and the features it reads. */
export interface VerifiedModel {
  readonly metadata: ModelMetadata;
  readonly onnx: Uint8Array;
  /** Computes this version's features: the definition it was trained on. */
  readonly featureSet: FeatureSet;
}

/**
 * What refuses a registered version as champion or challenger before any write: a definition nothing
 * can compute (FingerprintMismatchError), or, unless `force`, a required raw field the store lacks
 * (FieldNotInStoreError). Returns the version's feature set.
 */
export async function checkPromotable(
  deps: RegistryDeps,
  input: { name: string; version: ModelVersion; storeFields?: ReadonlySet<string>; force?: boolean },
): Promise<FeatureSet> {
  const featureSet = await servableFeatureSet(deps, input.name, input.version);
  if (!input.force) assertFieldsInStore(`${input.name} ${input.version}`, featureSet, input.storeFields);
  return featureSet;
}

/** The feature set of a registered version, refused (FingerprintMismatch) when nothing can compute it. */
export async function servableFeatureSet(
  deps: RegistryDeps,
  name: string,
  version: string,
): Promise<FeatureSet> {
  return featureSetOfVersion(await readMetadataObject(deps, name, version));
}

export async function loadVerifiedModel(
  deps: RegistryDeps,
  input: { name: string; version: string },
): Promise<VerifiedModel> {
  const summary = await getVersion(deps, input.name, input.version);
  const metadata = await readMetadataObject(deps, input.name, summary.version);
  const object = await deps.s3.send(
    new GetObjectCommand({ Bucket: deps.bucket, Key: modelKeys(input.name, summary.version).model }),
  );
  const onnx = await object.Body!.transformToByteArray();
  const actual = sha256Hex(onnx);
  if (actual !== summary.sha256 || actual !== metadata.artifact.sha256 || onnx.byteLength !== summary.bytes) {
    throw new ArtifactIntegrityError(
      `${input.name} ${summary.version}: model.onnx has sha256 ${actual} (${onnx.byteLength} bytes) but was ` +
        `registered as ${summary.sha256} (${summary.bytes} bytes); refusing to serve a tampered artifact`,
    );
  }
  if (metadata.feature_set.fingerprint !== summary.fingerprint) {
    throw new ArtifactIntegrityError(
      `${input.name} ${summary.version}: metadata.json names feature set ${metadata.feature_set.fingerprint} ` +
        `but the version was registered with ${summary.fingerprint}; refusing to serve it`,
    );
  }
  return { metadata, onnx, featureSet: featureSetOfVersion(metadata) };
}

export async function readBaseline(deps: RegistryDeps, name: string, version: string): Promise<unknown> {
  const object = await deps.s3.send(
    new GetObjectCommand({ Bucket: deps.bucket, Key: modelKeys(name, version).baseline }),
  );
  return JSON.parse(await object.Body!.transformToString());
}
