import { type BucketRole, RESOURCE_ENV, type TableRole } from '#shared/resources.ts';

/**
 * Environment variables every Keel process (a Lambda function or a container) is configured with,
 * built in one place so the two compute options cannot drift apart.
 */

/** Names of Keel buckets and tables, by role. */
export type ResourceRefs = Readonly<Partial<Record<BucketRole | TableRole, string>>>;

/** The `RESOURCE_ENV` variables (`shared/resources.ts`) of the given resources, and no others. */
export function resourceVariables(resources: ResourceRefs): Record<string, string> {
  return Object.fromEntries(
    (Object.entries(resources) as [BucketRole | TableRole, string][]).map(([role, name]) => [
      RESOURCE_ENV[role],
      name,
    ]),
  );
}

/** Log levels shared by Powertools (`POWERTOOLS_LOG_LEVEL`) and Lambda's application log filter. */
export type KeelLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface PowertoolsSettings {
  /** `POWERTOOLS_SERVICE_NAME`: the `service` of every log line, metric and trace. */
  readonly serviceName: string;
  /** `POWERTOOLS_METRICS_NAMESPACE`, the CloudWatch namespace of the metrics. */
  readonly metricsNamespace: string;
  /** `POWERTOOLS_LOG_LEVEL`. */
  readonly logLevel: KeelLogLevel;
}

export function powertoolsVariables(settings: PowertoolsSettings): Record<string, string> {
  return {
    POWERTOOLS_SERVICE_NAME: settings.serviceName,
    POWERTOOLS_METRICS_NAMESPACE: settings.metricsNamespace,
    POWERTOOLS_LOG_LEVEL: settings.logLevel,
    // No customer data in X-Ray (docs/security.md): a traced handler's response holds customer ids and
    // probabilities, and an error's message may quote its input. The logs have both; the trace keeps
    // the timing and the error flag.
    POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
    POWERTOOLS_TRACER_CAPTURE_ERROR: 'false',
  };
}
