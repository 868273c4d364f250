#include "fleet/fleet_controller.h"

#include <algorithm>

#include "kube/error.h"
#include "kube/meta_time.h"
#include "kube/object_codec.h"
#include "kube/resource.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::fleet {
namespace {

using nlohmann::json;
using reconcile::Log;
using reconcile::LogLevel;

std::vector<json> Objects(kube::SharedInformer<kube::GenericObject>& informer) {
  std::vector<json> out;
  for (const auto& obj : informer.store().List()) {
    auto parsed = obj->Parse();
    if (parsed.ok()) out.push_back(std::move(*parsed));
  }
  return out;
}

kube::InformerOptions InformerDefaults(Clock& clock, const std::string& ns = "") {
  kube::InformerOptions o;
  o.clock = &clock;
  o.ns = ns;
  return o;
}

}  // namespace

FleetController::FleetController(kube::RestClient* client, Clock& clock,
                                 FleetControllerOptions options, NodeSelection selection)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      selection_(std::move(selection)),
      factory_(client, InformerDefaults(clock)) {}

FleetController::~FleetController() {
  if (server_) server_->Stop();
  factory_.Stop();
}

Result<std::unique_ptr<FleetController>> FleetController::Start(kube::RestClient* client,
                                                                Clock& clock,
                                                                FleetControllerOptions options) {
  GPU_RETURN_IF_ERROR(ValidateFleetOptions(options.plan));
  GPU_ASSIGN_OR_RETURN(
      NodeSelection selection,
      NodeSelection::Parse(options.node_annotation_selector, options.node_label_selector));
  std::unique_ptr<FleetController> c(
      new FleetController(client, clock, std::move(options), std::move(selection)));
  c->nodes_ = c->factory_.Informer(kube::resources::kNodes, kube::GenericObjectCodec());
  c->pods_ = c->factory_.Informer(kube::resources::kPods, kube::GenericObjectCodec());
  const kube::InformerOptions lease_options = InformerDefaults(clock, kLeaseNamespace);
  c->leases_ =
      c->factory_.Informer(kube::resources::kLeases, kube::GenericObjectCodec(), &lease_options);
  FleetController* self = c.get();
  for (auto* informer : {&c->nodes_, &c->pods_, &c->leases_}) {
    (*informer)->AddEventHandler({.on_add = [self](const auto&) { self->Poke(); },
                                  .on_update = [self](const auto&, const auto&) { self->Poke(); },
                                  .on_delete = [self](const auto&, bool) { self->Poke(); }});
  }
  net::HttpServerOptions http;
  http.bind_address = c->options_.metrics_bind_address;
  http.port = c->options_.metrics_port;
  auto server =
      net::HttpServer::Start(http, [self](const net::ServerRequest& r, net::ResponseWriter& w) {
        if (r.path == "/metrics") {
          w.Respond(200, "text/plain; version=0.0.4; charset=utf-8", self->RenderMetrics());
        } else if (r.path == "/healthz") {
          w.Respond(200, "text/plain", "ok");
        } else {
          w.Respond(404, "text/plain", "not found: try /metrics or /healthz\n");
        }
      });
  if (!server.ok())
    return UnavailableError("fleet metrics server on " + c->options_.metrics_bind_address + ":" +
                            std::to_string(c->options_.metrics_port) + ": " +
                            server.error().message());
  c->server_ = std::move(*server);
  c->factory_.Start();
  return c;
}

int FleetController::metrics_port() const {
  return server_->port();
}

FleetStats FleetController::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void FleetController::Count(int64_t FleetStats::*field, int64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  stats_.*field += n;
}

void FleetController::Poke() {
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

FleetSnapshot FleetController::BuildSnapshot() {
  FleetSnapshot s;
  s.now = clock_.WallNow();
  for (const json& n : Objects(*nodes_)) {
    NodeState node = NodeStateFromJson(n, selection_);
    if (auto it = status_written_.find(node.name); it != status_written_.end()) {
      if (node.ready && node.last_heartbeat && *node.last_heartbeat >= it->second &&
          !node.internal_ip.empty()) {
        status_written_.erase(it);  // the cache has caught up
      } else {
        node.ready = true;
        node.last_heartbeat = it->second;
        if (node.internal_ip.empty()) node.internal_ip = options_.plan.node_ip;
      }
    }
    s.nodes.push_back(std::move(node));
  }
  std::set<std::string> cached_leases;
  for (const json& l : Objects(*leases_)) {
    LeaseState lease = LeaseStateFromJson(l);
    cached_leases.insert(lease.name);
    if (deleted_leases_.count(lease.name)) continue;
    if (auto it = lease_written_.find(lease.name); it != lease_written_.end()) {
      if (lease.renew_time && *lease.renew_time >= it->second) {
        lease_written_.erase(it);
      } else {
        lease.renew_time = it->second;
      }
    }
    s.leases.push_back(std::move(lease));
  }
  std::erase_if(deleted_leases_, [&](const std::string& n) { return !cached_leases.count(n); });
  // A Lease created here that the cache does not show yet.
  for (const auto& [name, when] : lease_written_) {
    if (!cached_leases.count(name)) s.leases.push_back({name, when, true});
  }
  std::set<std::string> cached_pods;
  for (const json& p : Objects(*pods_)) {
    PodState pod = PodStateFromJson(p);
    cached_pods.insert(pod.uid);
    if (deleted_pods_.count(pod.uid)) continue;
    if (auto it = started_.find(pod.uid); it != started_.end()) {
      if (pod.phase == "Running" && !pod.pod_ip.empty()) {
        started_.erase(it);
      } else if (!pod.terminating) {
        pod.phase = "Running";
        pod.pod_ip = it->second;
      }
    }
    s.pods.push_back(std::move(pod));
  }
  std::erase_if(deleted_pods_, [&](const std::string& u) { return !cached_pods.count(u); });
  std::erase_if(started_, [&](const auto& e) { return !cached_pods.count(e.first); });
  stats_.managed_nodes =
      std::count_if(s.nodes.begin(), s.nodes.end(), [](const NodeState& n) { return n.managed; });
  return s;
}

void FleetController::Apply(const FleetPlan& plan, Clock::WallTime now) {
  auto failed = [&](const std::string& what, const kube::Error& e) {
    Count(&FleetStats::write_errors);
    Log(LogLevel::kWarn, "fleet write failed", {{"what", what}, {"error", e.ToString()}});
  };
  for (const LeaseWrite& w : plan.create_leases) {
    auto r =
        client_->Create({kube::resources::kLeases, kLeaseNamespace, w.node, ""},
                        LeaseObject(w.node, w.node_uid, now, options_.plan.lease_duration_seconds));
    if (!r.ok() && !kube::IsAlreadyExists(r.error())) {
      failed("create Lease " + w.node, r.error());
      continue;
    }
    if (r.ok()) {
      Count(&FleetStats::leases_created);
    } else {  // someone made it first: renew it
      auto renewed = client_->Patch({kube::resources::kLeases, kLeaseNamespace, w.node, ""},
                                    kube::PatchType::kMerge, LeaseRenewPatch(now).dump());
      if (!renewed.ok()) {
        failed("renew Lease " + w.node, renewed.error());
        continue;
      }
      Count(&FleetStats::leases_renewed);
    }
    std::lock_guard<std::mutex> l(mu_);
    lease_written_[w.node] = kube::TruncateToMicros(now);
  }
  for (const std::string& node : plan.renew_leases) {
    auto r = client_->Patch({kube::resources::kLeases, kLeaseNamespace, node, ""},
                            kube::PatchType::kMerge, LeaseRenewPatch(now).dump());
    if (!r.ok()) {
      failed("renew Lease " + node, r.error());
      continue;
    }
    Count(&FleetStats::leases_renewed);
    std::lock_guard<std::mutex> l(mu_);
    lease_written_[node] = kube::TruncateToMicros(now);
  }
  for (const std::string& node : plan.delete_leases) {
    auto r = client_->Delete({kube::resources::kLeases, kLeaseNamespace, node, ""});
    if (!r.ok() && !kube::IsNotFound(r.error())) {
      failed("delete Lease " + node, r.error());
      continue;
    }
    Count(&FleetStats::leases_deleted);
    std::lock_guard<std::mutex> l(mu_);
    deleted_leases_.insert(node);
    lease_written_.erase(node);
  }
  for (const NodeStatusWrite& w : plan.node_status) {
    auto r = client_->Patch({kube::resources::kNodes, "", w.node, "status"},
                            kube::PatchType::kMerge, w.patch.dump());
    if (!r.ok()) {
      if (!kube::IsNotFound(r.error())) failed("node status " + w.node, r.error());
      continue;
    }
    Count(&FleetStats::node_status_updates);
    std::lock_guard<std::mutex> l(mu_);
    // FormatTime keeps whole seconds: the cache shows the truncated time.
    status_written_[w.node] = std::chrono::time_point_cast<std::chrono::seconds>(now);
  }
  for (const PodStatusWrite& w : plan.start_pods) {
    auto r = client_->Patch({kube::resources::kPods, w.pod.ns, w.pod.name, "status"},
                            kube::PatchType::kMerge, w.patch.dump());
    if (!r.ok()) {
      if (!kube::IsNotFound(r.error()))
        failed("pod status " + w.pod.ns + "/" + w.pod.name, r.error());
      continue;
    }
    Count(&FleetStats::pods_started);
    std::lock_guard<std::mutex> l(mu_);
    started_[w.pod.uid] = w.pod_ip;
  }
  kube::DeleteOptions now_options;
  now_options.grace_period_seconds = 0;
  for (const PodRef& p : plan.delete_pods) {
    auto r = client_->Delete({kube::resources::kPods, p.ns, p.name, ""}, now_options);
    if (!r.ok() && !kube::IsNotFound(r.error())) {
      failed("delete pod " + p.ns + "/" + p.name, r.error());
      continue;
    }
    Count(&FleetStats::pods_deleted);
    std::lock_guard<std::mutex> l(mu_);
    deleted_pods_.insert(p.uid);
  }
}

Status FleetController::Run(std::stop_token stop) {
  if (!factory_.WaitForSync(stop, options_.sync_timeout)) {
    if (stop.stop_requested()) return Status::Ok();
    return UnavailableError("the Node, Pod and Lease caches did not sync");
  }
  // kube-node-lease exists in every cluster; an empty test server may lack it.
  json ns = {
      {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kLeaseNamespace}}}};
  if (auto r = client_->Create({kube::resources::kNamespaces, "", kLeaseNamespace, ""}, ns);
      !r.ok() && !kube::IsAlreadyExists(r.error()))
    Log(LogLevel::kWarn, "creating namespace kube-node-lease", {{"error", r.error().ToString()}});
  std::stop_callback wake(stop, [this] { Poke(); });
  while (!stop.stop_requested()) {
    FleetPlan plan;
    Clock::WallTime now;
    {
      std::unique_lock<std::mutex> l(mu_);
      dirty_ = false;
      FleetSnapshot snapshot = BuildSnapshot();
      now = snapshot.now;
      plan = DecideFleet(snapshot, options_.plan);
      std::vector<std::string> errors;
      metrics_.Observe(RunningContainers(snapshot, options_.default_usage, &errors,
                                         options_.memory_traces.get()),
                       clock_.Now());
      for (const std::string& e : errors) {
        if (bad_usage_logged_.insert(e).second)
          Log(LogLevel::kWarn, "bad fleet-usage annotation, using the default", {{"pod", e}});
      }
      if (plan.pods_without_ip > 0 && bad_usage_logged_.insert("<no pod IP>").second)
        Log(LogLevel::kWarn, "the pod CIDR is full: pods wait for an address",
            {{"cidr", options_.plan.pod_cidr}});
    }
    if (!plan.empty()) Apply(plan, now);
    std::unique_lock<std::mutex> l(mu_);
    const Clock::TimePoint deadline = clock_.Now() + options_.tick;
    while (!dirty_ && !stop.stop_requested() && clock_.Now() < deadline)
      clock_.WaitUntil(l, cv_, deadline);
  }
  return Status::Ok();
}

std::string FleetController::RenderMetrics() {
  std::lock_guard<std::mutex> l(mu_);
  FleetSnapshot snapshot = BuildSnapshot();
  metrics_.Observe(
      RunningContainers(snapshot, options_.default_usage, nullptr, options_.memory_traces.get()),
      clock_.Now());
  return metrics_.Render();
}

}  // namespace gpu_autoscaler::fleet
