#include "fleet/fleet_plan.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "kube/meta_time.h"

namespace gpu_autoscaler::fleet {
namespace {

using nlohmann::json;

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t ip = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos || dot == 0 || dot > 3) return std::nullopt;
    unsigned octet = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + dot, octet);
    if (ec != std::errc() || end != text.data() + dot || octet > 255) return std::nullopt;
    ip = (ip << 8) | octet;
    text.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return ip;
}

std::string FormatIpv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

struct Cidr {
  uint32_t first = 0;  // first usable address (network + 1)
  uint32_t last = 0;   // last usable address (broadcast - 1)
};

std::optional<Cidr> ParseCidr(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::optional<uint32_t> ip = ParseIpv4(text.substr(0, slash));
  int bits = 0;
  const std::string_view b = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
  if (!ip || ec != std::errc() || end != b.data() + b.size() || bits < 8 || bits > 30)
    return std::nullopt;
  const uint32_t mask = ~uint32_t{0} << (32 - bits);
  const uint32_t network = *ip & mask;
  return Cidr{network + 1, (network | ~mask) - 1};
}

// A string field of a condition; "" when absent or not a string (never throws).
std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Older(const std::optional<Clock::WallTime>& t, Clock::WallTime now, Clock::Duration period) {
  return !t || now - *t >= period;
}

// The conditions the kubelet posts on every heartbeat, and their healthy status.
constexpr std::pair<const char*, const char*> kKubeletConditions[] = {
    {"MemoryPressure", "False"}, {"DiskPressure", "False"}, {"PIDPressure", "False"}};

json HeartbeatConditions(const NodeState& node, const std::string& now) {
  json out = json::array();
  bool seen_ready = false;
  std::set<std::string> seen;
  for (const json& c : node.conditions) {
    if (!c.is_object()) continue;
    json next = c;
    const std::string type = StringField(c, "type");
    seen.insert(type);
    if (type == "Ready") {
      seen_ready = true;
      const bool was_ready = StringField(c, "status") == "True";
      next = {
          {"type", "Ready"},
          {"status", "True"},
          {"reason", "KubeletReady"},
          {"message", "kubelet is posting ready status (gpu-autoscaler fleet)"},
          {"lastHeartbeatTime", now},
          {"lastTransitionTime",
           was_ready && c.contains("lastTransitionTime") ? c["lastTransitionTime"] : json(now)}};
    } else {
      for (const auto& [kubelet_type, healthy] : kKubeletConditions) {
        if (type == kubelet_type) next["lastHeartbeatTime"] = now;
      }
    }
    out.push_back(std::move(next));
  }
  for (const auto& [type, healthy] : kKubeletConditions) {
    if (seen.count(type)) continue;
    out.push_back({{"type", type},
                   {"status", healthy},
                   {"reason", std::string("KubeletHas") + (std::string(type) == "PIDPressure"
                                                               ? "SufficientPID"
                                                               : "No" + std::string(type))},
                   {"lastHeartbeatTime", now},
                   {"lastTransitionTime", now}});
  }
  if (!seen_ready) {
    out.push_back({{"type", "Ready"},
                   {"status", "True"},
                   {"reason", "KubeletReady"},
                   {"message", "kubelet is posting ready status (gpu-autoscaler fleet)"},
                   {"lastHeartbeatTime", now},
                   {"lastTransitionTime", now}});
  }
  return out;
}

json PodRunningPatch(const PodState& pod, const std::string& pod_ip, const std::string& host_ip,
                     const std::string& now) {
  json conditions = json::array();
  for (const char* type : {"Initialized", "Ready", "ContainersReady", "PodScheduled"})
    conditions.push_back({{"type", type}, {"status", "True"}, {"lastTransitionTime", now}});
  json containers = json::array();
  for (const ContainerSpec& c : pod.containers) {
    containers.push_back({{"name", c.name},
                          {"image", c.image},
                          {"imageID", ""},
                          {"ready", true},
                          {"started", true},
                          {"restartCount", 0},
                          {"state", {{"running", {{"startedAt", now}}}}}});
  }
  json status = {{"phase", "Running"},
                 {"hostIP", host_ip},
                 {"hostIPs", json::array({{{"ip", host_ip}}})},
                 {"podIP", pod_ip},
                 {"podIPs", json::array({{{"ip", pod_ip}}})},
                 {"startTime", now},
                 {"conditions", std::move(conditions)},
                 {"containerStatuses", std::move(containers)}};
  if (!pod.init_containers.empty()) {
    json init = json::array();
    for (const ContainerSpec& c : pod.init_containers) {
      init.push_back({{"name", c.name},
                      {"image", c.image},
                      {"imageID", ""},
                      {"ready", true},
                      {"restartCount", 0},
                      {"state",
                       {{"terminated",
                         {{"exitCode", 0},
                          {"reason", "Completed"},
                          {"startedAt", now},
                          {"finishedAt", now}}}}}});
    }
    status["initContainerStatuses"] = std::move(init);
  }
  return {{"status", std::move(status)}};
}

}  // namespace

Status ValidateFleetOptions(const FleetOptions& options) {
  if (!ParseCidr(options.pod_cidr))
    return InvalidArgumentError("pod CIDR \"" + options.pod_cidr +
                                "\": want IPv4 a.b.c.d/n with n from 8 to 30");
  if (!ParseIpv4(options.node_ip))
    return InvalidArgumentError("node IP \"" + options.node_ip + "\": want IPv4 a.b.c.d");
  if (options.lease_duration_seconds <= 0)
    return InvalidArgumentError("lease duration must be positive");
  if (options.lease_renew_interval <= Clock::Duration::zero() ||
      options.node_status_interval <= Clock::Duration::zero())
    return InvalidArgumentError("renewal and status intervals must be positive");
  return Status::Ok();
}

FleetPlan DecideFleet(const FleetSnapshot& snapshot, const FleetOptions& options) {
  FleetPlan plan;
  const Clock::WallTime now = snapshot.now;
  const std::string now_text = kube::FormatTime(now);

  std::map<std::string, const NodeState*> managed;
  for (const NodeState& n : snapshot.nodes)
    if (n.managed) managed[n.name] = &n;
  std::map<std::string, const LeaseState*> leases;
  for (const LeaseState& l : snapshot.leases)
    leases[l.name] = &l;

  for (const auto& [name, node] : managed) {
    auto lease = leases.find(name);
    if (lease == leases.end()) {
      plan.create_leases.push_back({name, node->uid});
    } else if (Older(lease->second->renew_time, now, options.lease_renew_interval)) {
      plan.renew_leases.push_back(name);
    }
    if (!node->ready || node->internal_ip.empty() ||
        Older(node->last_heartbeat, now, options.node_status_interval)) {
      json status = {{"conditions", HeartbeatConditions(*node, now_text)}};
      if (node->internal_ip.empty()) {
        status["addresses"] = json::array({{{"type", "InternalIP"}, {"address", options.node_ip}},
                                           {{"type", "Hostname"}, {"address", name}}});
      }
      plan.node_status.push_back({name, {{"status", std::move(status)}}});
    }
  }
  for (const auto& [name, lease] : leases)
    if (lease->ours && !managed.count(name)) plan.delete_leases.push_back(name);

  // Pod IPs: the lowest free address of the CIDR, skipping every IP in use
  // (pods', and nodes' should the CIDR hold them).
  const std::optional<Cidr> cidr = ParseCidr(options.pod_cidr);
  std::set<uint32_t> used;
  if (std::optional<uint32_t> ip = ParseIpv4(options.node_ip)) used.insert(*ip);
  for (const NodeState& n : snapshot.nodes)
    if (std::optional<uint32_t> ip = ParseIpv4(n.internal_ip)) used.insert(*ip);
  for (const PodState& p : snapshot.pods)
    if (std::optional<uint32_t> ip = ParseIpv4(p.pod_ip)) used.insert(*ip);
  uint64_t next_ip = cidr ? cidr->first : 1;
  auto allocate = [&]() -> std::string {
    if (!cidr) return "";
    while (next_ip <= cidr->last && used.count(static_cast<uint32_t>(next_ip)))
      ++next_ip;
    if (next_ip > cidr->last) return "";
    used.insert(static_cast<uint32_t>(next_ip));
    return FormatIpv4(static_cast<uint32_t>(next_ip++));
  };

  std::vector<const PodState*> pods;
  for (const PodState& p : snapshot.pods)
    if (!p.node.empty() && managed.count(p.node)) pods.push_back(&p);
  std::sort(pods.begin(), pods.end(), [](const PodState* a, const PodState* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  for (const PodState* p : pods) {
    const PodRef ref{p->ns, p->name, p->uid};
    if (p->terminating) {
      plan.delete_pods.push_back(ref);
      continue;
    }
    if (p->phase == "Succeeded" || p->phase == "Failed") continue;
    if (p->phase == "Running" && !p->pod_ip.empty()) continue;
    std::string ip = p->pod_ip.empty() ? allocate() : p->pod_ip;
    if (ip.empty()) {
      ++plan.pods_without_ip;
      continue;
    }
    const NodeState& node = *managed[p->node];
    const std::string host_ip = node.internal_ip.empty() ? options.node_ip : node.internal_ip;
    json patch = PodRunningPatch(*p, ip, host_ip, now_text);
    plan.start_pods.push_back({ref, std::move(ip), std::move(patch)});
  }
  return plan;
}

json LeaseObject(const std::string& node, const std::string& node_uid, Clock::WallTime now,
                 int lease_duration_seconds, const std::string& managed_by) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", node},
                  {"namespace", kLeaseNamespace},
                  {"labels", {{kManagedByLabel, managed_by}}}}},
                {"spec",
                 {{"holderIdentity", node},
                  {"leaseDurationSeconds", lease_duration_seconds},
                  {"renewTime", kube::FormatMicroTime(now)}}}};
  if (!node_uid.empty()) {
    lease["metadata"]["ownerReferences"] =
        json::array({{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", node_uid}}});
  }
  return lease;
}

json LeaseRenewPatch(Clock::WallTime now) {
  return {{"spec", {{"renewTime", kube::FormatMicroTime(now)}}}};
}

}  // namespace gpu_autoscaler::fleet
