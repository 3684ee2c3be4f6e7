import { writeRawData } from '#shared/data/raw-data.ts';
import { runEtl } from '#shared/etl/etl.ts';
import { getChampion, listVersions } from '#shared/registry/registry.ts';
import { retrain } from '#shared/training/retrain.ts';
import type { PlatformContext } from './context.ts';

export interface BootstrapOptions {
  readonly rows: number;
  readonly seed: number;
  readonly log: (message: string) => void;
}

/**
 * First start on an empty state: generate customers → ETL → train → register v1 → promote, so the
 * platform serves a model a minute after `npm start`. Does nothing once any version exists.
 */
export async function bootstrapIfEmpty(ctx: PlatformContext, options: BootstrapOptions): Promise<boolean> {
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
    `  1/4 generated s3://${raw.bucket}/${raw.key} (churn rate ${(raw.churnRate * 100).toFixed(1)}%) [${seconds()}]`,
  );
  const etl = await runEtl(ctx.etl, { inputKey: raw.key });
  options.log(`  2/4 etl: ${etl.valid} customers to offline features and the online store [${seconds()}]`);
  const result = await retrain(
    { registry: ctx.registry, s3: ctx.clients.s3, featuresBucket: ctx.names.features },
    {
      name: ctx.modelName,
      datasetPrefix: etl.featurePrefix,
      promotion: 'always',
      actor: 'keel-up-bootstrap',
    },
  );
  const m = result.metadata;
  options.log(
    `  3/4 trained and registered ${m.version}: held-out AUC ${m.metrics.auc.toFixed(4)} [${seconds()}]`,
  );
  options.log(`  4/4 promoted ${result.promoted?.to} to champion [${seconds()}]`);
  return true;
}
