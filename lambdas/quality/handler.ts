import { z } from 'zod';
import { awsTargetFromEnv, createSnsClient } from '#shared/aws/clients.ts';
import { publishNotice } from '#shared/drift/notice.ts';
import { KEEL_ENV, optionalEnv } from '#shared/env.ts';
import { monitoringOptionsFromEnv } from '#shared/monitoring/alarm-options.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';
import { type QualityJobDeps, qualityDataOf, runQuality, summarizeQualityRun } from '#shared/quality/job.ts';

const ctx = pipelineContext();
const onCallTopic = optionalEnv(KEEL_ENV.onCallTopicArn, '');
// Created once per environment, like the other clients, and only where there is a topic to page.
const sns = onCallTopic ? createSnsClient(awsTargetFromEnv()) : undefined;
const deps: QualityJobDeps = {
  ...(sns && onCallTopic ? { notify: (notice) => publishNotice(sns, onCallTopic, notice) } : {}),
  ...qualityDataOf(ctx),
  monitoring: monitoringOptionsFromEnv(),
};

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time');

/**
 * The daily quality job (EventBridge → this Lambda; locally the scheduler calls it directly): the
 * captured answers of the window joined with their outcomes, per version; metrics as EMF on stdout, the
 * report in `quality-reports/`. Returns the report's key and a summary.
 */
export const handler = step(z.object({ from: isoTime.optional(), to: isoTime.optional() }), async (input) =>
  summarizeQualityRun(await runQuality(deps, input)),
);
