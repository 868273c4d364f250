#include "scheduler/scheduler_app.h"

#include <prometheus/registry.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "kube/config.h"
#include "kube/discovery.h"
#include "kube/event_recorder.h"
#include "kube/meta_time.h"
#include "kube/object_codec.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "net/http_server.h"
#include "reconcile/manager.h"
#include "reconcile/program.h"
#include "scheduler/binder.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/extender.h"
#include "scheduler/metrics.h"
#include "scheduler/standalone.h"

namespace gpu_autoscaler::scheduler {
namespace {

using reconcile::Log;
using reconcile::LogLevel;

constexpr std::string_view kPodGroupIndex = "pod-group";

kube::EventObject PodObject(const kube::PodView& pod) {
  return {.api_version = "v1",
          .kind = "Pod",
          .ns = std::string(pod.ns()),
          .name = std::string(pod.name()),
          .uid = std::string(pod.uid())};
}

// PodScheduled=False on the pod's status, as kube-scheduler writes it.
Status MarkUnschedulable(kube::RestClient& client, const kube::PodView& pod,
                         std::string_view reason, std::string_view message) {
  nlohmann::json patch = {
      {"status",
       {{"conditions",
         {{{"type", "PodScheduled"},
           {"status", "False"},
           {"reason", std::string(reason)},
           {"message", std::string(message)},
           {"lastProbeTime", nullptr},
           {"lastTransitionTime", kube::FormatTime(std::chrono::system_clock::now())}}}}}}};
  kube::ObjectRef ref{kube::resources::kPods, std::string(pod.ns()), std::string(pod.name()),
                      "status"};
  auto reply = client.Patch(ref, kube::PatchType::kStrategicMerge, patch.dump());
  if (!reply.ok()) return UnavailableError(reply.error().message());
  return Status::Ok();
}

// Preemption's eviction of one victim, as kube-scheduler's: the
// DisruptionTarget condition (so the pod's owner and its logs say why it
// went), then a DELETE bound to the victim's UID, so that a pod recreated
// under the same name is not deleted in its place.
Status EvictForPreemption(kube::RestClient& client, std::string_view scheduler_name,
                          const kube::PodView& victim) {
  kube::ObjectRef status{kube::resources::kPods, std::string(victim.ns()),
                         std::string(victim.name()), "status"};
  nlohmann::json patch = {
      {"status",
       {{"conditions",
         {{{"type", "DisruptionTarget"},
           {"status", "True"},
           {"reason", "PreemptionByScheduler"},
           {"message",
            std::string(scheduler_name) + ": preempting to accommodate a higher priority pod"},
           {"lastTransitionTime", kube::FormatTime(std::chrono::system_clock::now())}}}}}}};
  auto marked = client.Patch(status, kube::PatchType::kStrategicMerge, patch.dump());
  if (!marked.ok()) {
    if (kube::IsNotFound(marked.error())) return Status::Ok();
    return UnavailableError("setting DisruptionTarget: " + marked.error().message());
  }
  kube::DeleteOptions options;
  options.precondition_uid = std::string(victim.uid());
  auto deleted = client.Delete(
      kube::ObjectRef{kube::resources::kPods, std::string(victim.ns()), std::string(victim.name())},
      options);
  // NotFound: gone already. Conflict: the UID differs, so that pod is gone too.
  if (!deleted.ok() && !kube::IsNotFound(deleted.error()) && !kube::IsConflict(deleted.error())) {
    return UnavailableError(deleted.error().message());
  }
  return Status::Ok();
}

// status.nominatedNodeName; "" writes null, which clears it.
Status SetNominatedNode(kube::RestClient& client, std::string_view ns, std::string_view name,
                        std::string_view node) {
  nlohmann::json patch = {
      {"status",
       {{"nominatedNodeName",
         node.empty() ? nlohmann::json() : nlohmann::json(std::string(node))}}}};
  auto reply = client.Patch(
      kube::ObjectRef{kube::resources::kPods, std::string(ns), std::string(name), "status"},
      kube::PatchType::kMerge, patch.dump());
  if (!reply.ok() && !kube::IsNotFound(reply.error())) {
    return UnavailableError(reply.error().message());
  }
  return Status::Ok();
}

// Blocks until `token` stops.
void WaitForStop(std::stop_token token) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, token, [] { return false; });
}

}  // namespace

int RunScheduler(const SchedulerFlags& flags, std::stop_source stop) {
  if (flags.mode != "standalone" && flags.mode != "extender") {
    Log(LogLevel::kError, "bad flag", {{"error", "--mode: want standalone or extender"}});
    return 2;
  }
  auto cache = ClusterCache::Create({.policy = flags.policy});
  if (!cache.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", "--policy: " + cache.error().message()}});
    return 2;
  }
  if (Status s =
          reconcile::CheckPlainMetricsOnLoopback(flags.metrics_secure, flags.metrics_bind_address);
      !s.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", s.ToString()}});
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto client =
      reconcile::ConnectToCluster(flags.kubeconfig, flags.context, "gpu-autoscaler-scheduler",
                                  registry.get(), flags.kube_api_qps, flags.kube_api_burst);
  if (!client.ok()) {
    Log(LogLevel::kError, "connecting to the API server", {{"error", client.error().ToString()}});
    return 1;
  }
  kube::RestClient& api = **client;

  const bool standalone = flags.mode == "standalone";
  reconcile::Manager manager({
      .metrics_bind_address = flags.metrics_bind_address,
      .health_probe_bind_address = flags.health_probe_bind_address,
      .metrics_secure = flags.metrics_secure,
      .metrics_cert_dir = flags.metrics_cert_dir,
      .leader_election = flags.leader_elect && standalone,
      .leader_election_namespace = flags.leader_election_namespace,
      .leader_election_id = flags.leader_election_id,
      .client = client->get(),
      .registry = registry,
  });
  SchedulerMetrics metrics(registry.get());
  auto event_sink = kube::NewRestEventSink(api);
  kube::EventRecorder recorder(*event_sink, {.component = "gpu-autoscaler-scheduler",
                                             .host = manager.identity(),
                                             .metrics = registry.get()});
  auto record = [&recorder](const kube::PodView& pod, kube::EventType type, std::string reason,
                            std::string message) {
    recorder.Record(PodObject(pod), type, std::move(reason), std::move(message));
  };
  Binder binder(api);

  kube::InformerFactory informers(client->get());
  auto pods = informers.Informer(kube::resources::kPods, kube::PodViewCodec());
  auto nodes = informers.Informer(kube::resources::kNodes, kube::NodeViewCodec());
  // Preemption (standalone, or the extender's preemptVerb) respects
  // PodDisruptionBudgets where it can.
  std::shared_ptr<kube::SharedInformer<kube::GenericObject>> budgets;
  if (flags.preemption) {
    // policy/v1 from Kubernetes 1.21, policy/v1beta1 before: the preferred one.
    kube::Discovery discovery(api);
    auto pdbs = discovery.Resolve("poddisruptionbudgets.policy");
    if (pdbs.ok()) {
      budgets = informers.Informer(*pdbs, kube::GenericObjectCodec());
    } else {
      Log(LogLevel::kWarn, "preemption will not see PodDisruptionBudgets",
          {{"error", pdbs.error().ToString()}});
    }
  }
  (void)pods->store().AddIndex(kPodGroupIndex,
                               [](const kube::PodView& pod, std::vector<std::string>* values) {
                                 PodGroupRef group = PodGroupOf(pod);
                                 if (!group.key.empty()) values->push_back(group.key);
                               });
  ClusterCache& model = **cache;

  auto find_pod = [&pods, &api](std::string_view ns,
                                std::string_view name) -> std::shared_ptr<const kube::PodView> {
    if (auto pod = pods->store().Get(ns, name)) return pod;
    // The raw body goes straight to the view decoder (no JSON tree in between).
    auto reply = api.Request(
        "GET", kube::ResourcePath({kube::resources::kPods, std::string(ns), std::string(name)}));
    if (!reply.ok()) return nullptr;
    auto decoded = kube::DecodePod(reply->body);
    if (!decoded.ok()) return nullptr;
    return std::make_shared<const kube::PodView>(std::move(decoded).value());
  };

  auto disruption_budgets = [&budgets] {
    std::vector<DisruptionBudget> out;
    if (!budgets || !budgets->HasSynced()) return out;
    for (const auto& object : budgets->store().List()) {
      Result<DisruptionBudget> budget = ParseDisruptionBudget(object->json());
      if (budget.ok()) {
        out.push_back(std::move(budget).value());
      } else {
        Log(LogLevel::kWarn, "ignoring a PodDisruptionBudget",
            {{"error", budget.error().message()}});
      }
    }
    return out;
  };

  std::unique_ptr<StandaloneScheduler> loop;
  if (standalone) {
    loop = std::make_unique<StandaloneScheduler>(
        model,
        StandaloneHooks{
            .get_pod = [&pods](std::string_view ns,
                               std::string_view name) { return pods->store().Get(ns, name); },
            .group_members =
                [&pods](std::string_view ns, std::string_view group) {
                  return pods->store().ByIndex(kPodGroupIndex,
                                               std::string(ns) + "/" + std::string(group));
                },
            .bind = [&binder](const BindRequest& r) { return binder.Bind(r); },
            .mark_unschedulable =
                [&api](const kube::PodView& pod, std::string_view reason,
                       std::string_view message) {
                  return MarkUnschedulable(api, pod, reason, message);
                },
            .record_event = record,
            .evict =
                [&api, &flags](const kube::PodView& victim, const kube::PodView&,
                               std::string_view) {
                  return EvictForPreemption(api, flags.scheduler_name, victim);
                },
            .nominate =
                [&api](std::string_view ns, std::string_view name, std::string_view node) {
                  return SetNominatedNode(api, ns, name, node);
                },
            .disruption_budgets = disruption_budgets},
        StandaloneOptions{.scheduler_name = flags.scheduler_name,
                          .policy_name = flags.policy,
                          .bind_workers = flags.bind_workers,
                          .preemption = flags.preemption,
                          .async_preemption = flags.async_preemption,
                          .async_status_writes = flags.async_status_writes},
        &metrics);
  }
  StandaloneScheduler* loop_ptr = loop.get();

  pods->AddEventHandler(kube::EventHandler<kube::PodView>{
      .on_add =
          [&model, loop_ptr](const std::shared_ptr<const kube::PodView>& pod) {
            model.UpsertPod(pod);
            if (loop_ptr != nullptr) loop_ptr->OnPod(pod);
          },
      .on_update =
          [&model, loop_ptr](const std::shared_ptr<const kube::PodView>& old_pod,
                             const std::shared_ptr<const kube::PodView>& pod) {
            model.UpsertPod(pod);
            if (loop_ptr == nullptr) return;
            loop_ptr->OnPod(pod);
            // A pod that finished frees its resources.
            const bool finished = pod->phase() == kube::PodPhase::kSucceeded ||
                                  pod->phase() == kube::PodPhase::kFailed;
            if (finished && old_pod->phase() != pod->phase()) loop_ptr->OnClusterChange();
          },
      .on_delete =
          [&model, loop_ptr](const std::shared_ptr<const kube::PodView>& pod, bool) {
            model.DeletePod(pod->ns(), pod->name());
            if (loop_ptr != nullptr && !pod->node_name().empty()) loop_ptr->OnClusterChange();
          }});
  nodes->AddEventHandler(kube::EventHandler<kube::NodeView>{
      .on_add =
          [&model, loop_ptr](const std::shared_ptr<const kube::NodeView>& node) {
            model.UpsertNode(node);
            if (loop_ptr != nullptr) loop_ptr->OnClusterChange();
          },
      .on_update =
          [&model, loop_ptr](const std::shared_ptr<const kube::NodeView>& old_node,
                             const std::shared_ptr<const kube::NodeView>& node) {
            model.UpsertNode(node);
            const bool opened = (old_node->unschedulable() && !node->unschedulable()) ||
                                (old_node->ready() != node->ready());
            if (loop_ptr != nullptr && opened) loop_ptr->OnClusterChange();
          },
      .on_delete = [&model](const std::shared_ptr<const kube::NodeView>& node,
                            bool) { model.DeleteNode(node->name()); }});

  manager.Add(reconcile::MakeRunnable("informers", /*needs_leader_election=*/false,
                                      [&](std::stop_token token) {
                                        informers.Start();
                                        WaitForStop(token);
                                        informers.Stop();
                                        return Status::Ok();
                                      }));
  manager.AddReadyzCheck("informers", [&] {
    return pods->HasSynced() && nodes->HasSynced() ? Status::Ok()
                                                   : UnavailableError("informers not synced");
  });

  std::unique_ptr<net::HttpServer> server;
  std::unique_ptr<Extender> extender;
  if (standalone) {
    manager.Add(reconcile::MakeRunnable(
        "standalone-scheduler", /*needs_leader_election=*/true, [&](std::stop_token token) {
          // Decide only on a full picture of the cluster.
          while (!token.stop_requested() && !(pods->HasSynced() && nodes->HasSynced())) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          // The budgets only steer preemption: a role that may not list them
          // must not stop scheduling.
          const auto budgets_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while (!token.stop_requested() && budgets && !budgets->HasSynced() &&
                 std::chrono::steady_clock::now() < budgets_deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          if (budgets && !budgets->HasSynced()) {
            Log(LogLevel::kWarn, "PodDisruptionBudgets not synced after 10 s",
                {{"effect", "preemption goes on without them until they are"}});
          }
          if (!token.stop_requested()) loop_ptr->Run(token);
          return Status::Ok();
        }));
  } else {
    extender = std::make_unique<Extender>(
        model, ExtenderHooks{.bind = [&binder](const BindRequest& r) { return binder.Bind(r); },
                             .find_pod = find_pod,
                             .record_event = record,
                             .disruption_budgets = disruption_budgets,
                             .count_preemption =
                                 [&metrics](std::string_view result, int victims) {
                                   metrics.Preemption(result, victims);
                                 },
                             .policy_name = flags.policy,
                             .preemption = flags.preemption});
    net::HttpServerOptions options;
    options.bind_address = flags.bind_address;
    options.port = flags.port;
    options.tls_cert_file = flags.tls_cert_file;
    options.tls_key_file = flags.tls_key_file;
    options.max_body_bytes = 64 * 1024 * 1024;  // Nodes.items of a large cluster (no cache)
    auto started = net::HttpServer::Start(
        options, [&](const net::ServerRequest& request, net::ResponseWriter& w) {
          const auto begin = std::chrono::steady_clock::now();
          std::string_view verb = request.path;
          if (!verb.empty() && verb.front() == '/') verb.remove_prefix(1);
          if (request.method != "POST") {
            w.Respond(405, "application/json",
                      BindingResultJson("extender verbs are POST " + std::string(request.path)));
            return;
          }
          if (!pods->HasSynced() || !nodes->HasSynced()) {
            w.Respond(503, "application/json",
                      BindingResultJson("gpu-autoscaler-scheduler is still syncing its cache"));
            return;
          }
          ExtenderReply reply = extender->Handle(verb, request.body);
          w.Respond(reply.status, "application/json", std::move(reply.body));
          metrics.ExtenderRequest(
              verb, reply.status,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
          if (verb == "bind" && reply.status == 200) {
            metrics.FragmentationAfterBind([&model] { return model.FragmentationRatio(); });
          }
        });
    if (!started.ok()) {
      Log(LogLevel::kError, "starting the extender server",
          {{"error", started.error().ToString()}});
      return 1;
    }
    server = std::move(started).value();
  }
  manager.AddMetricsHook([&] {
    if (loop_ptr != nullptr) metrics.PendingPods(static_cast<double>(loop_ptr->pending()));
    metrics.Fragmentation(model.FragmentationRatio());
    const CacheStats stats = model.stats();
    metrics.CacheSize(stats.nodes, stats.pods);
    metrics.TargetWorkloadShapes(stats.gpu_shapes, stats.cpu_only_shapes);
  });

  Status served = manager.Serve();
  if (!served.ok()) {
    Log(LogLevel::kError, "starting HTTP endpoints", {{"error", served.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "starting scheduler",
      {{"mode", flags.mode},
       {"policy", flags.policy},
       {"scheduler_name", flags.scheduler_name},
       {"server", (*client)->config().server},
       {"extender_address", server ? flags.bind_address : std::string("-")},
       {"extender_port", server ? std::to_string(server->port()) : std::string("-1")},
       {"metrics_port", std::to_string(manager.metrics_port())},
       {"health_port", std::to_string(manager.health_port())}});
  Status result = manager.Run(stop.get_token());
  if (server) server->Stop();
  loop.reset();
  recorder.Flush(std::chrono::seconds(5));
  if (!result.ok()) {
    Log(LogLevel::kError, "scheduler failed", {{"error", result.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "scheduler exited cleanly", {});
  return 0;
}

}  // namespace gpu_autoscaler::scheduler
