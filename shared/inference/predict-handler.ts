import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import {
  type AwsTarget,
  awsTargetFromEnv,
  createAwsClients,
  createDynamoClient,
  SERVING_TIMEOUTS,
} from '#shared/aws/clients.ts';
import { httpErrors, requestIdOf } from '#shared/http/middleware.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { createSageMakerScorer } from '#shared/model/sagemaker-scorer.ts';
import { coalescingScorer } from '#shared/model/scorer.ts';
import { PREDICT_METRICS, ROLLOUT_METRICS } from '#shared/monitoring/metrics.ts';
import {
  logger,
  metrics,
  metricsPublishedByTimer,
  requestMetrics,
  variantMetrics,
  xrayTracingEnabled,
} from '#shared/observability.ts';
import { coalescedReader } from '#shared/online-store/store.ts';
import { type Observer, routeApiRequest } from './api.ts';
import { createPredictionCapture, type PredictionCapture } from './capture.ts';
import { ModelHolder, registryReader, type ScorerFactory } from './model-holder.ts';
import type { PredictConfig } from './predict-environment.ts';
import type { InferenceDeps, Prediction } from './service.ts';

/** The X-Ray SDK only where it traces (see ./tracing.ts). */
const tracing = xrayTracingEnabled() ? await import('./tracing.ts') : undefined;

/**
 * onnxruntime in-process, or the SageMaker endpoint the model is deployed on (for models too large for
 * Lambda). Either way the registry artifact was verified first, so the served version is accountable.
 */
function scorerFactory(config: PredictConfig, target: AwsTarget): ScorerFactory {
  if (config.backend === 'onnx') {
    return (onnx, _metadata, featureSet) =>
      loadOnnxScorer(onnx, { featureCount: featureSet.count, featureNames: featureSet.names });
  }
  const client = new SageMakerRuntimeClient({
    region: target.region,
    maxAttempts: SERVING_TIMEOUTS.maxAttempts,
  });
  const endpointName = config.sagemakerEndpoint!;
  return async (_onnx, _metadata, featureSet) =>
    createSageMakerScorer({ client, endpointName, featureCount: featureSet.count });
}

/** A server's requests of one turn scored in one model call (coalescingScorer). */
const coalesced =
  (factory: ScorerFactory): ScorerFactory =>
  async (...args) =>
    coalescingScorer(await factory(...args));

/**
 * Builds what a predict process serves with (clients, the model holder, metric reporting) from its
 * configuration: shared by the Lambda handler and the ECS container so both behave the same.
 */
export function createInferenceRuntime(
  config: PredictConfig,
  target: AwsTarget = awsTargetFromEnv(),
): {
  deps: InferenceDeps;
  observer: Observer;
  capture: PredictionCapture | undefined;
  /** Ends the model's scorer and the SDK clients (a process that serves once, e.g. a benchmark). */
  close(): Promise<void>;
} {
  const clients = createAwsClients(target, SERVING_TIMEOUTS);
  // Every request's store read is the same command: a client of its own builds its middleware once,
  // over the document client's connections.
  const storeReads = createDynamoClient(target, SERVING_TIMEOUTS, {
    cacheMiddleware: true,
    shareConnectionsWith: clients.dynamo,
  });
  const models = new ModelHolder({
    registry: registryReader({
      s3: clients.s3,
      dynamo: clients.dynamo,
      bucket: config.modelsBucket,
      table: config.registryTable,
    }),
    name: config.modelName,
    refreshIntervalMs: config.refreshIntervalMs,
    createScorer: coalesced(scorerFactory(config, target)),
    onEvent: (event) => {
      if (event.type === 'loaded' || event.type === 'challenger-loaded') {
        logger.info(`model ${event.type}`, { ...event });
        return;
      }
      logger.error(`model ${event.type}`, { ...event });
      // The guardrails end a rollout whose challenger cannot be served (alarm-definitions.ts).
      if (event.type === 'challenger-refused') {
        variantMetrics.challenger.addMetric(ROLLOUT_METRICS.refused, MetricUnit.Count, 1);
      }
    },
  });
  const deps: InferenceDeps = {
    models,
    readRecords: coalescedReader({ dynamo: storeReads, table: config.onlineTable }),
    maxRecordAgeMs: config.maxRecordAgeMs,
  };
  // Each sampled prediction is one line on stdout, written before the response: see capture.ts.
  const capture = config.capture
    ? createPredictionCapture({ sampleRate: config.capture.sampleRate })
    : undefined;
  /** The version the metrics waiting to go out were answered by. */
  let pendingVersion: string | undefined;
  const observer: Observer = {
    prediction({ body, facts, vector, storedEventTime, rollout }) {
      capture?.record({
        ...body,
        vector,
        ...(storedEventTime ? { storedEventTime } : {}),
        ...(rollout ? { rollout: captureRollout(rollout, body) } : {}),
      });
      if (rollout) addVariantMetrics(rollout);
      // Metadata, not a dimension: the alarms watch the {service} dimension set. One EMF line names one
      // version, so under a timer the answers of another version go out first.
      const version = body.model.version;
      if (version !== pendingVersion && metricsPublishedByTimer() && metrics.hasStoredMetrics()) {
        metrics.publishStoredMetrics();
      }
      pendingVersion = version;
      metrics.addMetadata('ModelVersion', version);
      metrics.addMetric('Predictions', MetricUnit.Count, 1);
      metrics.addMetric('PositivePredictions', MetricUnit.Count, body.prediction);
      metrics.addMetric('Probability', MetricUnit.NoUnit, body.probability);
      metrics.addMetric('MissingFeatures', MetricUnit.Count, facts.imputed);
      metrics.addMetric('UnseenCategories', MetricUnit.Count, facts.unseen);
      if (facts.stale) metrics.addMetric('StaleRecords', MetricUnit.Count, 1);
    },
  };
  return {
    deps,
    observer,
    capture,
    async close() {
      await models.close();
      clients.s3.destroy();
      clients.dynamo.destroy();
      storeReads.destroy();
    },
  };
}

type RolloutScores = NonNullable<Prediction['rollout']>;

/**
 * What capture keeps of a rollout: its id, who answered, and a shadow's score of the same request with
 * the features it scored (its own definition's).
 */
function captureRollout(rollout: RolloutScores, body: Prediction['body']) {
  const shadow = rollout.mode === 'shadow' ? rollout.scores.find((s) => s.role === 'challenger') : undefined;
  const { version, probability, prediction, vector } = shadow ?? {};
  return {
    id: rollout.id,
    variant: body.model.variant,
    ...(version && probability !== undefined && prediction !== undefined && vector
      ? { shadow: { version, probability, prediction, vector } }
      : {}),
  };
}

/** Each variant's request, failure, latency and score, for the guardrail alarms. */
function addVariantMetrics(rollout: RolloutScores): void {
  const answers: Partial<Record<string, number>> = {};
  for (const score of rollout.scores) {
    const variant = variantMetrics[score.role];
    variant.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    if (score.probability === undefined || score.prediction === undefined) {
      variant.addMetric(ROLLOUT_METRICS.serverErrors, MetricUnit.Count, 1);
      continue;
    }
    variant.addMetric(ROLLOUT_METRICS.latency, MetricUnit.Milliseconds, score.ms);
    variant.addMetric(ROLLOUT_METRICS.positive, MetricUnit.Count, score.prediction);
    variant.addMetric(ROLLOUT_METRICS.probability, MetricUnit.NoUnit, score.probability);
    answers[score.role] = score.prediction;
  }
  if (rollout.mode === 'shadow' && answers.champion !== undefined && answers.challenger !== undefined) {
    variantMetrics.challenger.addMetric(
      ROLLOUT_METRICS.agreement,
      MetricUnit.Count,
      answers.champion === answers.challenger ? 1 : 0,
    );
  }
}

/** The predict handler: middy around the router, with Powertools and the one error mapping. */
export function createApiHandler(deps: InferenceDeps, observer: Observer) {
  async function api(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
    const started = performance.now();
    try {
      return await routeApiRequest(event, deps, requestIdOf(event, context), observer);
    } finally {
      metrics.addMetric(PREDICT_METRICS.latency, MetricUnit.Milliseconds, performance.now() - started);
    }
  }
  return middy(api)
    .use(tracing ? [tracing.tracingMiddleware()] : [])
    .use(injectLambdaContext(logger))
    .use(requestMetrics())
    .use(httpErrors({ logger, metrics }));
}
