import { callDependency } from '#shared/aws/errors.ts';
import { NoModelError, UnavailableError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/index.ts';
import { ModelFormatError, type Scorer } from '#shared/model/scorer.ts';
import type { ModelMetadata } from '#shared/registry/metadata.ts';
import {
  type Aliases,
  getAliases,
  loadVerifiedModel,
  type RegistryDeps,
  type VerifiedModel,
} from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';

/** The model being served: verified artifact, its metadata and a ready scorer. */
export interface LoadedModel {
  readonly name: string;
  readonly version: string;
  readonly threshold: number;
  readonly metadata: ModelMetadata;
  /** Computes this version's features: the definition it was trained on, whatever this code defines. */
  readonly featureSet: FeatureSet;
  readonly scorer: Scorer;
}

/**
 * Turns verified ONNX bytes into a scorer (onnxruntime in-process, or a SageMaker endpoint) taking the
 * version's own features: `featureSet` is the definition it was trained on.
 */
export type ScorerFactory = (
  onnx: Uint8Array,
  metadata: ModelMetadata,
  featureSet: FeatureSet,
) => Promise<Scorer>;

/** What serves a request: the champion and, while a rollout runs, its verified challenger. */
export interface ServingModels {
  readonly champion: LoadedModel;
  /** Set together: a rollout is served only once its challenger is loaded and verified. */
  readonly rollout?: Rollout;
  readonly challenger?: LoadedModel;
}

/** What the holder reads from the model registry. */
export interface ModelRegistryReader {
  /** Champion and rollout in one read. */
  getAliases(name: string): Promise<Aliases>;
  loadVerifiedModel(input: { name: string; version: string }): Promise<VerifiedModel>;
}

/** The registry in S3 and DynamoDB, as the holder reads it. */
export const registryReader = (deps: RegistryDeps): ModelRegistryReader => ({
  getAliases: (name) => getAliases(deps, name),
  loadVerifiedModel: (input) => loadVerifiedModel(deps, input),
});

export interface ModelHolderDeps {
  readonly registry: ModelRegistryReader;
  readonly name: string;
  /** The champion alias is read at most this often (ms). */
  readonly refreshIntervalMs: number;
  readonly createScorer: ScorerFactory;
  /** How long a replaced scorer stays open for requests still using it. */
  readonly releaseDelayMs?: number;
  readonly now?: () => number;
  readonly onEvent?: (event: ModelEvent) => void;
}

export type ModelEvent =
  | {
      readonly type: 'loaded';
      readonly version: string;
      readonly previous: string | null;
      readonly loadMs: number;
    }
  | { readonly type: 'load-failed'; readonly version: string; readonly error: unknown }
  | { readonly type: 'check-failed'; readonly error: unknown }
  | {
      readonly type: 'challenger-loaded';
      readonly version: string;
      readonly rolloutId: string;
      readonly loadMs: number;
    }
  /** The challenger did not verify (or load): the rollout is served by the champion alone. */
  | {
      readonly type: 'challenger-refused';
      readonly version: string;
      readonly rolloutId: string;
      readonly error: unknown;
    };

/**
 * Holds the champion model, and during a rollout its challenger, and follows the aliases: a check at
 * most every `refreshIntervalMs`, a new version loaded (S3 → sha256 → its feature definition → session) before it
 * replaces the old one, and a replaced one released only after in-flight requests had time to finish.
 * A version that fails verification is never served: a champion keeps the previous one serving, a
 * challenger leaves the rollout to the champion alone (and says so: `challenger-refused`).
 */
export class ModelHolder {
  private serving: ServingModels | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private rejected: string | undefined;
  /** The rollout whose challenger was refused: not tried again while it runs. */
  private refusedRollout: string | undefined;

  constructor(private readonly deps: ModelHolderDeps) {}

  /** The champion being served. */
  current(): LoadedModel | undefined {
    return this.serving?.champion;
  }

  /** The champion to serve now, refreshing first when a check is due; NoModel when none is promoted. */
  async require(): Promise<LoadedModel> {
    return (await this.requireServing()).champion;
  }

  /** Champion and challenger to serve now, refreshing first when a check is due. */
  async requireServing(): Promise<ServingModels> {
    await this.refreshIfDue();
    if (!this.serving) {
      throw new NoModelError(`no ${this.deps.name} model is promoted yet: train one and promote it`);
    }
    return this.serving;
  }

  /**
   * Checks the aliases if the interval has passed. Concurrent callers share one check. Without a loaded
   * model a failed check throws (503 Unavailable); with one, it is reported and the model keeps serving.
   */
  async refreshIfDue(): Promise<void> {
    const now = this.now();
    if (this.inFlight) return this.serving ? undefined : this.inFlight;
    if (now - this.lastCheck < this.deps.refreshIntervalMs) return;
    this.lastCheck = now;
    this.inFlight = this.check().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private async check(): Promise<void> {
    let aliases: Aliases;
    try {
      aliases = await callDependency('the model registry', () =>
        this.deps.registry.getAliases(this.deps.name),
      );
    } catch (error) {
      this.lastCheck = Number.NEGATIVE_INFINITY;
      if (!this.serving) throw error;
      this.deps.onEvent?.({ type: 'check-failed', error });
      return;
    }
    const before = this.serving;
    // Champion and challenger load side by side: a cold start with a rollout running waits for one load.
    const challengerLoad = this.challengerFor(aliases.rollout);
    const champion = await this.championFor(aliases.champion).catch(async (error: unknown) => {
      this.releaseUnheld(await challengerLoad);
      throw error;
    });
    const challenger = await challengerLoad;
    if (!champion) {
      this.releaseUnheld(challenger);
      return;
    }
    const next: ServingModels = challenger
      ? { champion, rollout: aliases.rollout!, challenger }
      : { champion };
    if (
      before?.champion === next.champion &&
      before.challenger === next.challenger &&
      before.rollout === next.rollout
    )
      return;
    this.serving = next;
    const kept = new Set([next.champion, next.challenger]);
    for (const model of [before?.champion, before?.challenger]) {
      // A challenger promoted to champion keeps its session: promotion at the end of a rollout loads nothing.
      if (model && !kept.has(model)) {
        setTimeout(() => void model.scorer.release(), this.deps.releaseDelayMs ?? 10_000).unref();
      }
    }
  }

  /** Releases a model loaded by this check that will not be served (its champion failed). */
  private releaseUnheld(model: LoadedModel | undefined): void {
    if (model && !this.held(model.version)) void model.scorer.release();
  }

  /** A model already held under `version`, if any. */
  private held(version: string): LoadedModel | undefined {
    const { champion, challenger } = this.serving ?? {};
    return champion?.version === version
      ? champion
      : challenger?.version === version
        ? challenger
        : undefined;
  }

  /**
   * The champion to serve after this check: the one held, or `version` loaded. Throws only when no
   * model serves yet; otherwise a failed load is reported and the previous champion keeps serving.
   */
  private async championFor(version: string | undefined): Promise<LoadedModel | undefined> {
    const current = this.serving?.champion;
    if (!version || version === current?.version || version === this.rejected) return current;
    const held = this.held(version);
    if (held) {
      this.deps.onEvent?.({ type: 'loaded', version, previous: current?.version ?? null, loadMs: 0 });
      return held;
    }
    const started = this.now();
    try {
      const next = await this.load(version);
      this.deps.onEvent?.({
        type: 'loaded',
        version,
        previous: current?.version ?? null,
        loadMs: this.now() - started,
      });
      return next;
    } catch (error) {
      // Unavailable: try again at the next check. Anything else (tampered, wrong features): refuse this version.
      if (!(error instanceof UnavailableError)) this.rejected = version;
      else this.lastCheck = Number.NEGATIVE_INFINITY;
      this.deps.onEvent?.({ type: 'load-failed', version, error });
      if (!current) throw error;
      return current;
    }
  }

  /** The challenger of `rollout`, loaded and verified; undefined when none runs or it was refused. */
  private async challengerFor(rollout: Rollout | undefined): Promise<LoadedModel | undefined> {
    if (!rollout || rollout.id === this.refusedRollout) return undefined;
    const held = this.held(rollout.version);
    if (held) return held;
    const started = this.now();
    try {
      const challenger = await this.load(rollout.version);
      this.deps.onEvent?.({
        type: 'challenger-loaded',
        version: rollout.version,
        rolloutId: rollout.id,
        loadMs: this.now() - started,
      });
      return challenger;
    } catch (error) {
      if (!(error instanceof UnavailableError)) this.refusedRollout = rollout.id;
      else this.lastCheck = Number.NEGATIVE_INFINITY;
      this.deps.onEvent?.({
        type: 'challenger-refused',
        version: rollout.version,
        rolloutId: rollout.id,
        error,
      });
      return undefined;
    }
  }

  private async load(version: string): Promise<LoadedModel> {
    const verified = await callDependency('the model registry', () =>
      this.deps.registry.loadVerifiedModel({
        name: this.deps.name,
        version,
      }),
    );
    const { featureSet } = verified;
    const scorer = await this.deps.createScorer(verified.onnx, verified.metadata, featureSet);
    if (scorer.featureCount !== featureSet.count) {
      await scorer.release();
      throw new ModelFormatError(
        `${this.deps.name} ${version} scores ${scorer.featureCount} features, but its feature set ` +
          `${featureSet.version} computes ${featureSet.count}; refusing to serve it`,
      );
    }
    return {
      name: this.deps.name,
      version,
      threshold: verified.metadata.threshold,
      metadata: verified.metadata,
      featureSet,
      scorer,
    };
  }

  /** Releases the models (tests, local shutdown). */
  async close(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    const { champion, challenger } = this.serving ?? {};
    this.serving = undefined;
    await Promise.all([...new Set([champion, challenger])].map((model) => model?.scorer.release()));
  }
}
