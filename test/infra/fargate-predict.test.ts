import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { PREDICT_ROUTES } from '#lib/constructs/predict-api.ts';
import { acknowledgementsIn, filesOf, NO_BUNDLING } from '../support/cdk.ts';
import { only, type Resource, statementsOf } from '../support/cfn-template.ts';
import {
  EXPORT_ID,
  inferenceApp,
  predictVariables,
  servingStatements,
  synthesizedInferenceApp,
} from '../support/inference-stack.ts';

/** The predict handler in a container on ECS Fargate (FargatePredict), behind a VPC link and an NLB. */
describe('InferenceStack on ECS Fargate', () => {
  const { app, data, stack, findings, template } = synthesizedInferenceApp({ inference: 'ecs' }, NO_BUNDLING);

  it('leaves no cdk-nag finding unacknowledged, and acknowledges each one on its construct', () => {
    expect(findings).toEqual([]);
    const acknowledged = acknowledgementsIn(app).filter(
      (a) => a.path.startsWith('Keel-test-Inference/Ecs') && /^(AwsSolutions|Serverless)-/.test(a.id),
    );
    expect(acknowledged.map(({ path, id }) => `${path} ${id}`.replace(EXPORT_ID, '…')).sort()).toEqual([
      'Keel-test-Inference/Ecs/Capture/DeliveryRole AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/captures/model=churn/*]',
      'Keel-test-Inference/Ecs/Nlb AwsSolutions-ELB2',
      'Keel-test-Inference/Ecs/Task AwsSolutions-ECS2',
      'Keel-test-Inference/Ecs/Task/ExecutionRole AwsSolutions-IAM5[Resource::*]',
      'Keel-test-Inference/Ecs/Task/TaskRole AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/models/churn/*]',
    ]);
  });

  it('runs the container on Fargate x86_64 in private subnets, with container insights and logs', () => {
    template.resourceCountIs('AWS::Lambda::Function', 0);
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 2,
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
      }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    expect(task.Properties).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      ContainerDefinitions: [
        {
          PortMappings: [{ ContainerPort: 8080 }],
          ReadonlyRootFilesystem: true,
          LogConfiguration: { LogDriver: 'awslogs' },
        },
      ],
    });
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
    // Zones from Fn::GetAZs, not a context lookup that `cdk synth` could only do with credentials.
    template.resourceCountIs('AWS::EC2::Subnet', 4);
    template.allResourcesProperties('AWS::EC2::Subnet', {
      AvailabilityZone: { 'Fn::Select': [Match.anyValue(), { 'Fn::GetAZs': '' }] },
    });
    expect(JSON.parse(readFileSync(join(app.outdir, 'manifest.json'), 'utf8')).missing).toBeUndefined();
    for (const group of Object.values(template.findResources('AWS::Logs::LogGroup')) as Resource[]) {
      expect(group.Properties.RetentionInDays).toBe(30);
    }
  });

  it('gives the container the same variables as the Lambda function, plus its port', () => {
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    const environment = Object.fromEntries(
      (task.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[]).map((v) => [
        v.Name,
        v.Value,
      ]),
    );
    expect(environment).toEqual({ ...predictVariables(data), PORT: '8080' });
  });

  it('grants the task role exactly the serving statements', () => {
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    const taskRole = task.Properties.TaskRoleArn['Fn::GetAtt'][0];
    expect(statementsOf(template, taskRole)).toEqual(servingStatements(data));
  });

  it('reaches the service through a VPC link to an internal NLB, behind the same IAM-signed routes', () => {
    const [linkId] = only(template, 'AWS::ApiGateway::VpcLink');
    const [nlbId, nlb] = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(nlb.Properties).toMatchObject({ Type: 'network', Scheme: 'internal' });
    template.hasResourceProperties('AWS::ApiGateway::VpcLink', { TargetArns: [{ Ref: nlbId }] });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8080,
      TargetType: 'ip',
      HealthCheckPath: '/health',
      Matcher: { HttpCode: '200,503' },
    });
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    expect(methods).toHaveLength(PREDICT_ROUTES.length);
    for (const method of methods) {
      expect(method.Properties).toMatchObject({
        AuthorizationType: 'AWS_IAM',
        Integration: {
          Type: 'HTTP_PROXY',
          ConnectionType: 'VPC_LINK',
          ConnectionId: { Ref: linkId },
          IntegrationHttpMethod: method.Properties.HttpMethod,
          // Where the client reached the API, which the forwarded request (to the NLB) no longer says.
          RequestParameters: {
            'integration.request.header.X-Forwarded-Host': 'context.domainName',
            'integration.request.header.X-Forwarded-Prefix': 'context.stage',
            'integration.request.header.X-Forwarded-Proto': "'https'",
          },
        },
      });
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(
        `"Fn::GetAtt":["${nlbId}","DNSName"]`,
      );
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '10.0.0.0/16', FromPort: 8080, ToPort: 8080 })],
    });
    template.hasOutput('ServiceName', { Export: { Name: 'keel-test-predict-service-name' } });
  });

  it('says at synth that deploying it needs Docker, which the Lambda variant does not', () => {
    const docker = Match.stringLikeRegexp('needs Docker');
    Annotations.fromStack(stack).hasInfo('/Keel-test-Inference/Ecs', docker);
    const lambda = inferenceApp({}, NO_BUNDLING);
    lambda.app.synth();
    Annotations.fromStack(lambda.stack).hasNoInfo('*', docker);
  });

  it('stages the image context (lambdas/predict/Dockerfile) for a linux/amd64 build at deploy, without node_modules', () => {
    const manifest = JSON.parse(readFileSync(join(app.outdir, 'Keel-test-Inference.assets.json'), 'utf8'));
    const images = Object.values(manifest.dockerImages) as { source: Record<string, string> }[];
    expect(images).toHaveLength(1);
    expect(images[0]!.source).toMatchObject({
      dockerFile: 'lambdas/predict/Dockerfile',
      platform: 'linux/amd64',
    });
    const context = filesOf(join(app.outdir, images[0]!.source.directory!));
    expect(context).toContain('lambdas/predict/Dockerfile');
    expect(context).toContain('package-lock.json');
    expect(context.filter((f) => /^(node_modules|cdk\.out|\.keel|\.git|test|bench)\//.test(f))).toEqual([]);
  });
});
