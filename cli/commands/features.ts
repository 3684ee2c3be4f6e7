import { open, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { ZodError } from 'zod';
import { type Output, UserError } from '#cli/output.ts';
import type { PlatformContext } from '#local/platform-context.ts';
import type { FeatureChangeReport, VersionReport } from '#shared/features/diff.ts';
import { FEATURE_FIELD_NAMES, FEATURE_SET, type FeatureSetDefinition } from '#shared/features/index.ts';

export function registerFeatures(program: Command, output: Output): void {
  const features = program
    .command('features')
    .description(
      "the feature definition: what a change of it does before it lands, and the dataset's vectors",
    );

  features
    .command('diff')
    .description(
      "compare this code's feature definition with the champion's: features, raw fields, fingerprint, which versions stay servable",
    )
    .option('--against <version>', "compare with this registered version's definition instead, e.g. v3")
    .addHelpText(
      'after',
      `
Lists the features added, removed, changed (same name, another expression) and moved, the raw fields
read or no longer read with their missing-value policy, category changes and both fingerprints; then
every registered version and whether this code can serve it (its definition readable, every raw
field it requires in this code's schema or in the online store). With no champion it compares with
nothing: every feature is added. Reads the registry and the online store's field list only; exits 0
whatever differs.

Examples:
  $ keel features diff
  $ keel --json features diff --against v3
  $ keel --stage prod features diff`,
    )
    .action(async (options: { against?: string }) =>
      output.withPlatform(async (ctx) => {
        const [{ describeFeatureChange }, report] = await Promise.all([
          import('#shared/features/diff.ts'),
          featureChangeReport(ctx, options.against),
        ]);
        output.result(report, () => describeFeatureChange(report));
      }),
    );

  features
    .command('export')
    .description(
      "write the offline dataset's feature vectors as CSV, computed by this code's or a registered version's definition",
    )
    .requiredOption('--out <file>', 'the CSV file to write (replaced once complete)')
    .option(
      '--dataset <prefix>',
      'the offline dataset to read, e.g. features/run_date=2026-12-06/x/ (default: newest)',
    )
    .option(
      '--definition <which>',
      "whose feature definition: current (this code's, what `keel train` trains on) or a version, e.g. v3",
      'current',
    )
    .addHelpText(
      'after',
      `
Writes customer_id,event_time, the definition's features in its order and churned (when the dataset
is labeled), one row per customer of the newest complete dataset \`keel etl run\` wrote (or --dataset),
computed from its raw records by the definition's interpreter, as Keel trains and serves. Values parse
back to the same float32. Reads the dataset part by part; only the features bucket (and the registry
for --definition vN) is read.

Examples:
  $ keel features export --out features.csv
  $ keel features export --definition v3 --out v3-features.csv
  $ keel --stage prod features export --dataset features/run_date=2026-12-06/customers/ --out prod.csv`,
    )
    .action(async (options: { out: string; dataset?: string; definition: string }) =>
      output.withPlatform(async (ctx) => {
        const report = await exportFeatures(ctx, options);
        output.result(report, () =>
          [
            `wrote ${report.rows} rows to ${report.out}`,
            `  dataset     ${report.dataset}`,
            `  definition  ${report.featureSet.version} (${report.featureSet.fingerprint}), ${report.definition === 'current' ? "this code's" : `${report.definition}'s`}`,
            `  columns     customer_id, event_time, ${report.featureSet.count} features${report.labeled ? ', churned' : ''}`,
          ].join('\n'),
        );
      }),
    );
}

interface FeatureExportReport {
  readonly out: string;
  readonly dataset: string;
  readonly definition: string;
  readonly featureSet: { readonly version: string; readonly fingerprint: string; readonly count: number };
  readonly rows: number;
  readonly labeled: boolean;
}

/**
 * Streams a dataset's rows through the chosen feature set into a file beside `out`, renamed to it once
 * complete, so a failed export leaves no file that looks whole.
 */
async function exportFeatures(
  ctx: PlatformContext,
  options: { out: string; dataset?: string; definition: string },
): Promise<FeatureExportReport> {
  const [dataset, { writeFeatureCsv }] = await Promise.all([
    import('#shared/offline/features-dataset.ts'),
    import('#shared/offline/feature-export.ts'),
  ]);
  const featureSet = await featureSetNamed(ctx, options.definition);
  const bucket = ctx.names.features;
  let prefix = options.dataset ?? (await dataset.newestFeatureDataset(ctx.clients.s3, bucket));
  if (prefix === undefined) {
    throw new UserError(
      `no complete offline dataset in s3://${bucket}/${dataset.FEATURES_PREFIX} yet: run \`keel etl run\` first`,
    );
  }
  if (!prefix.endsWith('/')) prefix += '/';
  const parts = await dataset.datasetParts(ctx.clients.s3, bucket, prefix);

  const partial = `${options.out}.partial`;
  const file = await open(partial, 'w').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`cannot write --out ${options.out}: ${error.message}`);
  });
  let summary: Awaited<ReturnType<typeof writeFeatureCsv>>;
  try {
    summary = await writeFeatureCsv(
      dataset.featureRows(ctx.clients.s3, parts, featureSet),
      featureSet,
      (text) => file.write(text).then(() => undefined),
    );
  } catch (error) {
    await file.close();
    await rm(partial, { force: true });
    throw error;
  }
  await file.close();
  await rename(partial, options.out);
  return {
    out: options.out,
    dataset: `s3://${bucket}/${prefix}`,
    definition: options.definition,
    featureSet: { version: featureSet.version, fingerprint: featureSet.fingerprint, count: featureSet.count },
    ...summary,
  };
}

/** `current` (this code's definition) or a registered version's stored one. */
async function featureSetNamed(ctx: PlatformContext, which: string) {
  if (which === 'current') return FEATURE_SET;
  const [{ readMetadata }, { featureSetOfVersion }] = await Promise.all([
    import('#shared/registry/registry.ts'),
    import('#shared/registry/feature-sets.ts'),
  ]);
  // An unknown or malformed version is refused here, naming it.
  return featureSetOfVersion(await readMetadata(ctx.registry, ctx.modelName, which));
}

/** Reads every registered version and the store's fields, and compares this code's definition. */
async function featureChangeReport(ctx: PlatformContext, against?: string): Promise<FeatureChangeReport> {
  const [{ getAliases, listVersions, readMetadata }, { featureSetOfVersion, FingerprintMismatchError }] =
    await Promise.all([import('#shared/registry/registry.ts'), import('#shared/registry/feature-sets.ts')]);
  const [{ readStoreFields }, { diffDefinitions, servabilityOf }] = await Promise.all([
    import('#shared/online-store/fields.ts'),
    import('#shared/features/diff.ts'),
  ]);
  const model = ctx.modelName;
  const [versions, { champion }, storeFields] = await Promise.all([
    listVersions(ctx.registry, model),
    getAliases(ctx.registry, model),
    readStoreFields(ctx.clients.s3, ctx.names.features),
  ]);
  const codeFields = new Set<string>(FEATURE_FIELD_NAMES);
  /** Each version's definition, or why this code cannot read it. */
  const definitions = new Map<string, FeatureSetDefinition | string>();
  const reports = await Promise.all(
    versions.map(async ({ version }): Promise<VersionReport> => {
      const about = { version, champion: version === champion };
      let metadata: Awaited<ReturnType<typeof readMetadata>>;
      try {
        metadata = await readMetadata(ctx.registry, model, version);
      } catch (error) {
        if (!(error instanceof ZodError || error instanceof SyntaxError)) throw error;
        const reason = `its metadata.json cannot be read: ${error.message.split('\n')[0]}`;
        definitions.set(version, reason);
        return { ...about, featureSet: null, servable: false, reason };
      }
      const { version: setVersion, fingerprint } = metadata.feature_set;
      const withSet = { ...about, featureSet: { version: setVersion, fingerprint } };
      try {
        const set = featureSetOfVersion(metadata);
        definitions.set(version, set.definition);
        return { ...withSet, ...servabilityOf(set, codeFields, storeFields) };
      } catch (error) {
        if (!(error instanceof FingerprintMismatchError)) throw error;
        // The message starts with the model and version, which the listing shows already.
        const reason = error.message.replace(new RegExp(`^${model} ${version}:? `), '');
        definitions.set(version, reason);
        return { ...withSet, servable: false, reason };
      }
    }),
  );

  const target = against ?? champion;
  let note: string | undefined;
  let from: FeatureSetDefinition | undefined;
  if (target === undefined) {
    note = `${model} has no champion: compared with nothing, every feature is added`;
  } else {
    // An unknown --against is refused here (UnknownEntity, pointing to `keel models list`).
    if (!definitions.has(target)) await readMetadata(ctx.registry, model, target);
    const definition = definitions.get(target) ?? 'it was registered after this listing began';
    if (typeof definition === 'string') {
      if (against !== undefined) throw new UserError(`cannot compare with ${target}: ${definition}`);
      note = `the champion ${target}'s definition cannot be read (${definition}): compared with nothing`;
    } else {
      from = definition;
    }
  }
  return {
    model,
    against:
      target === undefined || from === undefined ? null : { version: target, champion: target === champion },
    ...(note === undefined ? {} : { note }),
    diff: diffDefinitions(from, FEATURE_SET.definition),
    storeFields: storeFields ? [...storeFields] : null,
    versions: reports,
  };
}
