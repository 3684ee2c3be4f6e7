import { Annotations, Duration, Validations } from 'aws-cdk-lib';
import { ConnectionType, Integration, IntegrationType, VpcLink } from 'aws-cdk-lib/aws-apigateway';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  IpAddresses,
  Peer,
  Port,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  AwsLogDriverMode,
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { NetworkLoadBalancer, Protocol } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { CaptureStream } from '#lib/constructs/capture-stream.ts';
import type { ApiRoute, PredictBackend } from '#lib/constructs/predict-api.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import {
  assertValidPredictSettings,
  captureStreamFor,
  grantPredictAccess,
  modelVariables,
  PREDICT_POWERTOOLS,
  type PredictSettings,
  predictResources,
} from '#lib/predict-settings.ts';
import { powertoolsVariables, resourceVariables } from '#lib/process-environment.ts';
import { isKnown } from '#lib/prop-checks.ts';

/** Props of {@link FargatePredict}. */
export interface FargatePredictProps {
  /** What to serve and read. */
  readonly settings: PredictSettings;
  /**
   * Tasks kept running, spread over the Availability Zones.
   *
   * @default - 2
   */
  readonly desiredCount?: number;
  /**
   * How long the container, flow and access logs are kept.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** A literal, not the VPC's CidrBlock attribute, so security-group rules can be checked at synth. */
const VPC_CIDR = '10.0.0.0/16';

/** The port `lambdas/predict/container.ts` listens on (its `PORT`). */
const CONTAINER_PORT = 8080;

/**
 * The predict handler as an ECS Fargate service: the same code and configuration as the Lambda
 * function, served over HTTP by `lambdas/predict/container.ts` (image: `lambdas/predict/Dockerfile`,
 * built by `cdk deploy`, never at synth). Tasks run in private subnets behind an internal Network Load
 * Balancer that API Gateway reaches through a VPC link, so the same REST API, with IAM auth, WAF and
 * throttling, fronts it. S3 and DynamoDB traffic stays on gateway endpoints; one NAT gateway carries
 * the rest (ECR, CloudWatch, SageMaker).
 */
export class FargatePredict extends Construct implements PredictBackend {
  public readonly service: FargateService;
  public readonly taskDefinition: FargateTaskDefinition;
  public readonly loadBalancer: NetworkLoadBalancer;
  public readonly vpcLink: VpcLink;
  /** The container's log group (awslogs driver): its logs, EMF metrics and capture lines. */
  public readonly logGroup: LogGroup;
  /** Delivers the container's capture lines to the outputs bucket; undefined when capture is off. */
  public readonly capture: CaptureStream | undefined;

  constructor(scope: Construct, id: string, props: FargatePredictProps) {
    super(scope, id);
    this.validateProps(props);
    const desiredCount = props.desiredCount ?? 2;
    const retention = props.logRetention ?? RetentionDays.ONE_MONTH;

    const vpc = new Vpc(this, 'Vpc', {
      // The stack's first two zones. A stack with a concrete env looks them up, which needs credentials:
      // a stack that must synthesize offline overrides `availabilityZones` (see InferenceStack).
      maxAzs: 2,
      ipAddresses: IpAddresses.cidr(VPC_CIDR),
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        // Rejected flows are what an investigation needs; accepted ones would multiply the volume.
        rejected: {
          destination: FlowLogDestination.toCloudWatchLogs(new LogGroup(this, 'FlowLogs', { retention })),
          trafficType: FlowLogTrafficType.REJECT,
        },
      },
    });
    const cluster = new Cluster(this, 'Cluster', { vpc, containerInsightsV2: ContainerInsights.ENABLED });

    this.taskDefinition = new FargateTaskDefinition(this, 'Task', {
      // onnxruntime scores one request in well under a millisecond; memory holds Node, the model and
      // onnxruntime's arena.
      cpu: 512,
      memoryLimitMiB: 1024,
      // The same linux-x64 onnxruntime binary as the Lambda layer.
      runtimePlatform: {
        operatingSystemFamily: OperatingSystemFamily.LINUX,
        cpuArchitecture: CpuArchitecture.X86_64,
      },
    });
    this.logGroup = new LogGroup(this, 'Logs', { retention });
    // The only part of Keel that needs Docker: said at synth, before a deploy fails without it.
    Annotations.of(this).addInfo(
      'inference.compute "ecs" needs Docker where `cdk deploy` runs: it builds the predict image (lambdas/predict/Dockerfile, linux/amd64) and pushes it to the bootstrap ECR repository. Synth needs none; "lambda" needs none.',
    );
    const container = this.taskDefinition.addContainer('predict', {
      image: ContainerImage.fromAsset(REPO_ROOT, {
        file: 'lambdas/predict/Dockerfile',
        platform: Platform.LINUX_AMD64,
      }),
      environment: {
        ...resourceVariables(predictResources(props.settings)),
        ...modelVariables(props.settings),
        ...powertoolsVariables(PREDICT_POWERTOOLS),
        PORT: String(CONTAINER_PORT),
      },
      portMappings: [{ containerPort: CONTAINER_PORT }],
      // Blocking, said explicitly: since June 2025 ECS defaults to non-blocking, which drops lines
      // (capture lines among them) when its buffer is full. Blocking slows stdout writes instead.
      logging: LogDrivers.awsLogs({
        streamPrefix: 'predict',
        logGroup: this.logGroup,
        mode: AwsLogDriverMode.BLOCKING,
      }),
      readonlyRootFilesystem: true,
    });
    grantPredictAccess(this, this.taskDefinition.taskRole, props.settings);
    this.capture = captureStreamFor(this, this.logGroup, props.settings, retention);

    this.service = new FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      desiredCount,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
    });
    // The NLB has no security group and does not keep client IPs for IP targets: traffic arrives
    // from its addresses inside the VPC.
    this.service.connections.allowFrom(
      Peer.ipv4(VPC_CIDR),
      Port.tcp(CONTAINER_PORT),
      'The internal NLB (VPC link) to the predict container',
    );

    this.loadBalancer = new NetworkLoadBalancer(this, 'Nlb', {
      vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      crossZoneEnabled: true,
    });
    this.loadBalancer.addListener('Http', { port: 80, protocol: Protocol.TCP }).addTargets('Predict', {
      port: CONTAINER_PORT,
      protocol: Protocol.TCP,
      targets: [this.service.loadBalancerTarget({ containerName: container.containerName })],
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: Protocol.HTTP,
        path: '/health',
        // 503 is a live process without a promoted model (NoModel) or with a dependency down:
        // replacing the task would not help, so only no answer or another status counts as unhealthy.
        healthyHttpCodes: '200,503',
        interval: Duration.seconds(10),
      },
    });
    this.vpcLink = new VpcLink(this, 'VpcLink', {
      description: 'API Gateway to the predict service NLB',
      targets: [this.loadBalancer],
    });

    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'An NLB writes access logs only for TLS listeners; this TCP listener is reached only through the VPC link, and API Gateway access-logs every request',
    });
    if (this.taskDefinition.executionRole) {
      acknowledgeWildcardResource(this.taskDefinition.executionRole, {
        resource: '*',
        actions: ['ecr:GetAuthorizationToken'],
        reason:
          'ecr:GetAuthorizationToken, which the execution role needs to pull the image, supports no resource-level permissions: AWS requires "*"',
      });
    }
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The variables are resource names and settings (no secrets), the same the Lambda function gets; secrets would go through Secrets Manager',
    });
  }

  integrationFor(route: ApiRoute): Integration {
    return new Integration({
      type: IntegrationType.HTTP_PROXY,
      integrationHttpMethod: route.method,
      uri: `http://${this.loadBalancer.loadBalancerDnsName}${route.path}`,
      options: {
        connectionType: ConnectionType.VPC_LINK,
        vpcLink: this.vpcLink,
        // The forwarded request is addressed to the NLB: tell the service where the client reached the
        // API (GET /openapi.json names that server), as a Lambda event's request context would.
        requestParameters: {
          'integration.request.header.X-Forwarded-Host': 'context.domainName',
          'integration.request.header.X-Forwarded-Prefix': 'context.stage',
          'integration.request.header.X-Forwarded-Proto': "'https'",
        },
      },
    });
  }

  /** Refuses settings and props that cannot work; values known only at deploy time pass. */
  private validateProps(props: FargatePredictProps): void {
    const owner = `FargatePredict ${this.node.path}`;
    assertValidPredictSettings(owner, props.settings);
    const desiredCount = props.desiredCount;
    if (isKnown(desiredCount) && (!Number.isInteger(desiredCount) || desiredCount < 1)) {
      throw new Error(`${owner}: desiredCount must be a whole number of at least 1 (got ${desiredCount})`);
    }
  }
}
