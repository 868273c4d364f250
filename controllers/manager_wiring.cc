#include "controllers/manager_wiring.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "controllers/budget_controller.h"
#include "controllers/controller_selection.h"
#include "controllers/cost_metering.h"
#include "controllers/custom_metrics_server.h"
#include "controllers/gpu_node_pool_controller.h"
#include "controllers/manager_config.h"
#include "controllers/node_gpu_inventory.h"
#include "controllers/profile_pod_events.h"
#include "controllers/reschedule_controller.h"
#include "controllers/secret_data.h"
#include "controllers/service_profile_controller.h"
#include "controllers/sharing_policy_controller.h"
#include "cost/notify.h"
#include "cost/pricing.h"
#include "cost/store_factory.h"
#include "cost/utilization.h"
#include "kube/config.h"
#include "kube/error.h"
#include "kube/event_recorder.h"
#include "kube/indexer.h"
#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "reconcile/controller.h"
#include "reconcile/informer_source.h"
#include "reconcile/manager.h"
#include "reconcile/program.h"

namespace gpu_autoscaler::controllers {
namespace {

using reconcile::Log;
using reconcile::LogLevel;

constexpr std::string_view kConfigMapKey = "config.yaml";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::shared_ptr<const cost::PricingSource>> BuildPricing(const std::string& overrides,
                                                                std::string_view source) {
  auto pricing = cost::CatalogPricingSource::Builtin();
  if (!pricing.ok()) return pricing.error();
  if (!overrides.empty()) {
    GPU_RETURN_IF_ERROR((*pricing)->ApplyOverride(overrides, source));
  }
  return std::shared_ptr<const cost::PricingSource>(std::move(*pricing));
}

// "NS/NAME" or "NS/NAME/KEY".
std::vector<std::string> SplitSlash(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

Result<std::string> ReadSecretKey(kube::RestClient& client, const std::string& ref) {
  auto parts = SplitSlash(ref);
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
    return InvalidArgumentError("--cost-db-secret: want NAMESPACE/NAME/KEY, got \"" + ref + "\"");
  auto secret = SecretData::Read(client, parts[0], parts[1]);
  if (!secret.ok()) return secret.error().WithContext("--cost-db-secret");
  auto url = secret->Value(parts[2]);
  if (!url.ok()) return url.error().WithContext("--cost-db-secret");
  return *url;
}

// Keeps the configuration that is in force, and applies what a reload may
// change. Reloads come from the file poller and the ConfigMap informer.
class ConfigKeeper {
 public:
  ConfigKeeper(ManagerConfig initial, prometheus::Registry& registry)
      : current_(std::move(initial)),
        reloads_(prometheus::BuildCounter()
                     .Name("gpu_autoscaler_manager_config_reloads_total")
                     .Help("Configuration reloads by source and result (a rejected one keeps "
                           "the last good configuration)")
                     .Register(registry)) {}

  void OnPricing(std::function<void(std::shared_ptr<const cost::PricingSource>)> fn) {
    on_pricing_ = std::move(fn);
  }

  // Parses and applies `text`. A bad version is rejected and nothing changes.
  Status Reload(const std::string& text, const std::string& source, const std::string& kind) {
    auto parsed = ParseManagerConfig(text, source);
    if (!parsed.ok()) {
      reloads_.Add({{"source", kind}, {"result", "rejected"}}).Increment();
      return parsed.error();
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& field : RestartOnlyChanges(current_, *parsed)) {
      Log(LogLevel::kWarn, "configuration change needs a restart; keeping the running value",
          {{"field", field}, {"source", source}});
    }
    if (parsed->cost.pricing_overrides != current_.cost.pricing_overrides) {
      auto pricing = BuildPricing(parsed->cost.pricing_overrides, source + ": cost.pricing");
      if (!pricing.ok()) {
        reloads_.Add({{"source", kind}, {"result", "rejected"}}).Increment();
        return pricing.error();
      }
      if (on_pricing_) on_pricing_(*pricing);
      current_.cost.pricing_overrides = parsed->cost.pricing_overrides;
      Log(LogLevel::kInfo, "pricing reloaded; repricing from the next metered second",
          {{"source", source}});
    }
    reloads_.Add({{"source", kind}, {"result", "applied"}}).Increment();
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  ManagerConfig current_;
  prometheus::Family<prometheus::Counter>& reloads_;
  std::function<void(std::shared_ptr<const cost::PricingSource>)> on_pricing_;
};

// Everything the controllers share, and what keeps their parts alive.
// The manager's own namespace (--namespace, else the leader-election one).
std::string OperatorNamespace(const ManagerFlags& flags) {
  return flags.namespace_name.empty() ? flags.leader_election_namespace : flags.namespace_name;
}

struct Wiring {
  const ManagerFlags& flags;
  ManagerConfig config;
  kube::RestClient& client;
  reconcile::Manager& manager;
  kube::InformerFactory& informers;
  kube::EventRecorder& recorder;
  prometheus::Registry& registry;
  std::function<Result<std::unique_ptr<cost::CostStore>>()> open_store;
  std::shared_ptr<const cost::PricingSource> pricing;
  cost::Notifier notifier;
  ConfigKeeper* config_keeper = nullptr;

  std::shared_ptr<kube::SharedInformer<kube::NodeView>> nodes{};
  std::shared_ptr<kube::SharedInformer<kube::PodView>> pods{};
  std::vector<std::shared_ptr<void>> keep{};  // reconcilers, sources, controllers, loops
  std::vector<std::function<bool()>> synced{};

  std::shared_ptr<kube::SharedInformer<kube::NodeView>> Nodes() {
    if (!nodes) {
      nodes = informers.Informer(kube::resources::kNodes, kube::NodeViewCodec());
      synced.push_back([n = nodes] { return n->HasSynced(); });
    }
    return nodes;
  }
  std::shared_ptr<kube::SharedInformer<kube::PodView>> Pods() {
    if (!pods) {
      pods = informers.Informer(kube::resources::kPods, kube::PodViewCodec());
      synced.push_back([p = pods] { return p->HasSynced(); });
    }
    return pods;
  }
  std::shared_ptr<kube::SharedInformer<kube::GenericObject>> Generic(
      const kube::GroupVersionResource& gvr) {
    auto informer = informers.Informer(gvr, kube::GenericObjectCodec());
    synced.push_back([i = informer] { return i->HasSynced(); });
    return informer;
  }
  // The GPU utilisation source (--prometheus-url or cost.prometheusURL), one
  // for the cost meter and the rescheduler; null when none is configured.
  cost::UtilizationSource* utilization = nullptr;
  bool utilization_made = false;
  cost::UtilizationSource* Utilization() {
    if (utilization_made) return utilization;
    utilization_made = true;
    const std::string url =
        !flags.prometheus_url.empty() ? flags.prometheus_url : config.cost.prometheus_url;
    if (!url.empty()) {
      utilization = Keep(std::make_shared<cost::PrometheusDcgmSource>(
          cost::PrometheusDcgmOptions{.url = url, .selector = config.cost.prometheus_selector}));
    }
    return utilization;
  }
  template <typename T>
  T* Keep(std::shared_ptr<T> part) {
    keep.push_back(part);
    return part.get();
  }
  reconcile::Controller* AddController(const std::string& name, reconcile::Reconciler& r) {
    auto* c = Keep(std::make_shared<reconcile::Controller>(
        reconcile::ControllerOptions{.name = name, .workers = flags.workers, .metrics = &registry},
        r));
    manager.AddController(*c);
    return c;
  }
};

void SetupNodeInventory(Wiring& w) {
  auto nodes = w.Nodes();
  auto pods = w.Pods();
  auto* r = w.Keep(std::make_shared<NodeGpuInventoryReconciler>(nodes->store(), w.registry,
                                                                &w.recorder, &pods->store()));
  auto* c = w.AddController("node-gpu-inventory", *r);
  auto* node_source = w.Keep(std::make_shared<reconcile::InformerSource<kube::NodeView>>(nodes));
  c->For(*node_source);
  c->Watches(*node_source, NodeGpuInventoryReconciler::AllocationMapper());
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::PodView>>(pods)),
             NodeGpuInventoryReconciler::AllocationMapper());
}

void SetupSharingPolicy(Wiring& w) {
  auto pods = w.Pods();
  (void)pods->store().AddIndex(kPodsByPolicyIndex, PolicyIndexFunc());
  auto policies = w.Generic(api::kGpuSharingPolicies);
  auto* r = w.Keep(std::make_shared<SharingPolicyReconciler>(
      policies->store(), pods->store(), w.client, RealClock::Instance(), &w.recorder,
      std::chrono::duration_cast<Clock::Duration>(w.config.sharing_policies.resync), &w.registry));
  auto* c = w.AddController("sharing-policy", *r);
  auto* policy_source =
      w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(policies));
  c->For(*policy_source);
  c->Watches(*policy_source, r->PolicyMapper());
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::PodView>>(pods)),
             r->PodMapper());
}

void SetupCost(Wiring& w) {
  auto nodes = w.Nodes();
  auto pods = w.Pods();
  CostMeteringOptions options{
      .interval = w.config.cost.interval,
      .max_backfill_seconds = w.config.cost.max_backfill_seconds,
      .meter = {.labels = w.config.cost.attribution_labels,
                .share_idle = w.config.cost.share_idle_cost},
      .metrics_top_n = w.config.cost.metrics_top_n,
  };
  options.utilization = w.Utilization();
  options.waste.threshold = w.config.cost.idle_threshold;
  options.waste.window_seconds = w.config.cost.idle_window_seconds;
  kube::EventRecorder* recorder = &w.recorder;
  options.on_idle_event = [recorder](const std::string& pod, const cost::IdleEvent& e,
                                     double hourly) {
    const size_t slash = pod.find('/');
    kube::EventObject object{.api_version = "v1",
                             .kind = "Pod",
                             .ns = pod.substr(0, slash),
                             .name = pod.substr(slash + 1)};
    char cost_text[64];
    std::snprintf(cost_text, sizeof(cost_text), "%.2f", hourly);
    if (e.kind == cost::IdleEvent::Kind::kBecameIdle) {
      recorder->Record(object, kube::EventType::kWarning, "GPUIdle",
                       "allocated GPU under the idle threshold since " +
                           cost::FormatRfc3339(e.since) + "; it costs " + cost_text + " per hour");
    } else if (e.kind == cost::IdleEvent::Kind::kBecameBusy) {
      recorder->Record(object, kube::EventType::kNormal, "GPUBusy",
                       "GPU utilisation is back above the idle threshold");
    }
  };
  auto* loop = w.Keep(std::make_shared<CostMeteringLoop>(nodes->store(), pods->store(),
                                                         w.open_store, w.pricing, w.registry,
                                                         RealClock::Instance(), options));
  if (w.config_keeper != nullptr) {
    w.config_keeper->OnPricing([loop](auto pricing) {
      loop->SetPricing(std::move(pricing));
      loop->MarkInventoryChanged();
    });
  }
  nodes->AddEventHandler(kube::EventHandler<kube::NodeView>{
      .on_add = [loop](const auto&) { loop->MarkInventoryChanged(); },
      .on_update = [loop](const auto&, const auto&) { loop->MarkInventoryChanged(); },
      .on_delete = [loop](const auto&, bool) { loop->MarkInventoryChanged(); }});
  pods->AddEventHandler(kube::EventHandler<kube::PodView>{
      .on_add = [loop](const auto&) { loop->MarkInventoryChanged(); },
      .on_update = [loop](const auto&, const auto&) { loop->MarkInventoryChanged(); },
      .on_delete = [loop](const auto&, bool) { loop->MarkInventoryChanged(); }});
  // Leader only: one writer meters each second. It starts once the caches
  // are synced, so the first second is priced from a full inventory.
  auto synced = w.synced;
  w.manager.Add(reconcile::MakeRunnable(
      "cost-metering", /*needs_leader_election=*/true, [loop, synced](std::stop_token stop) {
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock<std::mutex> lock(mu);
        while (!stop.stop_requested()) {
          bool all = true;
          for (const auto& s : synced)
            all = all && s();
          if (all) break;
          cv.wait_for(lock, stop, std::chrono::milliseconds(50), [] { return false; });
        }
        lock.unlock();
        return loop->Run(stop);
      }));
}

void SetupBudget(Wiring& w) {
  auto budgets = w.Generic(api::kBudgets);
  auto cluster_budgets = w.Generic(api::kClusterBudgets);
  auto namespaces = w.Generic(kube::resources::kNamespaces);  // for namespaceSelector
  auto* r = w.Keep(std::make_shared<BudgetReconciler>(
      budgets->store(), w.client, w.open_store, w.notifier, RealClock::Instance(), &w.recorder,
      w.registry,
      BudgetControllerOptions{.evaluation_period = w.config.budgets.evaluation_period,
                              .spend_refresh = std::min<std::chrono::milliseconds>(
                                  std::chrono::seconds(5), w.config.budgets.evaluation_period),
                              // ClusterBudgets' notification Secrets: the operator's own namespace.
                              .operator_namespace = OperatorNamespace(w.flags),
                              .cluster_budgets = &cluster_budgets->store(),
                              .namespaces = &namespaces->store(),
                              .cluster_name = w.config.budgets.cluster_name,
                              .pagerduty_events_url = w.config.budgets.pagerduty_events_url,
                              .labels = w.config.cost.attribution_labels}));
  auto* c = w.AddController("budget", *r);
  c->For(*w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(budgets)));
  c->For(
      *w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(cluster_budgets)));
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(namespaces)),
             ClusterBudgetsSelectingNamespaces(&cluster_budgets->store()));
}

void SetupServiceProfiles(Wiring& w) {
  auto pods = w.Pods();
  auto nodes = w.Nodes();
  (void)pods->store().AddIndex(kube::kNamespaceIndex, kube::NamespaceIndexFunc<kube::PodView>());
  auto profiles = w.Generic(kServiceProfiles);
  (void)profiles->store().AddIndex(kProfilesByTargetIndex, ProfileTargetIndexFunc());
  const auto& cfg = w.config.profiles;
  std::string url = cfg.prometheus_url;
  if (url.empty()) url = w.flags.prometheus_url;
  if (url.empty()) url = w.config.cost.prometheus_url;
  std::shared_ptr<ProfileUsageSource> usage;
  if (!url.empty()) {
    usage = std::make_shared<PrometheusProfileUsageSource>(
        cost::PrometheusDcgmOptions{.url = url, .selector = w.config.cost.prometheus_selector},
        RealClock::Instance(),
        // Every profile reconciled within one interval shares a poll.
        std::chrono::duration_cast<Clock::Duration>(cfg.interval) / 2);
  }
  auto* r = w.Keep(std::make_shared<ServiceProfileReconciler>(
      profiles->store(), pods->store(), nodes->store(), w.client, usage, RealClock::Instance(),
      &w.recorder,
      ServiceProfileOptions{
          .interval = std::chrono::duration_cast<Clock::Duration>(cfg.interval),
          .checkpoint_interval =
              std::chrono::duration_cast<Clock::Duration>(cfg.checkpoint_interval),
          .updater_interval = std::chrono::duration_cast<Clock::Duration>(cfg.updater_interval),
          .limits = {.min_replicas = cfg.min_replicas,
                     .eviction_tolerance = cfg.eviction_tolerance}}));
  auto* c = w.AddController("service-profile", *r);
  c->For(*w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(profiles)));
  // A pod's add, delete or relevant change reaches the profile whose target owns it.
  c->Watches(*w.Keep(std::make_shared<ProfilePodSource>(pods)),
             ProfilesOwningPod(profiles->store()));
}

void SetupNodePools(Wiring& w) {
  auto nodes = w.Nodes();
  auto pods = w.Pods();
  auto pools = w.Generic(api::kGpuNodePools);
  auto budgets = w.Generic(api::kBudgets);
  auto cluster_budgets = w.Generic(api::kClusterBudgets);
  auto namespaces = w.Generic(kube::resources::kNamespaces);
  auto* r = w.Keep(std::make_shared<GpuNodePoolReconciler>(
      pools->store(), nodes->store(), pods->store(), &budgets->store(), w.client,
      RealClock::Instance(), &w.recorder, w.registry,
      GpuNodePoolOptions{.secret_namespace = OperatorNamespace(w.flags),
                         .cluster_budgets = &cluster_budgets->store(),
                         .namespaces = &namespaces->store()}));
  auto* c = w.AddController("gpunodepool", *r);
  auto* pool_source =
      w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(pools));
  c->For(*pool_source);
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::PodView>>(pods)),
             r->AllPools());
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::NodeView>>(nodes)),
             r->AllPools());
  c->Watches(*w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(budgets)),
             r->AllPools());
}

void SetupRescheduler(Wiring& w) {
  auto nodes = w.Nodes();
  auto pods = w.Pods();
  auto policies = w.Generic(api::kReschedulePolicies);
  std::function<bool()> synced = [nodes, pods] { return nodes->HasSynced() && pods->HasSynced(); };
  auto* r = w.Keep(std::make_shared<RescheduleReconciler>(
      policies->store(), nodes->store(), pods->store(), w.client, RealClock::Instance(),
      &w.recorder, w.Utilization(), std::move(synced)));
  auto* c = w.AddController("rescheduler", *r);
  c->For(*w.Keep(std::make_shared<reconcile::InformerSource<kube::GenericObject>>(policies)));
}

struct ControllerEntry {
  const char* name;
  void (*setup)(Wiring&);
};
// Start order: metering before the budgets that read what it stores.
constexpr ControllerEntry kControllers[] = {
    {"node-gpu-inventory", SetupNodeInventory},
    {"sharing-policy", SetupSharingPolicy},
    {"cost", SetupCost},
    {"budget", SetupBudget},
    {"gpunodepool", SetupNodePools},
    {"rescheduler", SetupRescheduler},
    {"service-profile", SetupServiceProfiles},
};

// Polls the --config file; a changed one is reloaded through `keeper`.
std::unique_ptr<reconcile::Runnable> ConfigFileWatcher(std::string path, ConfigKeeper& keeper) {
  return reconcile::MakeRunnable(
      "config-file-watcher", /*needs_leader_election=*/false,
      [path, &keeper](std::stop_token stop) {
        auto stamp = [&path] {
          struct stat st {};
          if (::stat(path.c_str(), &st) != 0) return std::string();
          return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                 "/" + std::to_string(st.st_size);
        };
        std::string last = stamp();
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock<std::mutex> lock(mu);
        while (!cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; })) {
          if (stop.stop_requested()) break;
          const std::string now = stamp();
          if (now == last || now.empty()) continue;
          last = now;
          auto text = ReadFile(path);
          Status s = text.ok() ? keeper.Reload(*text, path, "file") : text.error();
          if (!s.ok()) {
            Log(LogLevel::kError, "rejected a new configuration file; the last good one stays",
                {{"error", s.ToString()}});
          }
        }
        return Status::Ok();
      });
}

}  // namespace

std::vector<std::string> KnownControllers() {
  std::vector<std::string> names;
  for (const ControllerEntry& e : kControllers)
    names.emplace_back(e.name);
  return names;
}

Status CheckMetricsExposure(const ManagerFlags& flags) {
  return reconcile::CheckPlainMetricsOnLoopback(flags.metrics_secure, flags.metrics_bind_address);
}

int RunManager(const ManagerFlags& flags, std::stop_source stop) {
  auto selected = SelectControllers(flags.controllers, KnownControllers());
  if (!selected.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", selected.error().ToString()}});
    return 2;
  }
  if (Status s = CheckMetricsExposure(flags); !s.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", s.ToString()}});
    return 2;
  }
  ManagerConfig config;
  if (!flags.config_file.empty()) {
    auto text = ReadFile(flags.config_file);
    auto parsed = text.ok() ? ParseManagerConfig(*text, flags.config_file)
                            : Result<ManagerConfig>(text.error());
    if (!parsed.ok()) {
      Log(LogLevel::kError, "loading --config", {{"error", parsed.error().ToString()}});
      return 2;
    }
    config = std::move(*parsed);
  }
  auto pricing = BuildPricing(config.cost.pricing_overrides, "cost.pricing");
  if (!pricing.ok()) {
    Log(LogLevel::kError, "loading pricing", {{"error", pricing.error().ToString()}});
    return 2;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  auto client = reconcile::ConnectToCluster(flags.kubeconfig, flags.context,
                                            "gpu-autoscaler-manager", registry.get());
  if (!client.ok()) {
    Log(LogLevel::kError, "connecting to the API server", {{"error", client.error().ToString()}});
    return 1;
  }

  std::string db = !flags.cost_db.empty() ? flags.cost_db : config.cost.database;
  if (!flags.cost_db_secret.empty()) {
    auto url = ReadSecretKey(**client, flags.cost_db_secret);
    if (!url.ok()) {
      Log(LogLevel::kError, "reading the cost database URL", {{"error", url.error().ToString()}});
      return 1;
    }
    db = *url;
  }
  if (db.empty()) db = "gpu-autoscaler-cost.db";
  const bool uses_store = selected->count("cost") > 0 || selected->count("budget") > 0;
  if (uses_store) {
    // Open once now, so a bad path or an unreachable database is said at start;
    // the controllers reconnect on their own after later outages.
    auto probe = cost::OpenCostStore(db);
    if (!probe.ok()) {
      Log(LogLevel::kWarn, "cost store not available yet; metering and budgets retry each tick",
          {{"db", cost::IsPostgresUrl(db) ? "postgres (URL hidden)" : db},
           {"error", probe.error().ToString()}});
    }
  }

  reconcile::Manager manager({
      .metrics_bind_address = flags.metrics_bind_address,
      .health_probe_bind_address = flags.health_probe_bind_address,
      .metrics_secure = flags.metrics_secure,
      .metrics_cert_dir = flags.metrics_cert_dir,
      .leader_election = flags.leader_elect,
      .leader_election_namespace = flags.leader_election_namespace,
      .leader_election_id = flags.leader_election_id,
      .client = client->get(),
      .registry = registry,
  });

  kube::InformerFactory informers(client->get());
  auto event_sink = kube::NewRestEventSink(**client);
  kube::EventRecorder recorder(*event_sink,
                               {.component = "gpu-autoscaler-manager", .host = manager.identity()});
  ConfigKeeper keeper(config, *registry);

  Wiring w{.flags = flags,
           .config = config,
           .client = **client,
           .manager = manager,
           .informers = informers,
           .recorder = recorder,
           .registry = *registry,
           // Two connections (metering, budgets), each with a modest page cache:
           // the manager's working set is the newest pages.
           .open_store = [db]() { return cost::OpenCostStore(db, /*sqlite_cache_mib=*/16); },
           .pricing = *pricing,
           .notifier = cost::Notifier(),
           .config_keeper = &keeper};
  for (const ControllerEntry& e : kControllers) {
    if (selected->count(e.name) > 0) e.setup(w);
  }
  // The HPA's GPU metrics: every replica serves them (reads only), from the
  // shared pod informer and the meter's utilisation source.
  std::unique_ptr<CustomMetricsServer> custom_metrics;
  std::string cm_host;
  int cm_port = -1;
  if (reconcile::ParseBindAddress(flags.custom_metrics_bind_address, &cm_host, &cm_port).ok() &&
      cm_port >= 0) {
    auto authentication = ResolveCustomMetricsAuthentication(
        {.requestheader_client_ca_file = flags.requestheader_client_ca_file,
         .requestheader_allowed_names = flags.requestheader_allowed_names,
         .requestheader_allowed_names_set = flags.requestheader_allowed_names_set,
         .client_ca_file = flags.client_ca_file},
        **client);
    if (!authentication.ok()) {
      Log(LogLevel::kError, "custom metrics: who may call it",
          {{"error", authentication.error().ToString()}});
      return 1;
    }
    auto started =
        CustomMetricsServer::Start({.bind_address = flags.custom_metrics_bind_address,
                                    .cert_dir = flags.custom_metrics_cert_dir,
                                    .authentication = std::move(*authentication),
                                    .client = client->get()},
                                   w.Pods()->store(), w.Utilization(), RealClock::Instance());
    if (!started.ok()) {
      Log(LogLevel::kError, "starting the custom metrics server",
          {{"error", started.error().ToString()}});
      return 1;
    }
    custom_metrics = std::move(*started);
    Log(LogLevel::kInfo, "serving custom.metrics.k8s.io/v1beta2",
        {{"custom_metrics_port", std::to_string(custom_metrics->port())},
         {"source", w.Utilization() ? std::string(w.Utilization()->name()) : "none"}});
  }

  if (!flags.config_file.empty()) manager.Add(ConfigFileWatcher(flags.config_file, keeper));
  if (!flags.config_configmap.empty()) {
    auto parts = SplitSlash(flags.config_configmap);
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      Log(LogLevel::kError, "bad flag",
          {{"error",
            "--config-configmap: want NAMESPACE/NAME, got \"" + flags.config_configmap + "\""}});
      return 2;
    }
    kube::InformerOptions options;
    options.ns = parts[0];
    options.field_selector = "metadata.name=" + parts[1];
    auto configmaps =
        informers.Informer(kube::resources::kConfigMaps, kube::GenericObjectCodec(), &options);
    auto apply = [&keeper, &recorder, name = flags.config_configmap](
                     const std::shared_ptr<const kube::GenericObject>& obj) {
      auto tree = obj->Parse();
      if (!tree.ok()) return;
      const auto data = tree->value("data", nlohmann::json::object());
      if (!data.contains(kConfigMapKey) || !data[std::string(kConfigMapKey)].is_string()) {
        recorder.Record(kube::EventObject::Of(*tree), kube::EventType::kWarning, "InvalidConfig",
                        "ConfigMap has no data key config.yaml; the last good configuration "
                        "stays in force");
        return;
      }
      Status s = keeper.Reload(data[std::string(kConfigMapKey)].get<std::string>(),
                               "ConfigMap " + name, "configmap");
      if (!s.ok()) {
        Log(LogLevel::kError, "rejected a new configuration; the last good one stays",
            {{"configmap", name}, {"error", s.ToString()}});
        recorder.Record(kube::EventObject::Of(*tree), kube::EventType::kWarning, "InvalidConfig",
                        s.message() + " (the last good configuration stays in force)");
      } else {
        recorder.Record(kube::EventObject::Of(*tree), kube::EventType::kNormal, "ConfigApplied",
                        "configuration applied");
      }
    };
    configmaps->AddEventHandler(kube::EventHandler<kube::GenericObject>{
        .on_add = apply, .on_update = [apply](const auto&, const auto& now) { apply(now); }});
    w.synced.push_back([configmaps] { return configmaps->HasSynced(); });
  }

  // Informers run on every replica, so a new leader starts with warm caches.
  manager.Add(reconcile::MakeRunnable("informers", /*needs_leader_election=*/false,
                                      [&](std::stop_token token) {
                                        informers.Start();
                                        std::mutex mu;
                                        std::condition_variable_any cv;
                                        std::unique_lock<std::mutex> lock(mu);
                                        cv.wait(lock, token, [] { return false; });
                                        informers.Stop();
                                        return Status::Ok();
                                      }));
  manager.AddReadyzCheck("informers", [&w] {
    for (const auto& s : w.synced)
      if (!s()) return UnavailableError("informers not synced");
    return Status::Ok();
  });

  Status served = manager.Serve();
  if (!served.ok()) {
    Log(LogLevel::kError, "starting HTTP endpoints", {{"error", served.ToString()}});
    return 1;
  }
  std::string enabled;
  for (const std::string& name : *selected)
    enabled += (enabled.empty() ? "" : ",") + name;
  Log(LogLevel::kInfo, "starting manager",
      {{"identity", manager.identity()},
       {"server", (*client)->config().server},
       {"controllers", enabled},
       {"leader_elect", flags.leader_elect ? "true" : "false"},
       {"metrics_port", std::to_string(manager.metrics_port())},
       {"health_port", std::to_string(manager.health_port())}});
  Status result = manager.Run(stop.get_token());
  recorder.Flush(std::chrono::seconds(5));
  if (!result.ok()) {
    Log(LogLevel::kError, "manager failed", {{"error", result.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "manager exited cleanly", {});
  return 0;
}

}  // namespace gpu_autoscaler::controllers
