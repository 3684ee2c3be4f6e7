import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { KeelFunction, type KeelFunctionProps } from '#lib/constructs/keel-function.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { NO_BUNDLING } from '../support/cdk.ts';
import { newApp } from '../support/inference-stack.ts';

/** Keel's Lambda function (KeelFunction): what its props refuse and how it sets its environment. */
describe('KeelFunction', () => {
  function keelFunction(props: Partial<KeelFunctionProps>) {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    return () =>
      new KeelFunction(stack, 'F', {
        entry: 'lambdas/predict/handler.ts',
        description: 'd',
        serviceName: 's',
        ...props,
      });
  }

  it.each([
    [{ memorySize: 100 }, 'memorySize must be a whole number of MB from 128 to 10240 (got 100)'],
    [{ memorySize: 10_241 }, 'memorySize must be a whole number of MB from 128 to 10240 (got 10241)'],
    [{ memorySize: 512.5 }, '(got 512.5)'],
    [
      { timeout: Duration.millis(1500) },
      'timeout must be whole seconds from 1 second to 15 minutes (got 1 second 500 millis)',
    ],
    [
      { timeout: Duration.minutes(16) },
      'timeout must be whole seconds from 1 second to 15 minutes (got 16 minutes)',
    ],
    [{ logRetention: RetentionDays.INFINITE }, 'logRetention INFINITE keeps logs (and their cost) forever'],
    [
      { entry: 'lambdas/nope/handler.ts' },
      'KeelFunction S/F: entry "lambdas/nope/handler.ts" does not exist',
    ],
    [
      { environment: { POWERTOOLS_SERVICE_NAME: 'x', OTHER: 'y' } },
      'environment may not set POWERTOOLS_SERVICE_NAME: use the resources, serviceName, metricsNamespace or logLevel props',
    ],
  ] as [Partial<KeelFunctionProps>, string][])('refuses %j', (props, message) => {
    expect(keelFunction(props)).toThrow(message);
  });

  it('passes resources as RESOURCE_ENV variables and adds free variables', () => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    new KeelFunction(stack, 'F', {
      entry: 'lambdas/predict/handler.ts',
      description: 'd',
      serviceName: 'svc',
      logLevel: 'DEBUG',
      resources: { outputs: 'out-bucket' },
      environment: { EXTRA: '1' },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          [RESOURCE_ENV.outputs]: 'out-bucket',
          EXTRA: '1',
          POWERTOOLS_SERVICE_NAME: 'svc',
          POWERTOOLS_LOG_LEVEL: 'DEBUG',
          POWERTOOLS_METRICS_NAMESPACE: 'Keel',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
      LoggingConfig: Match.objectLike({ ApplicationLogLevel: 'DEBUG' }),
      MemorySize: 512,
      Timeout: 30,
    });
  });
});
