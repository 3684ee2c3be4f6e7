import { z } from 'zod';
import { awsTargetFromEnv, createSnsClient } from '#shared/aws/clients.ts';
import { type DriftJobDeps, runDrift } from '#shared/drift/job.ts';
import { publishNotice } from '#shared/drift/notice.ts';
import { KEEL_ENV, optionalEnv } from '#shared/env.ts';
import { monitoringOptionsFromEnv } from '#shared/monitoring/alarm-options.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';

const ctx = pipelineContext();
const onCallTopic = optionalEnv(KEEL_ENV.onCallTopicArn, '');
// Created once per environment, like the other clients, and only where there is a topic to page.
const sns = onCallTopic ? createSnsClient(awsTargetFromEnv()) : undefined;
const deps: DriftJobDeps = {
  ...(sns && onCallTopic ? { notify: (notice) => publishNotice(sns, onCallTopic, notice) } : {}),
  s3: ctx.clients.s3,
  registry: ctx.registry,
  outputsBucket: ctx.names.outputs,
  modelName: ctx.modelName,
  monitoring: monitoringOptionsFromEnv(),
};

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time');

/**
 * The hourly drift job (EventBridge → this Lambda; locally the scheduler calls it directly): the
 * champion's captured predictions of [from, to) (default: the last hour) against its baseline; drift
 * metrics as EMF on stdout, the report in `drift-reports/`. Returns the summary without the full report.
 */
export const handler = step(z.object({ from: isoTime.optional(), to: isoTime.optional() }), async (input) => {
  const { report: _report, ...summary } = await runDrift(deps, input);
  return summary;
});
