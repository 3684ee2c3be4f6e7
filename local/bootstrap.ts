import { writeRawData } from '#shared/data/raw-data.ts';
import type { EtlReport } from '#shared/etl/etl.ts';
import { getChampion, listVersions } from '#shared/registry/registry.ts';
import type { PipelineRunner } from './pipelines.ts';
import type { PlatformContext } from './platform-context.ts';

export interface BootstrapOptions {
  readonly rows: number;
  readonly seed: number;
  readonly log: (message: string) => void;
}

/**
 * First start on an empty state: generate customers → ETL state machine → retrain state machine
 * (register v1 → promote), so the platform serves a model a minute after `npm start`. Does nothing
 * once any version exists.
 */
export async function bootstrapIfEmpty(
  ctx: PlatformContext,
  runner: PipelineRunner,
  options: BootstrapOptions,
): Promise<boolean> {
  const [versions, champion] = await Promise.all([
    listVersions(ctx.registry, ctx.modelName),
    getChampion(ctx.registry, ctx.modelName),
  ]);
  if (versions.length > 0 || champion) return false;

  const t0 = performance.now();
  const seconds = () => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
  options.log(
    `bootstrap: empty registry, building ${ctx.modelName} v1 from ${options.rows} generated customers`,
  );
  const raw = await writeRawData(ctx.clients.s3, ctx.names.raw, {
    rows: options.rows,
    seed: options.seed,
    asOf: new Date(),
  });
  options.log(
    `  1/3 generated s3://${raw.bucket}/${raw.key} (churn rate ${(raw.churnRate * 100).toFixed(1)}%) [${seconds()}]`,
  );
  const etl = await runner.run<EtlReport>('etl', { inputKey: raw.key });
  if (etl.status !== 'SUCCEEDED')
    throw new Error(`bootstrap ETL failed: ${etl.error?.name}: ${etl.error?.message}`);
  options.log(
    `  2/3 etl state machine: ${etl.output!.valid} customers to offline features and the online store [${seconds()}]`,
  );
  const retrain = await runner.run<{ candidate: { version: string; auc: number } }>('retrain', {
    promotion: 'always',
  });
  if (retrain.status !== 'SUCCEEDED') {
    throw new Error(`bootstrap retrain failed: ${retrain.error?.name}: ${retrain.error?.message}`);
  }
  const { version, auc } = retrain.output!.candidate;
  options.log(
    `  3/3 retrain state machine: registered and promoted ${version}, held-out AUC ${auc.toFixed(4)} [${seconds()}]`,
  );
  return true;
}
