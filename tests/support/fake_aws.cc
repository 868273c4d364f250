#include "support/fake_aws.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "cloud/aws_query.h"

namespace gpu_autoscaler::testing {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

constexpr char kAsgNs[] = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
constexpr char kStsNs[] = "https://sts.amazonaws.com/doc/2011-06-15/";

std::string Esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Param(const Params& p, std::string_view name) {
  for (const auto& [k, v] : p)
    if (k == name) return v;
  return "";
}

bool HasParam(const Params& p, std::string_view name) {
  return std::any_of(p.begin(), p.end(), [&](const auto& kv) { return kv.first == name; });
}

std::vector<std::string> Members(const Params& p, const std::string& prefix) {
  std::vector<std::string> out;
  for (int i = 1;; ++i) {
    std::string key = prefix + ".member." + std::to_string(i);
    if (!HasParam(p, key)) return out;
    out.push_back(Param(p, key));
  }
}

std::string RequestId(int n) {
  return "11111111-2222-3333-4444-" + std::to_string(100000000000 + n);
}

std::string Wrap(const std::string& action, const std::string& result_inner, int n) {
  std::string out = "<?xml version=\"1.0\"?>\n<" + action + "Response xmlns=\"" + kAsgNs + "\">\n";
  if (!result_inner.empty())
    out += "  <" + action + "Result>" + result_inner + "</" + action + "Result>\n";
  out += "  <ResponseMetadata><RequestId>" + RequestId(n) + "</RequestId></ResponseMetadata>\n</" +
         action + "Response>\n";
  return out;
}

bool ParseInt(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::stoi(s);
  return true;
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Result<std::unique_ptr<FakeAws>> FakeAws::Start(FakeAwsOptions options) {
  std::unique_ptr<FakeAws> fake(new FakeAws());
  fake->options_ = std::move(options);
  fake->AcceptCredentials(
      {fake->options_.access_key_id, fake->options_.secret_access_key, "", std::nullopt, "fake"});

  WriteLoopbackCertificate(&fake->tls_);
  if (fake->tls_.ca_pem.empty()) return InternalError("fake AWS: no loopback certificate");
  net::HttpServerOptions https;
  https.tls_cert_file = fake->tls_.cert_file;
  https.tls_key_file = fake->tls_.key_file;
  FakeAws* self = fake.get();
  GPU_ASSIGN_OR_RETURN(
      fake->https_,
      net::HttpServer::Start(https, [self](const net::ServerRequest& r, net::ResponseWriter& w) {
        self->HandleQuery(r, w);
      }));
  GPU_ASSIGN_OR_RETURN(fake->imds_, net::HttpServer::Start({}, [self](const net::ServerRequest& r,
                                                                      net::ResponseWriter& w) {
                         self->HandleImds(r, w);
                       }));
  return fake;
}

FakeAws::~FakeAws() {
  ReleaseHung();
  if (https_) https_->Stop();
  if (imds_) imds_->Stop();
}

std::string FakeAws::endpoint() const {
  return "https://127.0.0.1:" + std::to_string(https_->port());
}

std::string FakeAws::imds_endpoint() const {
  return "http://127.0.0.1:" + std::to_string(imds_->port());
}

void FakeAws::AddGroup(FakeAwsGroup group) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& i : group.instances)
    if (i.id.empty()) i.id = NewInstanceId();
  std::string name = group.name;
  groups_[name] = std::move(group);
}

std::optional<FakeAwsGroup> FakeAws::Group(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

void FakeAws::AcceptCredentials(const cloud::AwsCredentials& creds) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_[creds.access_key_id] = creds;
  expired_.erase(creds.access_key_id);
}

void FakeAws::ExpireCredentials(const std::string& access_key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  expired_[access_key_id] = true;
}

void FakeAws::InjectFault(const std::string& action, FakeAwsFault fault, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back({action, {fault, times}});
}

void FakeAws::ReleaseHung() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_hung_ = true;
  }
  hung_cv_.notify_all();
}

void FakeAws::SetSpotInstanceAction(std::optional<std::string> json) {
  std::lock_guard<std::mutex> lock(mu_);
  spot_action_ = std::move(json);
}

void FakeAws::SetRebalanceRecommendation(std::optional<std::string> json) {
  std::lock_guard<std::mutex> lock(mu_);
  rebalance_ = std::move(json);
}

void FakeAws::RevokeImdsTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [token, valid] : imds_tokens_)
    valid = false;
}

int FakeAws::imds_tokens_issued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return imds_tokens_issued_;
}

std::vector<std::string> FakeAws::actions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return actions_;
}

std::vector<std::string> FakeAws::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

Params FakeAws::LastParams(const std::string& action) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_params_.find(action);
  return it == last_params_.end() ? Params{} : it->second;
}

// mu_ held.
FakeAws::Reply FakeAws::Error(int status, const std::string& code, const std::string& message) {
  errors_.push_back(code);
  std::string body = std::string("<ErrorResponse xmlns=\"") + kAsgNs + "\">\n  <Error>\n" +
                     "    <Type>" + (status >= 500 ? "Receiver" : "Sender") + "</Type>\n" +
                     "    <Code>" + Esc(code) + "</Code>\n    <Message>" + Esc(message) +
                     "</Message>\n  </Error>\n  <RequestId>" + RequestId(int(actions_.size())) +
                     "</RequestId>\n</ErrorResponse>\n";
  return {status, std::move(body), {}};
}

void FakeAws::Hang(net::ResponseWriter& w) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!release_hung_ && !w.Cancelled())
    hung_cv_.wait_for(lock, std::chrono::milliseconds(20));
}

void FakeAws::HandleQuery(const net::ServerRequest& req, net::ResponseWriter& w) {
  Params params = cloud::FormDecode(req.body);
  std::string action = Param(params, "Action");
  Reply reply;
  bool hang = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    actions_.push_back(action.empty() ? "(none)" : action);
    last_params_[action] = params;
    if (req.method != "POST" || req.path != "/") {
      reply =
          Error(400, "InvalidAction", "only POST / is served, not " + req.method + " " + req.path);
    } else if (req.Header("Content-Type").substr(0, 33) != "application/x-www-form-urlencoded") {
      reply = Error(400, "MalformedQueryString", "Content-Type must be form-encoded");
    } else if (action == "AssumeRoleWithWebIdentity") {
      reply = Sts(params);
    } else if (auto bad = VerifySignature(req)) {
      reply = *bad;
    } else {
      // Faults apply after authentication, as AWS throttles signed requests.
      bool faulted = false;
      for (auto& [a, f] : faults_) {
        if ((a != action && a != "*") || f.second <= 0) continue;
        --f.second;
        switch (f.first) {
          case FakeAwsFault::kThrottling:
            reply = Error(400, "Throttling", "Rate exceeded");
            break;
          case FakeAwsFault::kResourceContention:
            reply = Error(500, "ResourceContention",
                          "You already have a pending update to an Auto Scaling resource (for "
                          "example, a group, instance, or load balancer).");
            break;
          case FakeAwsFault::kInsufficientCapacity:
            reply = Error(400, "InsufficientInstanceCapacity",
                          "We currently do not have sufficient p4d.24xlarge capacity in the "
                          "Availability Zone you requested (us-east-1a).");
            break;
          case FakeAwsFault::kLimitExceeded:
            reply = Error(400, "LimitExceeded",
                          "You have reached the limit on the number of "
                          "instances for this account.");
            break;
          case FakeAwsFault::kInternalError:
            errors_.push_back("(503)");
            reply = {503, "Service Unavailable", {}};
            break;
          case FakeAwsFault::kHang:
            errors_.push_back("(hang)");
            hang = true;
            break;
        }
        faulted = true;
        break;
      }
      if (faulted) {
        // answered above
      } else if (Param(params, "Version") != "2011-01-01") {
        reply = Error(400, "InvalidParameterValue", "Version must be 2011-01-01");
      } else {
        reply = AutoScaling(action, params);
      }
    }
  }
  if (hang) {
    Hang(w);
    w.Respond(503, "text/plain", "released");
    return;
  }
  w.Respond(reply.status, "text/xml", std::move(reply.body), reply.headers);
}

// mu_ held.
std::optional<FakeAws::Reply> FakeAws::VerifySignature(const net::ServerRequest& req) {
  std::string authz(req.Header("Authorization"));
  const std::string prefix = "AWS4-HMAC-SHA256 Credential=";
  if (!authz.starts_with(prefix))
    return Error(400, "MissingAuthenticationToken", "Request is missing Authentication Token");
  size_t comma1 = authz.find(", SignedHeaders=");
  size_t comma2 = authz.find(", Signature=");
  if (comma1 == std::string::npos || comma2 == std::string::npos || comma2 < comma1)
    return Error(400, "IncompleteSignature", "Authorization header is malformed");
  std::string credential = authz.substr(prefix.size(), comma1 - prefix.size());
  std::string signed_list = authz.substr(comma1 + 16, comma2 - comma1 - 16);
  // Credential=AKID/20260101/us-east-1/autoscaling/aws4_request
  std::vector<std::string> scope;
  for (size_t s = 0; s <= credential.size();) {
    size_t slash = credential.find('/', s);
    if (slash == std::string::npos) slash = credential.size();
    scope.push_back(credential.substr(s, slash - s));
    s = slash + 1;
  }
  if (scope.size() != 5 || scope[4] != "aws4_request")
    return Error(400, "IncompleteSignature", "Credential scope is malformed");
  auto key = keys_.find(scope[0]);
  if (key == keys_.end())
    return Error(403, "InvalidClientTokenId",
                 "The security token included in the request is invalid.");
  if (expired_.count(scope[0]) > 0)
    return Error(403, "ExpiredToken", "The security token included in the request is expired");
  if (scope[2] != options_.region || scope[3] != "autoscaling")
    return Error(403, "SignatureDoesNotMatch",
                 "Credential should be scoped to a valid region "
                 "and the autoscaling service.");
  std::string amz_date(req.Header("X-Amz-Date"));
  if (amz_date.substr(0, 8) != scope[1])
    return Error(403, "SignatureDoesNotMatch",
                 "Date in Credential scope does not match X-Amz-Date");
  std::vector<std::string> names;
  for (size_t s = 0; s <= signed_list.size();) {
    size_t semi = signed_list.find(';', s);
    if (semi == std::string::npos) semi = signed_list.size();
    names.push_back(signed_list.substr(s, semi - s));
    s = semi + 1;
  }
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  if (!has("host") || !has("x-amz-date"))
    return Error(403, "SignatureDoesNotMatch", "host and x-amz-date must be signed");
  std::string token(req.Header("X-Amz-Security-Token"));
  if (token != key->second.session_token)
    return Error(403, "InvalidClientTokenId",
                 "The security token included in the request is invalid.");
  if (!token.empty() && !has("x-amz-security-token"))
    return Error(403, "SignatureDoesNotMatch", "x-amz-security-token must be signed");
  cloud::SigV4Input in{req.method, req.path, req.query, req.headers, req.body};
  std::erase_if(in.headers, [](const auto& h) {
    std::string n = h.first;
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    return n == "authorization";
  });
  auto expected = cloud::SignSigV4(in, names, key->second, {scope[2], scope[3]});
  if (!expected.ok() || *expected != authz) {
    // Like AWS, say what was expected without ever echoing the secret.
    return Error(403, "SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you "
                 "provided. Check your AWS Secret Access Key and signing method.");
  }
  return std::nullopt;
}

// mu_ held.
std::string FakeAws::NewInstanceId() {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "i-%017x", next_instance_++);
  return buf;
}

// mu_ held. Launches up to `count` instances, recording activities.
void FakeAws::Launch(FakeAwsGroup& g, int count) {
  auto& acts = activities_[g.name];
  for (int k = 0; k < count; ++k) {
    std::string aid = "act-" + std::to_string(next_activity_++);
    if (g.capacity >= 0 && int(g.instances.size()) >= g.capacity) {
      acts.push_back(
          {aid, "Failed",
           "We currently do not have sufficient " + g.instance_type +
               " capacity in the Availability Zone you requested (" + g.zone +
               "). Our system will be working on provisioning additional capacity. "
               "Launching EC2 instance failed.",
           "Launching a new EC2 instance.  Status Reason: InsufficientInstanceCapacity"});
      return;
    }
    FakeAwsInstance in{NewInstanceId(), g.zone, "InService"};
    acts.push_back({aid, "Successful", "", "Launching a new EC2 instance: " + in.id});
    g.instances.push_back(std::move(in));
  }
}

// mu_ held.
FakeAws::Reply FakeAws::AutoScaling(const std::string& action, const Params& params) {
  int n = int(actions_.size());
  if (action == "DescribeAutoScalingGroups") {
    std::vector<std::string> names = Members(params, "AutoScalingGroupNames");
    int max_records = 50;
    if (HasParam(params, "MaxRecords") && (!ParseInt(Param(params, "MaxRecords"), &max_records) ||
                                           max_records < 1 || max_records > 100))
      return Error(400, "ValidationError", "MaxRecords must be between 1 and 100");
    std::vector<const FakeAwsGroup*> matched;
    for (const auto& [name, g] : groups_)
      if (names.empty() || std::find(names.begin(), names.end(), name) != names.end())
        matched.push_back(&g);
    int start = 0;
    if (HasParam(params, "NextToken")) {
      std::string tok = Param(params, "NextToken");
      if (!tok.starts_with("page-") || !ParseInt(tok.substr(5), &start) ||
          start >= int(matched.size()))
        return Error(400, "InvalidNextToken", "The token '" + tok + "' is invalid.");
    }
    std::string inner = "\n    <AutoScalingGroups>\n";
    int end = std::min<int>(int(matched.size()), start + max_records);
    for (int i = start; i < end; ++i) {
      const FakeAwsGroup& g = *matched[i];
      inner += "      <member>\n        <AutoScalingGroupName>" + Esc(g.name) +
               "</AutoScalingGroupName>\n        <AutoScalingGroupARN>arn:aws:autoscaling:" +
               options_.region + ":123456789012:autoScalingGroup:uuid:autoScalingGroupName/" +
               Esc(g.name) + "</AutoScalingGroupARN>\n        <MinSize>" + std::to_string(g.min) +
               "</MinSize>\n        <MaxSize>" + std::to_string(g.max) +
               "</MaxSize>\n        <DesiredCapacity>" + std::to_string(g.desired) +
               "</DesiredCapacity>\n        <AvailabilityZones><member>" + g.zone +
               "</member></AvailabilityZones>\n        <Instances>\n";
      for (const FakeAwsInstance& in : g.instances) {
        inner += "          <member>\n            <InstanceId>" + in.id +
                 "</InstanceId>\n            <InstanceType>" + g.instance_type +
                 "</InstanceType>\n            <AvailabilityZone>" + in.zone +
                 "</AvailabilityZone>\n            <LifecycleState>" + in.lifecycle_state +
                 "</LifecycleState>\n            <HealthStatus>Healthy</HealthStatus>\n"
                 "            <ProtectedFromScaleIn>false</ProtectedFromScaleIn>\n"
                 "          </member>\n";
      }
      inner += "        </Instances>\n";
      if (g.all_spot) {
        inner +=
            "        <MixedInstancesPolicy><InstancesDistribution>"
            "<OnDemandBaseCapacity>0</OnDemandBaseCapacity>"
            "<OnDemandPercentageAboveBaseCapacity>0</OnDemandPercentageAboveBaseCapacity>"
            "<SpotAllocationStrategy>price-capacity-optimized</SpotAllocationStrategy>"
            "</InstancesDistribution></MixedInstancesPolicy>\n";
      }
      inner += "        <Tags>\n";
      for (const auto& [k, v] : g.tags) {
        inner += "          <member><ResourceId>" + Esc(g.name) +
                 "</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>" + Esc(k) +
                 "</Key><Value>" + Esc(v) +
                 "</Value><PropagateAtLaunch>true</PropagateAtLaunch></member>\n";
      }
      inner += "        </Tags>\n      </member>\n";
    }
    inner += "    </AutoScalingGroups>\n";
    if (end < int(matched.size()))
      inner += "    <NextToken>page-" + std::to_string(end) + "</NextToken>\n";
    return {200, Wrap(action, inner + "  ", n), {}};
  }
  if (action == "SetDesiredCapacity") {
    std::string name = Param(params, "AutoScalingGroupName");
    int desired = 0;
    if (name.empty() || !ParseInt(Param(params, "DesiredCapacity"), &desired))
      return Error(400, "ValidationError",
                   "AutoScalingGroupName and an integer DesiredCapacity are required");
    std::string honor = Param(params, "HonorCooldown");
    if (!honor.empty() && honor != "true" && honor != "false")
      return Error(400, "ValidationError", "HonorCooldown must be true or false");
    auto it = groups_.find(name);
    if (it == groups_.end())
      return Error(400, "ValidationError",
                   "AutoScalingGroup name not found - AutoScalingGroup '" + name + "' not found");
    FakeAwsGroup& g = it->second;
    if (desired > g.max)
      return Error(400, "ValidationError",
                   "New SetDesiredCapacity value " + std::to_string(desired) +
                       " is above max value " + std::to_string(g.max) +
                       " for the AutoScalingGroup.");
    if (desired < g.min)
      return Error(400, "ValidationError",
                   "New SetDesiredCapacity value " + std::to_string(desired) +
                       " is below min value " + std::to_string(g.min) +
                       " for the AutoScalingGroup.");
    g.desired = desired;
    if (int(g.instances.size()) < desired) Launch(g, desired - int(g.instances.size()));
    while (int(g.instances.size()) > desired)
      g.instances.pop_back();  // newest first
    return {200, Wrap(action, "", n), {}};
  }
  if (action == "TerminateInstanceInAutoScalingGroup") {
    std::string id = Param(params, "InstanceId");
    std::string decrement = Param(params, "ShouldDecrementDesiredCapacity");
    if (id.empty() || id.size() > 19)
      return Error(400, "ValidationError", "InstanceId is required (at most 19 characters)");
    if (decrement != "true" && decrement != "false")
      return Error(400, "ValidationError",
                   "ShouldDecrementDesiredCapacity is required and must be true or false");
    for (auto& [name, g] : groups_) {
      auto in = std::find_if(g.instances.begin(), g.instances.end(),
                             [&](const FakeAwsInstance& i) { return i.id == id; });
      if (in == g.instances.end()) continue;
      if (decrement == "true" && g.desired - 1 < g.min)
        return Error(400, "ValidationError",
                     "Currently, desiredSize equals minSize (" + std::to_string(g.min) +
                         "). Terminating instance without replacement will violate group's min "
                         "size constraint. Either set shouldDecrementDesiredCapacity flag to "
                         "false or lower group's min size.");
      g.instances.erase(in);
      std::string aid = "act-" + std::to_string(next_activity_++);
      std::string description = "Terminating EC2 instance: " + id;
      activities_[name].push_back({aid, "InProgress", "", description});
      if (decrement == "true") {
        --g.desired;
      } else {
        Launch(g, 1);  // the group replaces it
      }
      std::string inner = "\n    <Activity>\n      <ActivityId>" + aid +
                          "</ActivityId>\n      <AutoScalingGroupName>" + Esc(name) +
                          "</AutoScalingGroupName>\n      <Description>" + description +
                          "</Description>\n      <Cause>At " +
                          Rfc3339(std::chrono::system_clock::now()) + " instance " + id +
                          " was taken out of service in response to a "
                          "user request.</Cause>\n      <StartTime>" +
                          Rfc3339(std::chrono::system_clock::now()) +
                          "</StartTime>\n      <StatusCode>InProgress</StatusCode>\n"
                          "      <Progress>0</Progress>\n    </Activity>\n  ";
      return {200, Wrap(action, inner, n), {}};
    }
    return Error(400, "ValidationError",
                 "Instance Id not found - No managed instance found for instance ID: " + id);
  }
  if (action == "DescribeScalingActivities") {
    std::string name = Param(params, "AutoScalingGroupName");
    std::string inner = "\n    <Activities>\n";
    auto it = activities_.find(name);
    if (it != activities_.end()) {
      for (auto a = it->second.rbegin(); a != it->second.rend(); ++a) {
        inner += "      <member><ActivityId>" + a->id + "</ActivityId><AutoScalingGroupName>" +
                 Esc(name) + "</AutoScalingGroupName><Description>" + Esc(a->description) +
                 "</Description><StatusCode>" + a->status_code + "</StatusCode>";
        if (!a->status_message.empty())
          inner += "<StatusMessage>" + Esc(a->status_message) + "</StatusMessage>";
        inner += "<Progress>100</Progress></member>\n";
      }
    }
    inner += "    </Activities>\n  ";
    return {200, Wrap(action, inner, n), {}};
  }
  return Error(400, "InvalidAction",
               "The action " + action + " is not valid for this web service.");
}

// mu_ held.
FakeAws::Reply FakeAws::Sts(const Params& params) {
  if (Param(params, "Version") != "2011-06-15")
    return Error(400, "InvalidParameterValue", "Version must be 2011-06-15");
  if (Param(params, "RoleSessionName").empty())
    return Error(400, "ValidationError", "RoleSessionName is required");
  if (Param(params, "RoleArn") != options_.role_arn)
    return Error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
  if (Param(params, "WebIdentityToken") != options_.web_identity_token)
    return Error(400, "InvalidIdentityToken",
                 "The web identity token that was passed could not "
                 "be validated by AWS.");
  const cloud::AwsCredentials& c = options_.sts_credentials;
  keys_[c.access_key_id] = c;
  expired_.erase(c.access_key_id);
  std::string exp = c.expiration ? Rfc3339(*c.expiration) : "2100-01-01T00:00:00Z";
  std::string body = std::string("<AssumeRoleWithWebIdentityResponse xmlns=\"") + kStsNs +
                     "\">\n  <AssumeRoleWithWebIdentityResult>\n"
                     "    <SubjectFromWebIdentityToken>system:serviceaccount:gpu-autoscaler:"
                     "manager</SubjectFromWebIdentityToken>\n"
                     "    <AssumedRoleUser><Arn>" +
                     Esc(options_.role_arn) + "/" + Esc(Param(params, "RoleSessionName")) +
                     "</Arn><AssumedRoleId>AROAFAKE:" + Esc(Param(params, "RoleSessionName")) +
                     "</AssumedRoleId></AssumedRoleUser>\n    <Credentials>\n      <SessionToken>" +
                     Esc(c.session_token) + "</SessionToken>\n      <SecretAccessKey>" +
                     Esc(c.secret_access_key) + "</SecretAccessKey>\n      <Expiration>" + exp +
                     "</Expiration>\n      <AccessKeyId>" + Esc(c.access_key_id) +
                     "</AccessKeyId>\n    </Credentials>\n"
                     "    <Audience>sts.amazonaws.com</Audience>\n"
                     "  </AssumeRoleWithWebIdentityResult>\n  <ResponseMetadata><RequestId>" +
                     RequestId(int(actions_.size())) +
                     "</RequestId></ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>\n";
  return {200, std::move(body), {}};
}

void FakeAws::HandleImds(const net::ServerRequest& req, net::ResponseWriter& w) {
  std::unique_lock<std::mutex> lock(mu_);
  if (req.path == "/latest/api/token") {
    if (req.method != "PUT") {
      lock.unlock();
      w.Respond(405, "text/plain", "");
      return;
    }
    int ttl = 0;
    if (!ParseInt(std::string(req.Header("X-aws-ec2-metadata-token-ttl-seconds")), &ttl) ||
        ttl < 1 || ttl > 21600) {
      lock.unlock();
      w.Respond(400, "text/plain", "");
      return;
    }
    std::string token = "imds-token-" + std::to_string(++imds_tokens_issued_);
    imds_tokens_[token] = true;
    lock.unlock();
    w.Respond(200, "text/plain", token,
              {{"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(ttl)}});
    return;
  }
  auto tok = imds_tokens_.find(std::string(req.Header("X-aws-ec2-metadata-token")));
  if (req.method != "GET" || tok == imds_tokens_.end() || !tok->second) {
    lock.unlock();
    w.Respond(req.method != "GET" ? 405 : 401, "text/plain", "");
    return;
  }
  std::optional<std::string> body;
  const std::string creds_path = "/latest/meta-data/iam/security-credentials/";
  if (req.path == "/latest/meta-data/spot/instance-action") {
    body = spot_action_;
  } else if (req.path == "/latest/meta-data/events/recommendations/rebalance") {
    body = rebalance_;
  } else if (req.path == creds_path && !options_.imds_role.empty()) {
    body = options_.imds_role;
  } else if (req.path == creds_path + options_.imds_role && !options_.imds_role.empty()) {
    const cloud::AwsCredentials& c = options_.imds_credentials;
    std::string exp = c.expiration ? Rfc3339(*c.expiration) : "2100-01-01T00:00:00Z";
    body = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"" +
           Rfc3339(std::chrono::system_clock::now()) +
           "\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"" + c.access_key_id +
           "\",\n  \"SecretAccessKey\" : \"" + c.secret_access_key + "\",\n  \"Token\" : \"" +
           c.session_token + "\",\n  \"Expiration\" : \"" + exp + "\"\n}";
    keys_[c.access_key_id] = c;
    expired_.erase(c.access_key_id);
  }
  lock.unlock();
  if (!body) {
    w.Respond(404, "text/html", "<?xml version=\"1.0\"?><html>404 - Not Found</html>");
    return;
  }
  w.Respond(200, "text/plain", *body);
}

}  // namespace gpu_autoscaler::testing
