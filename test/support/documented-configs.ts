import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { synthesizeStage } from '#lib/offline-synth.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';

const CONFIG_DIR = join(REPO_ROOT, 'config');

/**
 * The configurations docs/configuration.md documents, by name: the example files, the defaults, and
 * each documented switch or variant on top of the defaults.
 */
export const DOCUMENTED_CONFIGS: Readonly<Record<string, unknown>> = {
  ...Object.fromEntries(
    readdirSync(CONFIG_DIR)
      .filter((file) => file.endsWith('.json'))
      .map((file) => [file, JSON.parse(readFileSync(join(CONFIG_DIR, file), 'utf8'))]),
  ),
  defaults: {},
  'inference.compute ecs': { inference: { compute: 'ecs' } },
  'inference.model sagemaker': { inference: { model: 'sagemaker', sagemakerEndpoint: 'churn-endpoint' } },
  'inference.compute ecs, model sagemaker': {
    inference: { compute: 'ecs', model: 'sagemaker', sagemakerEndpoint: 'churn-endpoint' },
  },
  'inference.provisionedConcurrency': { inference: { provisionedConcurrency: 1 } },
  'retrain.onDrift': { retrain: { onDrift: true } },
  'retrain.engine sagemaker': { retrain: { engine: 'sagemaker' } },
  'retrain.requireApproval': {
    retrain: { requireApproval: true, approval: { emails: ['ml-leads@example.com'] } },
  },
  'capture off': { capture: { apiSampleRate: 0, batchSampleRate: 0 } },
  'schedules off': {
    schedules: { batchScoring: { enabled: false }, drift: { enabled: false }, retrain: { enabled: false } },
  },
  'onCall endpoints': {
    onCall: { email: 'oncall@example.com', webhookUrl: 'https://pager.example.com/hook' },
  },
  'data destroy': { data: { removalPolicy: 'destroy', deletionProtection: false } },
  'retention set': { retention: { captureDays: 30, predictionDays: 30, backupDays: 7 } },
  'api.crossAccountCallers': { api: { crossAccountCallers: ['210987654321'] } },
};

/** The app's stacks for one documented configuration, synthesized without bundling (templates only). */
export function synthesizeConfig(name: string, input: unknown): CloudAssembly {
  return synthesizeStage({ stage: 'test', config: parseKeelConfig(input, name) });
}
