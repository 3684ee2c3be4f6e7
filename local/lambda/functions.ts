import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  type LocalDeployment,
  type LocalFunction,
  loadLocalDeployment,
} from '#local/deployment/deployment.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { Authorizer } from '#local/rules/authorizer.ts';
import { awsRulesEnforced } from '#local/rules/switch.ts';
import { LOCAL_PROCESS_ENV } from '#local/running-platform.ts';
import { AWS_TARGET_ENV, type AwsTarget } from '#shared/aws/clients.ts';
import { intEnv, KEEL_ENV } from '#shared/env.ts';
import { isEmfLine } from '#shared/monitoring/emf.ts';
import { LocalLambda } from './service.ts';

/**
 * The functions of the local stage, ready to invoke: the synthesized deployment, Lambda's execution
 * model over it ({@link LocalLambda}) and, unless KEEL_AWS_RULES=off, the IAM and KMS rules that the
 * state machine runner checks its own calls against (the functions' calls are checked by the rules
 * proxies in front of the emulators, `target`).
 *
 * What an environment writes goes where CloudWatch Logs would take it: EMF lines to the local metrics
 * file, prediction capture lines to `capture` (the stand-in for the log subscription), every other
 * line to `${KEEL_HOME}/logs/<function>.log`, and warnings and errors also to this process's stderr.
 */
export interface LocalFunctions {
  readonly deployment: LocalDeployment;
  readonly lambda: LocalLambda;
  /** Undefined when the rules are switched off. */
  readonly authorizer: Authorizer | undefined;
  close(): Promise<void>;
}

export interface LocalFunctionsOptions {
  readonly home: string;
  /** Where the functions' SDK clients send their calls (the rules proxies of the local servers). */
  readonly target: AwsTarget;
  /**
   * Offered every line an environment writes: takes the prediction capture lines (the stand-in for
   * the log subscription, local/capture-delivery.ts) and answers false for any other.
   */
  readonly capture?: (line: string) => boolean;
  /** Variables over the functions' own and the user's (a test's settings). */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default - the local stage synthesized from the sources (loadLocalDeployment) */
  readonly deployment?: LocalDeployment;
  /** The Node.js binary the environments run on. @default - this process's */
  readonly nodeBinary?: string;
  /** Checks what the functions' roles may do. @default - one over the deployment, unless the rules are off */
  readonly authorizer?: Authorizer;
  /** Scheduling priority (nice) of the environments. @default - 0 */
  readonly priority?: number;
}

/** Settings of the laptop that differ from a deployed function's; the user's own variables win. */
const LOCAL_DEFAULTS: Readonly<Record<string, string>> = {
  [KEEL_ENV.modelRefreshSeconds]: '2',
  POWERTOOLS_LOG_LEVEL: 'WARN',
  POWERTOOLS_TRACE_ENABLED: 'false',
  // No X-Ray daemon here: the SDK must not complain about a missing trace context.
  AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
};

/** Variables of this process that reach the environments: the user's Keel and Powertools settings. */
const USER_VARIABLES = /^(KEEL_|POWERTOOLS_)/;
/** Keel variables that describe this process, not a function. */
const PROCESS_ONLY = new Set<string>(Object.values(LOCAL_PROCESS_ENV));

const LOUD_LEVELS = /"level":"(WARN|ERROR|CRITICAL)"/;

/**
 * Variables every process running a function's code gets over the function's own: the laptop's
 * defaults, the user's Keel and Powertools settings, a test's settings, and the local endpoints.
 */
export function localFunctionVariables(
  target: AwsTarget,
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  if (!target.endpoints) throw new Error('the local functions need local endpoints (KEEL_S3_ENDPOINT, …)');
  const user = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && USER_VARIABLES.test(entry[0]) && !PROCESS_ONLY.has(entry[0]),
    ),
  );
  return {
    ...LOCAL_DEFAULTS,
    ...user,
    ...overrides,
    [AWS_TARGET_ENV.s3]: target.endpoints.s3,
    [AWS_TARGET_ENV.dynamodb]: target.endpoints.dynamodb,
    ...(target.endpoints.sns ? { [AWS_TARGET_ENV.sns]: target.endpoints.sns } : {}),
    ...(target.endpoints.cloudwatch ? { [AWS_TARGET_ENV.cloudwatch]: target.endpoints.cloudwatch } : {}),
  };
}

/** Where a function's output lines go; `close()` closes the files it holds open. */
export interface FunctionLogRouter {
  write(fn: Pick<LocalFunction, 'name' | 'logicalId'>, line: string): void;
  close(): void;
}

/**
 * Where a function's output lines go, as CloudWatch Logs would take them: EMF lines to the local
 * metrics file, lines `capture` takes (prediction captures) to it, any other to
 * `${home}/logs/<function>.log`, and warnings and errors also to this process's stderr. Each file is
 * opened once for appending and written synchronously line by line (a busy API writes two lines a
 * request), so a reader finds a line as soon as it was routed.
 */
export function functionLogRouter(home: string, capture?: (line: string) => boolean): FunctionLogRouter {
  const logs = join(home, 'logs');
  mkdirSync(logs, { recursive: true });
  mkdirSync(join(home, 'metrics'), { recursive: true });
  const metrics = metricsFile(home);
  const files = new Map<string, number>();
  const append = (file: string, line: string) => {
    let fd = files.get(file);
    if (fd === undefined) {
      fd = openSync(file, 'a');
      files.set(file, fd);
    }
    writeSync(fd, `${line}\n`);
  };
  return {
    write(fn, line) {
      if (isEmfLine(line)) {
        append(metrics, line);
      } else if (!capture?.(line)) {
        append(join(logs, `${fn.name}.log`), line);
        if (LOUD_LEVELS.test(line) || !line.startsWith('{')) {
          process.stderr.write(`[${fn.logicalId}] ${line}\n`);
        }
      }
    },
    close() {
      for (const fd of files.values()) closeSync(fd);
      files.clear();
    },
  };
}

export async function startLocalFunctions(options: LocalFunctionsOptions): Promise<LocalFunctions> {
  const deployment = options.deployment ?? (await loadLocalDeployment());
  const logs = functionLogRouter(options.home, options.capture);
  const lambda = new LocalLambda({
    deployment,
    nodeBinary: options.nodeBinary,
    priority: options.priority,
    environment: localFunctionVariables(options.target, options.environment),
    maxEnvironments: intEnv('KEEL_LAMBDA_MAX_ENVIRONMENTS', 4, { min: 1, max: 64 }),
    idleSeconds: intEnv('KEEL_LAMBDA_IDLE_SECONDS', 300, { min: 1, max: 86_400 }),
    onLog: (fn, line) => logs.write(fn, line),
  });
  return {
    deployment,
    lambda,
    authorizer: options.authorizer ?? (awsRulesEnforced() ? new Authorizer(deployment) : undefined),
    async close() {
      await lambda.close();
      logs.close();
    },
  };
}
