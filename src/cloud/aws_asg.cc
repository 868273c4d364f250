#include "cloud/aws_asg.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace gpu_autoscaler::cloud {
namespace {

constexpr std::string_view kAsgVersion = "2011-01-01";

Status Malformed(std::string_view what) {
  return ProviderError(ProviderErrorKind::kUnavailable,
                       "malformed Auto Scaling response: " + std::string(what));
}

// An integer field; `fallback` when the element is absent.
Result<int> IntField(const XmlElement& parent, std::string_view name, int fallback) {
  const XmlElement* e = parent.Child(name);
  if (e == nullptr) return fallback;
  int v = 0;
  auto [end, ec] = std::from_chars(e->text.data(), e->text.data() + e->text.size(), v);
  if (ec != std::errc() || end != e->text.data() + e->text.size() || e->text.empty())
    return Malformed(std::string(name) + " \"" + e->text + "\" is not an integer");
  return v;
}

std::string AsgEndpoint(const AwsAsgOptions& o) {
  if (!o.endpoint.empty()) return o.endpoint;
  std::string host = "https://autoscaling." + o.region + ".amazonaws.com";
  if (o.region.starts_with("cn-")) host += ".cn";
  return host;
}

AwsQueryOptions QueryOptions(const AwsAsgOptions& o) {
  AwsQueryOptions q;
  q.endpoint = AsgEndpoint(o);
  q.scope = {o.region, "autoscaling"};
  q.version = std::string(kAsgVersion);
  q.timeout = o.request_timeout;
  q.retry = o.retry;
  q.clock = o.clock;
  q.sleep = o.sleep;
  q.jitter = o.jitter;
  q.log_name = "aws-asg";
  return q;
}

// What the group's configuration says about every instance's purchase option.
Result<Lifecycle> GroupLifecycle(const XmlElement& g) {
  if (const XmlElement* dist = g.Find("MixedInstancesPolicy/InstancesDistribution")) {
    GPU_ASSIGN_OR_RETURN(int base, IntField(*dist, "OnDemandBaseCapacity", 0));
    GPU_ASSIGN_OR_RETURN(int pct, IntField(*dist, "OnDemandPercentageAboveBaseCapacity", 100));
    if (pct == 100) return Lifecycle::kOnDemand;
    if (pct == 0 && base == 0) return Lifecycle::kSpot;
  }
  if (const XmlElement* tags = g.Child("Tags")) {
    for (const XmlElement* t : tags->Children("member")) {
      if (t->ChildText("Key") != kAwsCapacityTypeTag) continue;
      std::string v = t->ChildText("Value");
      if (v == "spot") return Lifecycle::kSpot;
      if (v == "on-demand") return Lifecycle::kOnDemand;
    }
  }
  return Lifecycle::kUnknown;
}

}  // namespace

std::string AwsProviderId(std::string_view zone, std::string_view instance_id) {
  return "aws:///" + std::string(zone) + "/" + std::string(instance_id);
}

Result<std::string> AwsInstanceIdFromProviderId(std::string_view provider_id) {
  auto invalid = [&](std::string_view why) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "providerID \"" + std::string(provider_id) + "\" " + std::string(why));
  };
  if (!provider_id.starts_with("aws://"))
    return invalid("is not an AWS providerID (aws:///<zone>/<id>)");
  std::string_view rest = provider_id.substr(6);
  size_t slash = rest.rfind('/');
  std::string_view id = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
  if (!id.starts_with("i-") || id.size() < 3 || id.size() > 19 ||
      !std::all_of(id.begin() + 2, id.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return invalid("does not end in an EC2 instance ID");
  return std::string(id);
}

Result<std::vector<NodeGroup>> ParseDescribeAutoScalingGroups(const XmlElement& doc,
                                                              std::string* next_token) {
  const XmlElement* result = doc.Child("DescribeAutoScalingGroupsResult");
  if (result == nullptr) return Malformed("no DescribeAutoScalingGroupsResult");
  if (next_token != nullptr) *next_token = result->ChildText("NextToken");
  std::vector<NodeGroup> groups;
  const XmlElement* list = result->Child("AutoScalingGroups");
  if (list == nullptr) return groups;
  for (const XmlElement* g : list->Children("member")) {
    NodeGroup ng;
    ng.name = g->ChildText("AutoScalingGroupName");
    if (ng.name.empty()) return Malformed("a group without AutoScalingGroupName");
    GPU_ASSIGN_OR_RETURN(ng.min, IntField(*g, "MinSize", 0));
    GPU_ASSIGN_OR_RETURN(ng.max, IntField(*g, "MaxSize", 0));
    GPU_ASSIGN_OR_RETURN(ng.desired, IntField(*g, "DesiredCapacity", 0));
    GPU_ASSIGN_OR_RETURN(Lifecycle lifecycle, GroupLifecycle(*g));
    if (const XmlElement* instances = g->Child("Instances")) {
      for (const XmlElement* i : instances->Children("member")) {
        Instance in;
        in.id = i->ChildText("InstanceId");
        if (in.id.empty()) return Malformed("an instance without InstanceId in " + ng.name);
        in.zone = i->ChildText("AvailabilityZone");
        in.provider_id = AwsProviderId(in.zone, in.id);
        in.state = i->ChildText("LifecycleState");
        in.lifecycle = lifecycle;
        ng.instances.push_back(std::move(in));
      }
    }
    groups.push_back(std::move(ng));
  }
  return groups;
}

Result<std::vector<AsgScalingActivity>> ParseDescribeScalingActivities(const XmlElement& doc) {
  const XmlElement* result = doc.Child("DescribeScalingActivitiesResult");
  if (result == nullptr) return Malformed("no DescribeScalingActivitiesResult");
  std::vector<AsgScalingActivity> out;
  if (const XmlElement* list = result->Child("Activities")) {
    for (const XmlElement* a : list->Children("member")) {
      out.push_back({a->ChildText("ActivityId"), a->ChildText("StatusCode"),
                     a->ChildText("StatusMessage"), a->ChildText("Description"),
                     a->ChildText("Cause")});
    }
  }
  return out;
}

AwsAsgProvider::AwsAsgProvider(const AwsAsgOptions& options,
                               std::shared_ptr<kube::HttpTransport> transport,
                               std::shared_ptr<AwsCredentialsProvider> credentials)
    : client_(std::move(transport), QueryOptions(options), std::move(credentials)),
      options_(options) {}

Result<std::vector<NodeGroup>> AwsAsgProvider::DescribeGroups(
    const std::vector<std::string>& groups) {
  QueryParams base;
  for (size_t i = 0; i < groups.size(); ++i)
    base.emplace_back("AutoScalingGroupNames.member." + std::to_string(i + 1), groups[i]);
  base.emplace_back("MaxRecords", std::to_string(std::clamp(options_.page_size, 1, 100)));
  std::vector<NodeGroup> all;
  std::string token;
  for (int page = 0;; ++page) {
    if (page >= 1000) return Malformed("more than 1000 pages of groups");
    QueryParams params = base;
    if (!token.empty()) params.emplace_back("NextToken", token);
    GPU_ASSIGN_OR_RETURN(XmlElement doc, client_.Call("DescribeAutoScalingGroups", params));
    std::string next;
    GPU_ASSIGN_OR_RETURN(std::vector<NodeGroup> got, ParseDescribeAutoScalingGroups(doc, &next));
    for (NodeGroup& g : got)
      all.push_back(std::move(g));
    if (next.empty()) return all;
    if (next == token) return Malformed("NextToken repeats");
    token = std::move(next);
  }
}

Result<NodeGroup> AwsAsgProvider::Describe(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(std::vector<NodeGroup> groups, DescribeGroups({group}));
  for (NodeGroup& g : groups)
    if (g.name == group) return std::move(g);
  return ProviderError(ProviderErrorKind::kNotFound,
                       "Auto Scaling group \"" + group + "\" not found in " + options_.region);
}

Status AwsAsgProvider::SetDesiredSize(const std::string& group, int desired) {
  if (desired < 0) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "desired size " + std::to_string(desired) + " is negative");
  }
  auto r = client_.Call("SetDesiredCapacity",
                        {{"AutoScalingGroupName", group},
                         {"DesiredCapacity", std::to_string(desired)},
                         {"HonorCooldown", options_.honor_cooldown ? "true" : "false"}});
  if (!r.ok()) return r.error().WithContext("aws-asg " + group);
  spdlog::info("aws-asg: set desired capacity of {} to {}", group, desired);
  return Status::Ok();
}

Status AwsAsgProvider::TerminateInstances(const std::string& group,
                                          const std::vector<std::string>& instance_ids,
                                          bool decrement_desired) {
  if (instance_ids.empty()) return Status::Ok();
  // The Query API terminates by instance ID alone: check membership first so
  // a stale ID never takes down another group's instance.
  GPU_ASSIGN_OR_RETURN(NodeGroup g, Describe(group));
  for (const std::string& id : instance_ids) {
    bool member = std::any_of(g.instances.begin(), g.instances.end(),
                              [&](const Instance& i) { return i.id == id; });
    if (!member) {
      return ProviderError(ProviderErrorKind::kNotFound,
                           "instance " + id + " is not in Auto Scaling group \"" + group + "\"");
    }
  }
  std::vector<std::string> done;
  for (const std::string& id : instance_ids) {
    auto r =
        client_.Call("TerminateInstanceInAutoScalingGroup",
                     {{"InstanceId", id},
                      {"ShouldDecrementDesiredCapacity", decrement_desired ? "true" : "false"}});
    if (!r.ok()) {
      std::string context = "aws-asg " + group + " terminate " + id;
      if (!done.empty()) context += " (already terminated: " + std::to_string(done.size()) + ")";
      return r.error().WithContext(context);
    }
    done.push_back(id);
    spdlog::info("aws-asg: terminating {} in {} (decrement desired: {})", id, group,
                 decrement_desired);
  }
  return Status::Ok();
}

Result<std::string> AwsAsgProvider::InstanceIdFromProviderId(std::string_view provider_id) const {
  return AwsInstanceIdFromProviderId(provider_id);
}

Status AwsAsgProvider::LaunchFailure(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(XmlElement doc,
                       client_.Call("DescribeScalingActivities",
                                    {{"AutoScalingGroupName", group}, {"MaxRecords", "20"}}));
  GPU_ASSIGN_OR_RETURN(std::vector<AsgScalingActivity> activities,
                       ParseDescribeScalingActivities(doc));
  // Newest first; only launches tell whether capacity was there.
  for (const AsgScalingActivity& a : activities) {
    if (!a.description.starts_with("Launching")) continue;
    if (a.status_code != "Failed" && a.status_code != "Cancelled") return Status::Ok();
    ProviderErrorKind kind = ClassifyLaunchFailureMessage(a.status_message);
    if (kind == ProviderErrorKind::kNone) kind = ProviderErrorKind::kUnavailable;
    return ProviderError(
        kind, "aws-asg " + group + ": launch failed (activity " + a.id + "): " + a.status_message);
  }
  return Status::Ok();
}

Result<std::unique_ptr<NodeGroupProvider>> NewAwsAsgProvider(
    const AwsAsgOptions& options, std::shared_ptr<kube::HttpTransport> transport,
    std::shared_ptr<AwsCredentialsProvider> credentials) {
  if (options.region.empty())
    return ProviderError(ProviderErrorKind::kInvalid, "aws-asg: a region is required");
  if (!transport) return ProviderError(ProviderErrorKind::kInvalid, "aws-asg: no HTTP transport");
  if (!credentials) return ProviderError(ProviderErrorKind::kInvalid, "aws-asg: no credentials");
  if (options.request_timeout.count() <= 0)
    return ProviderError(ProviderErrorKind::kInvalid, "aws-asg: the request timeout must be > 0");
  if (options.clock == nullptr)
    return ProviderError(ProviderErrorKind::kInvalid, "aws-asg: no clock");
  return std::unique_ptr<NodeGroupProvider>(
      std::make_unique<AwsAsgProvider>(options, std::move(transport), std::move(credentials)));
}

}  // namespace gpu_autoscaler::cloud
