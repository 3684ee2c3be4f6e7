import { callDependency } from '#shared/aws/errors.ts';
import { NoModelError, UnavailableError } from '#shared/errors.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import type { Scorer } from '#shared/model/scorer.ts';
import type { ModelMetadata } from '#shared/registry/metadata.ts';
import {
  getChampion,
  loadVerifiedModel,
  type RegistryDeps,
  type VerifiedModel,
} from '#shared/registry/registry.ts';

/** The model being served: verified artifact, its metadata and a ready scorer. */
export interface LoadedModel {
  readonly name: string;
  readonly version: string;
  readonly threshold: number;
  readonly metadata: ModelMetadata;
  readonly scorer: Scorer;
}

/** Turns verified ONNX bytes into a scorer: onnxruntime in-process, or a SageMaker endpoint. */
export type ScorerFactory = (onnx: Uint8Array, metadata: ModelMetadata) => Promise<Scorer>;

/** What the holder reads from the model registry. */
export interface ModelRegistryReader {
  getChampion(name: string): Promise<string | undefined>;
  loadVerifiedModel(input: {
    name: string;
    version: string;
    featureFingerprint: string;
  }): Promise<VerifiedModel>;
}

/** The registry in S3 and DynamoDB, as the holder reads it. */
export const registryReader = (deps: RegistryDeps): ModelRegistryReader => ({
  getChampion: (name) => getChampion(deps, name),
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
  | { readonly type: 'check-failed'; readonly error: unknown };

/**
 * Holds the champion model and follows the alias: a check at most every `refreshIntervalMs`, a new
 * version loaded (S3 → sha256 → fingerprint → session) before it replaces the old one, and the old
 * one released only after in-flight requests had time to finish. A version that fails verification
 * is never served; the previous one keeps serving.
 */
export class ModelHolder {
  private model: LoadedModel | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private rejected: string | undefined;

  constructor(private readonly deps: ModelHolderDeps) {}

  current(): LoadedModel | undefined {
    return this.model;
  }

  /** The model to serve now, refreshing first when a check is due; NoModel when none is promoted. */
  async require(): Promise<LoadedModel> {
    await this.refreshIfDue();
    if (!this.model) {
      throw new NoModelError(`no ${this.deps.name} model is promoted yet: train one and promote it`);
    }
    return this.model;
  }

  /**
   * Checks the alias if the interval has passed. Concurrent callers share one check. Without a loaded
   * model a failed check throws (503 Unavailable); with one, it is reported and the model keeps serving.
   */
  async refreshIfDue(): Promise<void> {
    const now = (this.deps.now ?? Date.now)();
    if (this.inFlight) return this.model ? undefined : this.inFlight;
    if (now - this.lastCheck < this.deps.refreshIntervalMs) return;
    this.lastCheck = now;
    this.inFlight = this.check().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async check(): Promise<void> {
    let champion: string | undefined;
    try {
      champion = await callDependency('the model registry', () =>
        this.deps.registry.getChampion(this.deps.name),
      );
    } catch (error) {
      this.lastCheck = Number.NEGATIVE_INFINITY;
      if (!this.model) throw error;
      this.deps.onEvent?.({ type: 'check-failed', error });
      return;
    }
    if (!champion || champion === this.model?.version || champion === this.rejected) return;
    const started = (this.deps.now ?? Date.now)();
    let next: LoadedModel;
    try {
      const verified = await callDependency('the model registry', () =>
        this.deps.registry.loadVerifiedModel({
          name: this.deps.name,
          version: champion,
          featureFingerprint: FEATURE_SET.fingerprint,
        }),
      );
      next = {
        name: this.deps.name,
        version: champion,
        threshold: verified.metadata.threshold,
        metadata: verified.metadata,
        scorer: await this.deps.createScorer(verified.onnx, verified.metadata),
      };
    } catch (error) {
      // Unavailable: try again at the next check. Anything else (tampered, wrong features): refuse this version.
      if (!(error instanceof UnavailableError)) this.rejected = champion;
      else this.lastCheck = Number.NEGATIVE_INFINITY;
      this.deps.onEvent?.({ type: 'load-failed', version: champion, error });
      if (!this.model) throw error;
      return;
    }
    const previous = this.model;
    this.model = next;
    this.deps.onEvent?.({
      type: 'loaded',
      version: next.version,
      previous: previous?.version ?? null,
      loadMs: (this.deps.now ?? Date.now)() - started,
    });
    if (previous) {
      setTimeout(() => void previous.scorer.release(), this.deps.releaseDelayMs ?? 10_000).unref();
    }
  }

  /** Releases the model (tests, local shutdown). */
  async close(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    await this.model?.scorer.release();
    this.model = undefined;
  }
}
