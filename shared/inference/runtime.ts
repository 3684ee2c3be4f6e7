import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { awsTargetFromEnv, createAwsClients, SERVING_TIMEOUTS } from '#shared/aws/clients.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { logger, metrics } from '#shared/observability.ts';
import type { Observer } from './api.ts';
import type { PredictConfig } from './config.ts';
import { ModelHolder } from './model-holder.ts';
import type { InferenceDeps } from './service.ts';

/**
 * Builds what a predict process serves with (clients, the model holder, metric reporting) from its
 * configuration: shared by the Lambda handler and the ECS container so both behave the same.
 */
export function createInferenceRuntime(config: PredictConfig): { deps: InferenceDeps; observer: Observer } {
  const clients = createAwsClients(awsTargetFromEnv(), SERVING_TIMEOUTS);
  const models = new ModelHolder({
    registry: {
      s3: clients.s3,
      dynamo: clients.dynamo,
      bucket: config.modelsBucket,
      table: config.registryTable,
    },
    name: config.modelName,
    refreshIntervalMs: config.refreshIntervalMs,
    createScorer: (onnx) =>
      loadOnnxScorer(onnx, { featureCount: FEATURE_COUNT, featureNames: FEATURE_SET.names }),
    onEvent: (event) => {
      if (event.type === 'loaded') logger.info('model loaded', { ...event });
      else logger.error(`model ${event.type}`, { ...event });
    },
  });
  const deps: InferenceDeps = {
    models,
    store: { dynamo: clients.dynamo, table: config.onlineTable },
    maxRecordAgeMs: config.maxRecordAgeMs,
  };
  const observer: Observer = {
    prediction({ body, facts }) {
      metrics.addDimension('ModelVersion', body.model.version);
      metrics.addMetric('Predictions', MetricUnit.Count, 1);
      metrics.addMetric('PositivePredictions', MetricUnit.Count, body.prediction);
      metrics.addMetric('Probability', MetricUnit.NoUnit, body.probability);
      metrics.addMetric('MissingFeatures', MetricUnit.Count, facts.imputed);
      metrics.addMetric('UnseenCategories', MetricUnit.Count, facts.unseen);
      if (facts.stale) metrics.addMetric('StaleRecords', MetricUnit.Count, 1);
    },
  };
  return { deps, observer };
}
