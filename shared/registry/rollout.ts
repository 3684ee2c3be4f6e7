import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type FieldIssue, ValidationError } from '#shared/errors.ts';
import type { ModelVersion } from './metadata.ts';

/**
 * A rollout: a challenger version served beside the champion until its bake period ends, then promoted
 * or ended. In `shadow` mode both versions score every request and only the champion answers; in
 * `canary` mode a stable share of customers (`percent`) is answered by the challenger. Pure functions
 * and types here; the registry (registry.ts) moves the alias that holds a rollout.
 */
export type RolloutMode = 'shadow' | 'canary';

export const ROLLOUT_MODES: readonly RolloutMode[] = ['shadow', 'canary'];

/** SageMaker's deployment guardrails allow a canary of at most half the traffic; so does Keel. */
export const CANARY_PERCENT = { min: 1, max: 50 } as const;

/** The bake period of a rollout when none is given: `keel models shadow|canary` and `retrain.rollout`. */
export const DEFAULT_BAKE: Readonly<Record<RolloutMode, string>> = { shadow: '1h', canary: '30m' };

/** Bake periods Keel accepts: up to SageMaker's longest shadow test (30 days); seconds for tests. */
export const BAKE_SECONDS = { min: 1, max: 30 * 86_400 } as const;

/** The challenger alias: what is being rolled out, against which champion, how and until when. */
export interface Rollout {
  /** Names this rollout in the log, the metrics and the variant hash (`r-` and 12 hex digits). */
  readonly id: string;
  readonly version: ModelVersion;
  /** The champion the challenger is measured against; the rollout ends if the champion moves. */
  readonly champion: ModelVersion;
  readonly mode: RolloutMode;
  /** Canary: the share of customers the challenger answers, 1–50. Shadow: null (it answers none). */
  readonly percent: number | null;
  readonly bake_seconds: number;
  /** ISO 8601. */
  readonly started_at: string;
  /** ISO 8601: started_at + bake_seconds, when the decision is due. */
  readonly bake_ends_at: string;
  readonly reason: string;
  readonly actor: string;
}

/** Which model answered a request: the champion, or the canary challenger. */
export type Variant = 'champion' | 'canary';

/** What starting a rollout asks for, checked by {@link checkRolloutRequest}. */
export interface RolloutRequest {
  readonly mode: RolloutMode;
  readonly percent?: number;
  readonly bakeSeconds: number;
}

/** Refuses a percent or bake period outside what a rollout allows, naming the field. */
export function checkRolloutRequest(request: RolloutRequest): void {
  const issues: FieldIssue[] = [];
  if (!ROLLOUT_MODES.includes(request.mode)) {
    issues.push({ path: 'mode', message: `must be one of ${ROLLOUT_MODES.join(', ')}` });
  }
  if (request.mode === 'canary') {
    const { percent } = request;
    if (
      percent === undefined ||
      !Number.isInteger(percent) ||
      percent < CANARY_PERCENT.min ||
      percent > CANARY_PERCENT.max
    ) {
      issues.push({
        path: 'percent',
        message: `a canary serves ${CANARY_PERCENT.min}–${CANARY_PERCENT.max} percent of customers (a whole number), got ${percent ?? 'none'}`,
      });
    }
  } else if (request.percent !== undefined) {
    issues.push({ path: 'percent', message: 'a shadow scores every request and answers none: no percent' });
  }
  if (
    !Number.isInteger(request.bakeSeconds) ||
    request.bakeSeconds < BAKE_SECONDS.min ||
    request.bakeSeconds > BAKE_SECONDS.max
  ) {
    issues.push({
      path: 'bake',
      message: `the bake period must be from ${BAKE_SECONDS.min} s to 30 days, got ${request.bakeSeconds} s`,
    });
  }
  if (issues.length > 0) {
    throw new ValidationError(
      `the rollout request is invalid: ${issues.map((i) => i.message).join('; ')}`,
      issues,
    );
  }
}

const DURATION = /^(\d+[smhd])+$/;
const PART = /(\d+)([smhd])/g;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `90s`, `30m`, `1h`, `7d`, `1h30m` → seconds; anything else is refused naming `field`. */
export function parseDuration(text: string, field: string): number {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) {
    throw new ValidationError(`${field} "${text}" is not a duration: write it as 90s, 30m, 1h, 7d or 1h30m`, [
      { path: field, message: 'whole numbers each followed by s, m, h or d' },
    ]);
  }
  let seconds = 0;
  for (const [, count, unit] of trimmed.matchAll(PART)) {
    seconds += Number(count) * UNIT_SECONDS[unit as keyof typeof UNIT_SECONDS];
  }
  return seconds;
}

/** `5400` → `1h30m`: the shortest exact spelling {@link parseDuration} reads back. */
export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join('');
}

/**
 * The customer's position in [0, 100) for a rollout: the first 32 bits of sha256(rollout id, customer
 * id). Stable for the whole rollout (one customer sees one variant), independent between rollouts
 * (a new rollout draws a new canary group), and the same in Lambda, ECS and locally.
 */
export function rolloutBucket(rolloutId: string, customerId: string): number {
  const digest = createHash('sha256').update(`${rolloutId}\u0000${customerId}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/** Which variant answers this customer during this rollout (none running: the champion). */
export function variantFor(
  rollout: Pick<Rollout, 'id' | 'mode' | 'percent'> | undefined,
  customerId: string,
): Variant {
  if (rollout?.mode !== 'canary' || rollout.percent === null) return 'champion';
  return rolloutBucket(rollout.id, customerId) < rollout.percent ? 'canary' : 'champion';
}

/**
 * What a retrain does with a candidate it would promote (stage config `retrain.rollout`, carried in the
 * retrain's execution input): promote it, or start a rollout of it.
 */
export const retrainRolloutSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('promote') }),
  z.strictObject({
    mode: z.literal('shadow'),
    bakeSeconds: z.int().min(BAKE_SECONDS.min).max(BAKE_SECONDS.max),
  }),
  z.strictObject({
    mode: z.literal('canary'),
    percent: z.int().min(CANARY_PERCENT.min).max(CANARY_PERCENT.max),
    bakeSeconds: z.int().min(BAKE_SECONDS.min).max(BAKE_SECONDS.max),
  }),
]);
export type RetrainRollout = z.infer<typeof retrainRolloutSchema>;

/** What the rollout state machine is started with: the rollout, and when its bake ends. */
export interface RolloutDecisionStart {
  readonly name: string;
  readonly rolloutId: string;
  /** ISO 8601, rounded up to the second: Step Functions drops a timestamp's milliseconds, so its Wait never ends before the bake. */
  readonly bakeEndsAt: string;
}

/** The decision's execution input for `rollout` of model `name` (the CLI and a retrain start it alike). */
export function rolloutDecisionStart(
  name: string,
  rollout: Pick<Rollout, 'id' | 'bake_ends_at'>,
): RolloutDecisionStart {
  const bakeEndsAt = new Date(Math.ceil(Date.parse(rollout.bake_ends_at) / 1000) * 1000).toISOString();
  return { name, rolloutId: rollout.id, bakeEndsAt };
}

/** A rollout as stored: the alias item's `challenger` attribute, checked when read. */
export const rolloutSchema = z.object({
  id: z.string().regex(/^r-[0-9a-f]{12}$/),
  version: z.string().regex(/^v[1-9]\d*$/),
  champion: z.string().regex(/^v[1-9]\d*$/),
  mode: z.enum(['shadow', 'canary']),
  percent: z.number().nullable(),
  bake_seconds: z.number().int().positive(),
  started_at: z.string(),
  bake_ends_at: z.string(),
  reason: z.string(),
  actor: z.string(),
}) satisfies z.ZodType<Omit<Rollout, 'version' | 'champion'> & { version: string; champion: string }>;

export const parseRollout = (value: unknown): Rollout => rolloutSchema.parse(value) as Rollout;
