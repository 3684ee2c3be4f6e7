/**
 * What a stage costs a month with no traffic, from its synthesized templates (lib/idle-cost.ts); no AWS
 * credentials needed.
 *   npx tsx scripts/idle-cost.ts [--stage dev] [--config FILE] [--json]
 */
import { parseArgs } from 'node:util';
import {
  idleCost,
  idleCostTable,
  leftAfterDestroy,
  leftAfterDestroyTable,
  scheduledRunsTable,
  stackResourcesOf,
  usd,
} from '#lib/idle-cost.ts';
import { synthesizeStage } from '#lib/offline-synth.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { KeelConfigError, loadKeelConfig } from '#shared/config/keel-config.ts';

const { values } = parseArgs({
  options: {
    stage: { type: 'string', default: 'dev' },
    config: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const stage = values.stage;
let config: ReturnType<typeof loadKeelConfig>;
try {
  config = loadKeelConfig({ root: REPO_ROOT, stage, file: values.config });
} catch (error) {
  if (!(error instanceof KeelConfigError)) throw error;
  console.error(`${error.name}: ${error.message}`);
  process.exit(1);
}
const stacks = stackResourcesOf(synthesizeStage({ stage, config }));
const cost = idleCost(stacks);
const left = idleCost(leftAfterDestroy(stacks));
if (values.json) {
  console.log(JSON.stringify({ ...cost, afterDestroy: left }, null, 2));
} else {
  console.log(`Keel-${stage}-*: idle cost a month (us-east-1 list prices, no free tier)\n`);
  console.log(idleCostTable(cost));
  console.log(`\nScheduled runs (not included above):\n`);
  console.log(scheduledRunsTable(cost));
  console.log(`\nLeft after cdk destroy (${usd(left.total)} a month idle, besides what they store):\n`);
  console.log(leftAfterDestroyTable(stacks));
}
