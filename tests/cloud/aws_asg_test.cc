// Unit tests of the aws-asg provider's pure parts and of the Query client's
// error mapping and retries, with hand-written XML and a scripted transport.
#include "cloud/aws_asg.h"

#include <gtest/gtest.h>

#include "support/fake_transport.h"

namespace gpu_autoscaler::cloud {
namespace {

using testing::FakeTransport;

constexpr char kGroups[] =
    R"(<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>gpu-spot</AutoScalingGroupName>
        <MinSize>0</MinSize>
        <MaxSize>8</MaxSize>
        <DesiredCapacity>2</DesiredCapacity>
        <Instances>
          <member>
            <InstanceId>i-0abc123</InstanceId>
            <InstanceType>p4d.24xlarge</InstanceType>
            <AvailabilityZone>us-east-1b</AvailabilityZone>
            <LifecycleState>InService</LifecycleState>
            <HealthStatus>Healthy</HealthStatus>
          </member>
          <member>
            <InstanceId>i-0def456</InstanceId>
            <AvailabilityZone>us-east-1c</AvailabilityZone>
            <LifecycleState>Terminating:Wait</LifecycleState>
          </member>
        </Instances>
        <MixedInstancesPolicy>
          <InstancesDistribution>
            <OnDemandBaseCapacity>0</OnDemandBaseCapacity>
            <OnDemandPercentageAboveBaseCapacity>0</OnDemandPercentageAboveBaseCapacity>
          </InstancesDistribution>
        </MixedInstancesPolicy>
      </member>
      <member>
        <AutoScalingGroupName>gpu-mixed</AutoScalingGroupName>
        <MinSize>1</MinSize><MaxSize>4</MaxSize><DesiredCapacity>1</DesiredCapacity>
        <Instances><member><InstanceId>i-0aaa</InstanceId><AvailabilityZone>us-west-2a</AvailabilityZone><LifecycleState>Pending</LifecycleState></member></Instances>
        <MixedInstancesPolicy><InstancesDistribution><OnDemandBaseCapacity>1</OnDemandBaseCapacity><OnDemandPercentageAboveBaseCapacity>50</OnDemandPercentageAboveBaseCapacity></InstancesDistribution></MixedInstancesPolicy>
      </member>
      <member>
        <AutoScalingGroupName>gpu-od</AutoScalingGroupName>
        <MinSize>0</MinSize><MaxSize>2</MaxSize><DesiredCapacity>0</DesiredCapacity>
        <Instances/>
        <MixedInstancesPolicy><InstancesDistribution><OnDemandPercentageAboveBaseCapacity>100</OnDemandPercentageAboveBaseCapacity></InstancesDistribution></MixedInstancesPolicy>
      </member>
      <member>
        <AutoScalingGroupName>gpu-tagged</AutoScalingGroupName>
        <MinSize>0</MinSize><MaxSize>2</MaxSize><DesiredCapacity>1</DesiredCapacity>
        <Instances><member><InstanceId>i-0bbb</InstanceId><AvailabilityZone>eu-west-1a</AvailabilityZone><LifecycleState>InService</LifecycleState></member></Instances>
        <Tags><member><Key>team</Key><Value>ml</Value></member><member><Key>gpuautoscaler.io/capacity-type</Key><Value>spot</Value></member></Tags>
      </member>
    </AutoScalingGroups>
    <NextToken>tok-2</NextToken>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>)";

TEST(AwsAsgParseTest, DescribeAutoScalingGroups) {
  auto doc = ParseXml(kGroups);
  ASSERT_TRUE(doc.ok());
  std::string next;
  auto groups = ParseDescribeAutoScalingGroups(*doc, &next);
  ASSERT_TRUE(groups.ok()) << groups.error().ToString();
  EXPECT_EQ(next, "tok-2");
  ASSERT_EQ(groups->size(), 4u);
  const NodeGroup& spot = (*groups)[0];
  EXPECT_EQ(spot.name, "gpu-spot");
  EXPECT_EQ(spot.min, 0);
  EXPECT_EQ(spot.max, 8);
  EXPECT_EQ(spot.desired, 2);
  ASSERT_EQ(spot.instances.size(), 2u);
  EXPECT_EQ(spot.instances[0].id, "i-0abc123");
  EXPECT_EQ(spot.instances[0].zone, "us-east-1b");
  EXPECT_EQ(spot.instances[0].provider_id, "aws:///us-east-1b/i-0abc123");
  EXPECT_EQ(spot.instances[0].lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(spot.instances[1].state, "Terminating:Wait");
  EXPECT_EQ((*groups)[1].instances[0].lifecycle, Lifecycle::kUnknown);  // mixed: cannot tell
  EXPECT_TRUE((*groups)[2].instances.empty());
  EXPECT_EQ((*groups)[3].instances[0].lifecycle, Lifecycle::kSpot);  // from the tag
}

TEST(AwsAsgParseTest, MalformedGroupsAreUnavailableErrors) {
  for (const char* xml :
       {"<DescribeAutoScalingGroupsResponse/>",
        "<R><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><MinSize>1</MinSize>"
        "</member></AutoScalingGroups></DescribeAutoScalingGroupsResult></R>",
        "<R><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>g"
        "</AutoScalingGroupName><MaxSize>many</MaxSize></member></AutoScalingGroups>"
        "</DescribeAutoScalingGroupsResult></R>"}) {
    auto doc = ParseXml(xml);
    ASSERT_TRUE(doc.ok());
    auto groups = ParseDescribeAutoScalingGroups(*doc, nullptr);
    ASSERT_FALSE(groups.ok()) << xml;
    EXPECT_EQ(ClassifyProviderError(groups.error()), ProviderErrorKind::kUnavailable);
  }
}

TEST(AwsAsgParseTest, ProviderIds) {
  EXPECT_EQ(AwsProviderId("us-east-1a", "i-0abc"), "aws:///us-east-1a/i-0abc");
  auto id = AwsInstanceIdFromProviderId("aws:///us-east-1a/i-0123456789abcdef0");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "i-0123456789abcdef0");
  for (const char* bad :
       {"gce://proj/us-central1-a/vm-1", "aws:///us-east-1a/", "aws:///us-east-1a/vm-1",
        "azure:///subscriptions/x", "", "aws:///us-east-1a/i-0123456789abcdef012"}) {
    auto r = AwsInstanceIdFromProviderId(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(ClassifyProviderError(r.error()), ProviderErrorKind::kInvalid);
  }
}

TEST(AwsQueryTest, ParsesQueryAndEc2ErrorBodies) {
  auto e =
      ParseAwsError(400, R"(<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>8e2c1ad9-0f6d-4b5e-9d6e-0c1f4a1e0b7a</RequestId>
</ErrorResponse>)");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "Throttling");
  EXPECT_EQ(e->message, "Rate exceeded");
  EXPECT_EQ(e->request_id, "8e2c1ad9-0f6d-4b5e-9d6e-0c1f4a1e0b7a");
  e = ParseAwsError(400,
                    "<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>"
                    "<Message>none left</Message></Error></Errors><RequestID>r</RequestID>"
                    "</Response>");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "InsufficientInstanceCapacity");
  EXPECT_EQ(e->request_id, "r");
  EXPECT_FALSE(ParseAwsError(503, "Service Unavailable").has_value());
  EXPECT_FALSE(ParseAwsError(400, "<ErrorResponse><Error/></ErrorResponse>").has_value());
}

TEST(AwsQueryTest, ErrorCodesMapOntoKinds) {
  using K = ProviderErrorKind;
  struct Case {
    int status;
    const char* code;
    const char* message;
    K kind;
  };
  for (const Case& c : {
           Case{400, "Throttling", "", K::kThrottled},
           Case{400, "ThrottlingException", "", K::kThrottled},
           Case{400, "RequestLimitExceeded", "", K::kThrottled},
           Case{500, "ResourceContention", "", K::kThrottled},
           Case{400, "ScalingActivityInProgress", "", K::kThrottled},
           Case{400, "InsufficientInstanceCapacity", "", K::kInsufficientCapacity},
           Case{400, "UnfulfillableCapacity", "", K::kInsufficientCapacity},
           Case{400, "LimitExceeded", "", K::kQuotaExceeded},
           Case{400, "VcpuLimitExceeded", "", K::kQuotaExceeded},
           Case{400, "MaxSpotInstanceCountExceeded", "", K::kQuotaExceeded},
           Case{403, "InvalidClientTokenId", "", K::kAuth},
           Case{403, "SignatureDoesNotMatch", "", K::kAuth},
           Case{403, "ExpiredToken", "", K::kAuth},
           Case{403, "AccessDenied", "", K::kAuth},
           Case{400, "InvalidIdentityToken", "", K::kAuth},
           Case{400, "ValidationError",
                "AutoScalingGroup name not found - AutoScalingGroup 'x' not found", K::kNotFound},
           Case{400, "ValidationError",
                "Instance Id not found - No managed instance found for instance ID: i-1",
                K::kNotFound},
           Case{400, "ValidationError", "New SetDesiredCapacity value 9 is above max value 4",
                K::kInvalid},
           Case{400, "InvalidNextToken", "", K::kInvalid},
           Case{500, "InternalFailure", "", K::kUnavailable},
           Case{503, "", "", K::kUnavailable},
           Case{429, "", "", K::kThrottled},
           Case{403, "", "", K::kAuth},
           Case{400, "SomethingNew", "", K::kInvalid},
       }) {
    EXPECT_EQ(ClassifyAwsError(c.status, c.code, c.message), c.kind)
        << c.status << " " << c.code << " " << c.message;
  }
}

TEST(AwsQueryTest, LaunchFailureMessages) {
  using K = ProviderErrorKind;
  EXPECT_EQ(ClassifyLaunchFailureMessage(
                "We currently do not have sufficient p4d.24xlarge capacity in the Availability "
                "Zone you requested (us-east-1a). Launching EC2 instance failed."),
            K::kInsufficientCapacity);
  EXPECT_EQ(ClassifyLaunchFailureMessage("InsufficientInstanceCapacity - launching failed"),
            K::kInsufficientCapacity);
  EXPECT_EQ(ClassifyLaunchFailureMessage(
                "You have requested more vCPU capacity than your current vCPU limit of 96 allows "
                "for the instance bucket that the specified instance type belongs to. "
                "VcpuLimitExceeded"),
            K::kQuotaExceeded);
  EXPECT_EQ(ClassifyLaunchFailureMessage("Max spot instance count exceeded: "
                                         "MaxSpotInstanceCountExceeded"),
            K::kQuotaExceeded);
  EXPECT_EQ(ClassifyLaunchFailureMessage("The image id '[ami-1]' does not exist"), K::kNone);
}

TEST(AwsQueryTest, FormEncodingAndBackoff) {
  EXPECT_EQ(AwsFormEncode({{"Action", "X"}, {"AutoScalingGroupNames.member.1", "a b/c+d"}}),
            "Action=X&AutoScalingGroupNames.member.1=a%20b%2Fc%2Bd");
  EXPECT_EQ(FormDecode("A=a+b&B=%2F%3D&C"), (QueryParams{{"A", "a b"}, {"B", "/="}, {"C", ""}}));
  AwsRetryPolicy p{.max_attempts = 10,
                   .base_delay = std::chrono::milliseconds(100),
                   .max_delay = std::chrono::milliseconds(1000)};
  EXPECT_EQ(BackoffDelay(p, 1, 1.0).count(), 100);
  EXPECT_EQ(BackoffDelay(p, 2, 1.0).count(), 200);
  EXPECT_EQ(BackoffDelay(p, 4, 1.0).count(), 800);
  EXPECT_EQ(BackoffDelay(p, 5, 1.0).count(), 1000);   // capped
  EXPECT_EQ(BackoffDelay(p, 40, 1.0).count(), 1000);  // no overflow
  EXPECT_EQ(BackoffDelay(p, 3, 0.5).count(), 200);    // full jitter
  EXPECT_EQ(BackoffDelay(p, 3, 0.0).count(), 0);
}

class CountingCredentials : public AwsCredentialsProvider {
 public:
  Result<AwsCredentials> Get() override {
    ++gets;
    return AwsCredentials{"AKID" + std::to_string(invalidations), "secret-value", "token-value",
                          std::nullopt, "test"};
  }
  void Invalidate() override { ++invalidations; }
  int gets = 0, invalidations = 0;
};

AwsAsgOptions UnitOptions(std::vector<std::chrono::milliseconds>* sleeps) {
  AwsAsgOptions o;
  o.region = "us-east-1";
  o.endpoint = "https://autoscaling.example";
  o.sleep = [sleeps](std::chrono::milliseconds d) { sleeps->push_back(d); };
  o.jitter = [] { return 0.5; };
  return o;
}

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<ErrorResponse><Error><Type>Sender</Type><Code>" + code + "</Code><Message>" + message +
         "</Message></Error><RequestId>req-9</RequestId></ErrorResponse>";
}

TEST(AwsAsgProviderTest, ExpiredTokenRefreshesCredentialsOnceAndRedactsSecrets) {
  auto transport = std::make_shared<FakeTransport>();
  auto creds = std::make_shared<CountingCredentials>();
  std::vector<std::chrono::milliseconds> sleeps;
  AwsAsgProvider p(UnitOptions(&sleeps), transport, creds);
  // The service echoes the token (it must never reach the error message).
  transport->Respond(403, ErrorXml("ExpiredToken", "token token-value expired"));
  transport->Respond(200,
                     "<SetDesiredCapacityResponse><ResponseMetadata/>"
                     "</SetDesiredCapacityResponse>");
  ASSERT_TRUE(p.SetDesiredSize("g", 2).ok());
  EXPECT_EQ(creds->invalidations, 1);
  EXPECT_TRUE(sleeps.empty());
  auto reqs = transport->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].url, "https://autoscaling.example/");
  EXPECT_EQ(reqs[1].body,
            "Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=g&"
            "DesiredCapacity=2&HonorCooldown=false");
  EXPECT_NE(reqs[1].headers.back().second.find("Credential=AKID1/"), std::string::npos);

  // Expired twice: an auth error, with the echoed secret redacted.
  transport->Respond(403, ErrorXml("ExpiredToken", "token token-value expired"));
  transport->Respond(403, ErrorXml("ExpiredToken", "token token-value expired"));
  Status s = p.SetDesiredSize("g", 2);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kAuth);
  EXPECT_EQ(s.message().find("token-value"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[redacted]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("req-9"), std::string::npos) << s.message();
}

TEST(AwsAsgProviderTest, TransportFailuresAndMalformedAnswersAreUnavailable) {
  auto transport = std::make_shared<FakeTransport>();
  std::vector<std::chrono::milliseconds> sleeps;
  AwsAsgOptions o = UnitOptions(&sleeps);
  o.retry.max_attempts = 2;
  AwsAsgProvider p(o, transport, std::make_shared<CountingCredentials>());
  transport->Fail(kube::Error::Transport("connection refused"));
  transport->Respond(200, "<DescribeAutoScalingGroupsResponse><oops>");
  auto g = p.Describe("g");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kUnavailable);
  EXPECT_NE(g.error().message().find("malformed response"), std::string::npos)
      << g.error().message();
  EXPECT_EQ(sleeps, std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(50)});

  transport->Respond(200,
                     "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
                     "<AutoScalingGroups/></DescribeAutoScalingGroupsResult>"
                     "</DescribeAutoScalingGroupsResponse>");
  g = p.Describe("g");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kNotFound);
}

TEST(AwsAsgProviderTest, AnOversizedAnswerIsAClearError) {
  auto transport = std::make_shared<FakeTransport>();
  std::vector<std::chrono::milliseconds> sleeps;
  AwsAsgOptions o = UnitOptions(&sleeps);
  o.retry.max_attempts = 1;
  AwsAsgProvider p(o, transport, std::make_shared<CountingCredentials>());
  transport->Respond(200, "<DescribeAutoScalingGroupsResponse>" + std::string(9 << 20, ' ') +
                              "</DescribeAutoScalingGroupsResponse>");
  auto g = p.Describe("g");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kUnavailable);
  EXPECT_NE(g.error().message().find("larger than 8 MiB"), std::string::npos)
      << g.error().message();
}

TEST(AwsAsgProviderTest, TerminateStopsAtTheFirstFailureAndSaysHowFarItGot) {
  auto transport = std::make_shared<FakeTransport>();
  std::vector<std::chrono::milliseconds> sleeps;
  AwsAsgProvider p(UnitOptions(&sleeps), transport, std::make_shared<CountingCredentials>());
  transport->Respond(
      200,
      "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
      "<member><AutoScalingGroupName>g</AutoScalingGroupName><Instances>"
      "<member><InstanceId>i-01</InstanceId></member><member><InstanceId>i-02</InstanceId>"
      "</member></Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
      "</DescribeAutoScalingGroupsResponse>");
  transport->Respond(200, "<TerminateInstanceInAutoScalingGroupResponse/>");
  transport->Respond(400, ErrorXml("ValidationError", "Instance Id not found - i-02"));
  Status s = p.TerminateInstances("g", {"i-01", "i-02"}, false);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("terminate i-02 (already terminated: 1)"), std::string::npos)
      << s.message();
  EXPECT_EQ(transport->requests()[1].body,
            "Action=TerminateInstanceInAutoScalingGroup&Version=2011-01-01&InstanceId=i-01&"
            "ShouldDecrementDesiredCapacity=false");
}

TEST(AwsAsgProviderTest, FactoryValidatesItsInputs) {
  auto transport = std::make_shared<FakeTransport>();
  auto creds = std::make_shared<CountingCredentials>();
  AwsAsgOptions o;
  EXPECT_EQ(ClassifyProviderError(NewAwsAsgProvider(o, transport, creds).error()),
            ProviderErrorKind::kInvalid);  // no region
  o.region = "eu-west-1";
  EXPECT_FALSE(NewAwsAsgProvider(o, nullptr, creds).ok());
  EXPECT_FALSE(NewAwsAsgProvider(o, transport, nullptr).ok());
  auto p = NewAwsAsgProvider(o, transport, creds);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Name(), "aws-asg");
  // The default endpoint is the regional one; SetDesiredSize validates first.
  EXPECT_EQ(ClassifyProviderError((*p)->SetDesiredSize("g", -1)), ProviderErrorKind::kInvalid);
  transport->Respond(200, "<SetDesiredCapacityResponse/>");
  ASSERT_TRUE((*p)->SetDesiredSize("g", 1).ok());
  EXPECT_EQ(transport->last_request().url, "https://autoscaling.eu-west-1.amazonaws.com/");
  EXPECT_NE(transport->last_request().headers.back().second.find("/eu-west-1/autoscaling/"),
            std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
