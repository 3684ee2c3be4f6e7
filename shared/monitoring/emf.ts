import type { MetricDatum, MetricUnit } from './metrics.ts';

/**
 * CloudWatch embedded metric format (EMF), both ways: the drift job writes these documents as log
 * lines (CloudWatch turns them into metrics), and the local evaluator reads the same lines back into
 * samples. Only the subset Keel and Powertools use: one CloudWatchMetrics directive per document.
 */

export interface EmfDocument {
  readonly _aws: {
    readonly Timestamp: number;
    readonly CloudWatchMetrics: readonly [
      {
        readonly Namespace: string;
        readonly Dimensions: readonly (readonly string[])[];
        readonly Metrics: readonly { readonly Name: string; readonly Unit: MetricUnit }[];
      },
    ];
  };
  readonly [key: string]: unknown;
}

/** One metric value as CloudWatch would store it. */
export interface MetricSample {
  readonly namespace: string;
  readonly metricName: string;
  /** The exact dimension set (CloudWatch matches a metric by all of its dimensions). */
  readonly dimensions: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  readonly value: number;
}

/** A property would overwrite a dimension or a metric value in the EMF document. */
export class EmfKeyCollisionError extends Error {
  override readonly name = 'EmfKeyCollisionError';
}

/**
 * EMF documents for `data`: one per distinct dimension set, since a document holds one value per
 * dimension key (FeaturePsi for `income` and for `age` cannot share one). `properties` (e.g. the model
 * version) ride along as searchable log fields without becoming dimensions.
 */
export function toEmf(
  data: readonly MetricDatum[],
  options: { namespace: string; timestamp: number; properties?: Readonly<Record<string, unknown>> },
): EmfDocument[] {
  const groups = new Map<string, MetricDatum[]>();
  for (const datum of data) {
    const key = JSON.stringify(Object.entries(datum.dimensions).sort(([a], [b]) => a.localeCompare(b)));
    const group = groups.get(key);
    if (group) group.push(datum);
    else groups.set(key, [datum]);
  }
  return [...groups.values()].map((group) => {
    const dimensions = group[0]!.dimensions;
    const values = Object.fromEntries(group.map((d) => [d.metricName, d.value]));
    for (const key of Object.keys(options.properties ?? {})) {
      if (key in dimensions || key in values || key === '_aws') {
        throw new EmfKeyCollisionError(`EMF property "${key}" collides with a dimension or metric name`);
      }
    }
    return {
      ...options.properties,
      _aws: {
        Timestamp: options.timestamp,
        CloudWatchMetrics: [
          {
            Namespace: options.namespace,
            Dimensions: [Object.keys(dimensions)],
            Metrics: group.map((d) => ({ Name: d.metricName, Unit: d.unit })),
          },
        ],
      },
      ...dimensions,
      ...values,
    };
  });
}

/**
 * The samples of one log line: a metric value (or each value of an array) once per declared dimension
 * set. Lines that are not EMF (plain log output) give no samples.
 */
/**
 * Whether a log line is an EMF document, as CloudWatch Logs decides: a JSON object with an `_aws`
 * directive, wherever the key stands (Keel puts searchable properties such as ModelVersion first).
 */
export function isEmfLine(line: string): boolean {
  if (!line.startsWith('{') || !line.includes('"_aws":')) return false;
  // Parsed once, without building the samples (the platform routes every line of a busy API).
  try {
    const doc: unknown = JSON.parse(line);
    return isRecord(doc) && isRecord(doc._aws) && Array.isArray(doc._aws.CloudWatchMetrics);
  } catch {
    return false;
  }
}

export function parseEmf(line: string): MetricSample[] {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isRecord(doc) || !isRecord(doc._aws)) return [];
  const timestamp = doc._aws.Timestamp;
  const directives = doc._aws.CloudWatchMetrics;
  if (typeof timestamp !== 'number' || !Array.isArray(directives)) return [];
  const samples: MetricSample[] = [];
  for (const directive of directives) {
    if (!isRecord(directive) || typeof directive.Namespace !== 'string') continue;
    const dimensionSets = Array.isArray(directive.Dimensions) ? directive.Dimensions : [[]];
    for (const metric of Array.isArray(directive.Metrics) ? directive.Metrics : []) {
      if (!isRecord(metric) || typeof metric.Name !== 'string') continue;
      const raw = doc[metric.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is number => typeof v === 'number');
      for (const keys of dimensionSets) {
        const dimensions = dimensionsOf(doc, keys);
        if (!dimensions) continue;
        for (const value of values) {
          samples.push({
            namespace: directive.Namespace,
            metricName: metric.Name,
            dimensions,
            timestamp,
            value,
          });
        }
      }
    }
  }
  return samples;
}

/** The values of `keys` on the document; null when the set is malformed (EMF requires string values). */
function dimensionsOf(doc: Record<string, unknown>, keys: unknown): Record<string, string> | null {
  if (!Array.isArray(keys)) return null;
  const dimensions: Record<string, string> = {};
  for (const key of keys) {
    const value = typeof key === 'string' ? doc[key] : undefined;
    if (typeof value !== 'string') return null;
    dimensions[key] = value;
  }
  return dimensions;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
