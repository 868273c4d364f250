#include "node-agent/agent_app.h"

#include <prometheus/registry.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "cloud/aws_interruption.h"
#include "cloud/azure_interruption.h"
#include "cloud/cloud_http.h"
#include "cloud/gcp_interruption.h"
#include "kube/config.h"
#include "kube/event_recorder.h"
#include "kube/rest_client.h"
#include "node-agent/agent_config_watch.h"
#include "node-agent/interruption.h"
#include "node-agent/local_pods.h"
#include "node-agent/metrics.h"
#include "node-agent/nvml/nvml_session.h"
#include "node-agent/pod_attributor.h"
#include "node-agent/pressure_evictor.h"
#include "node-agent/qos_controller.h"
#include "node-agent/reporter.h"
#include "reconcile/manager.h"
#include "reconcile/program.h"

namespace gpu_autoscaler::node_agent {
namespace {

using reconcile::Log;
using reconcile::LogLevel;

// The last NVML answer, shared by the poller, the reporter and /metrics.
class SnapshotBox {
 public:
  void Put(std::shared_ptr<const nvml::GpuSnapshot> s) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(s);
  }
  std::shared_ptr<const nvml::GpuSnapshot> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshot_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const nvml::GpuSnapshot> snapshot_;
};

// Sleeps until `deadline` or a stop request; false when stopped.
bool SleepUntil(std::stop_token token, std::chrono::steady_clock::time_point deadline) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  return !cv.wait_until(lock, token, deadline, [] { return false; }) && !token.stop_requested();
}

}  // namespace

Result<std::unique_ptr<cloud::InterruptionSource>> NewInterruptionSource(
    const std::string& cloud_name, const std::string& endpoint, const std::string& node_name) {
  const std::string link_local = "http://169.254.169.254";
  if (cloud_name == "aws") {
    cloud::ImdsOptions options;
    if (!endpoint.empty()) options.endpoint = endpoint;
    GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(options.endpoint));
    return std::unique_ptr<cloud::InterruptionSource>(
        std::make_unique<cloud::AwsInterruptionSource>(transport, options));
  }
  if (cloud_name == "gcp") {
    cloud::GcpPreemptionOptions options;
    if (!endpoint.empty()) options.metadata_endpoint = endpoint;
    GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(options.metadata_endpoint));
    return std::unique_ptr<cloud::InterruptionSource>(
        std::make_unique<cloud::GcpPreemptionSource>(options, transport, RealClock::Instance()));
  }
  if (cloud_name == "azure") {
    cloud::AzureScheduledEventsOptions options;
    if (!endpoint.empty()) options.imds_endpoint = endpoint;
    options.vm_name = node_name;
    GPU_ASSIGN_OR_RETURN(auto transport, cloud::NewCloudTransport(options.imds_endpoint));
    return std::unique_ptr<cloud::InterruptionSource>(
        std::make_unique<cloud::AzureScheduledEventsSource>(options, transport,
                                                            RealClock::Instance()));
  }
  return InvalidArgumentError("unknown interruption source \"" + cloud_name + "\"");
}

Result<QosControllerOptions> MakeQosOptions(const AgentFlags& flags) {
  QosControllerOptions o{.node_name = flags.node_name,
                         .sysfs_root = flags.sysfs_root,
                         .reserved_memory_bytes = flags.reserved_memory_bytes,
                         .reclaim_reserve_millicpu = flags.reclaim_reserve_millicpu,
                         .reclaim_reserve_memory_bytes = flags.reclaim_reserve_memory_bytes,
                         .resync = flags.qos_resync_interval};
  GPU_ASSIGN_OR_RETURN(o.reserved_cpus, ParseCpuList(flags.reserved_cpus));
  GPU_ASSIGN_OR_RETURN(o.driver, ParseCgroupDriver(flags.cgroup_driver));
  if (flags.cgroup_version == "none") return o;
  CgroupVersion version = CgroupVersion::kV2;
  if (flags.cgroup_version == "v1") {
    version = CgroupVersion::kV1;
  } else if (flags.cgroup_version == "auto") {
    auto detected = DetectCgroupVersion(flags.cgroup_root);
    if (!detected.ok()) {
      Log(LogLevel::kWarn,
          "no cgroup file system found; QoS pools are planned and reported "
          "but not written",
          {{"error", detected.error().message()}});
      return o;
    }
    version = *detected;
  }
  o.cgroup = CgroupWriterOptions{.root = flags.cgroup_root,
                                 .driver = o.driver,
                                 .version = version,
                                 .parent = flags.pod_cgroup_parent};
  Log(LogLevel::kInfo, "writing QoS pools to pod cgroups",
      {{"root", flags.cgroup_root},
       {"version", std::string(CgroupVersionName(version))},
       {"driver", flags.cgroup_driver}});
  return o;
}

int RunAgent(const AgentFlags& flags, std::stop_source stop) {
  if (flags.node_name.empty()) {
    Log(LogLevel::kError, "bad flag", {{"error", "--node-name (or $NODE_NAME) is required"}});
    return 2;
  }
  if (Status s =
          reconcile::CheckPlainMetricsOnLoopback(flags.metrics_secure, flags.metrics_bind_address);
      !s.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", s.ToString()}});
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto client = reconcile::ConnectToCluster(flags.kubeconfig, flags.context,
                                            "gpu-autoscaler-node-agent", registry.get());
  if (!client.ok()) {
    Log(LogLevel::kError, "connecting to the API server", {{"error", client.error().ToString()}});
    return 1;
  }
  reconcile::Manager manager({.metrics_bind_address = flags.metrics_bind_address,
                              .health_probe_bind_address = flags.health_probe_bind_address,
                              .metrics_secure = flags.metrics_secure,
                              .metrics_cert_dir = flags.metrics_cert_dir,
                              .leader_election = false,
                              .client = client->get(),
                              .registry = registry});
  AgentMetrics metrics(*registry, flags.node_name);
  SnapshotBox box;
  auto nvml = nvml::NvmlSession::Open({.library_path = flags.nvml_library,
                                       .call_timeout = flags.nvml_timeout,
                                       .retry_interval = std::chrono::seconds(30)});
  if (nvml->state() != nvml::NvmlState::kUp && !nvml->last_error().ok()) {
    Log(LogLevel::kWarn, "NVML is not available; serving without GPU data",
        {{"state", nvml::NvmlStateName(nvml->state())}, {"error", nvml->last_error().message()}});
  }
  std::atomic<bool> reported{false};
  std::atomic<bool> polled{false};  // the reporter waits for the first poll's answer

  manager.Add(reconcile::MakeRunnable(
      "nvml-poller", /*needs_leader_election=*/false, [&](std::stop_token token) {
        nvml::NvmlState logged = nvml->state();
        std::string logged_errors;
        auto next = std::chrono::steady_clock::now();
        while (!token.stop_requested()) {
          const auto start = std::chrono::steady_clock::now();
          auto snap = nvml->Poll();
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          size_t call_errors = 0;
          std::string errors;
          if (snap.ok()) {
            for (const auto& g : snap->gpus) {
              call_errors += g.errors.size();
              for (const auto& e : g.errors)
                errors += (errors.empty() ? "" : "; ") + e;
            }
            box.Put(std::make_shared<const nvml::GpuSnapshot>(std::move(snap).value()));
          }
          polled = true;
          metrics.ObservePoll(seconds, nvml->state() == nvml::NvmlState::kHung, call_errors);
          const nvml::NvmlState state = nvml->state();
          if (state != logged) {
            Log(state == nvml::NvmlState::kUp ? LogLevel::kInfo : LogLevel::kError,
                "NVML state changed",
                {{"from", nvml::NvmlStateName(logged)},
                 {"to", nvml::NvmlStateName(state)},
                 {"error", nvml->last_error().message()}});
            logged = state;
          }
          if (errors != logged_errors) {
            if (!errors.empty()) Log(LogLevel::kWarn, "NVML calls failing", {{"errors", errors}});
            logged_errors = errors;
          }
          next += flags.poll_interval;
          if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now();
          if (!SleepUntil(token, next)) break;
        }
        return Status::Ok();
      }));

  // The pods on this node (shared by pod attribution, the QoS pools and PSI
  // eviction; the QoS pools' runnable starts its informer).
  LocalPodCache local_pods(client->get(), {.node_name = flags.node_name});
  // Pod attribution: the kubelet's device assignments, refreshed on their own
  // thread (a hung kubelet must not hold up NVML polls or scrapes), and each
  // GPU process's cgroup, read at scrape time; a cgroup's pod UID is resolved
  // through local_pods.
  PodAttributor attributor({.socket_path = flags.pod_resources_socket,
                            .call_timeout = flags.pod_resources_timeout,
                            .proc_root = flags.proc_root},
                           [&local_pods](std::string_view uid) -> std::optional<ResolvedPod> {
                             auto pod = local_pods.UidToPod(uid);
                             if (!pod) return std::nullopt;
                             return ResolvedPod{.namespace_name = pod->ns, .name = pod->name};
                           });
  if (flags.pod_resources_socket.empty()) {
    Log(LogLevel::kInfo, "pod attribution through PodResources disabled; using process cgroups",
        {{"proc_root", flags.proc_root}});
  } else {
    manager.Add(reconcile::MakeRunnable(
        "pod-resources", /*needs_leader_election=*/false, [&](std::stop_token token) {
          std::string logged = "unset";
          while (!token.stop_requested()) {
            Status s = attributor.Refresh();
            if (s.message() != logged) {
              if (s.ok()) {
                Log(LogLevel::kInfo, "PodResources answering",
                    {{"socket", flags.pod_resources_socket},
                     {"pods", std::to_string(attributor.status().pods)}});
              } else {
                Log(LogLevel::kWarn, "PodResources unavailable; GPU series lose pod labels",
                    {{"state", std::string(PodResourcesStateName(attributor.status().state))},
                     {"error", s.message()}});
              }
              logged = s.message();
            }
            if (!SleepUntil(token, std::chrono::steady_clock::now() + flags.pod_resources_interval))
              break;
          }
          return Status::Ok();
        }));
  }

  Reporter reporter(**client, {.node_name = flags.node_name,
                               .nvml_library = flags.nvml_library,
                               .sysfs_root = flags.sysfs_root});
  manager.Add(reconcile::MakeRunnable(
      "reporter", /*needs_leader_election=*/false, [&](std::stop_token token) {
        std::string logged;
        while (!token.stop_requested() && !polled) {
          if (!SleepUntil(token, std::chrono::steady_clock::now() + std::chrono::milliseconds(10)))
            return Status::Ok();
        }
        while (!token.stop_requested()) {
          Status s = reporter.Sync({.snapshot = box.Get(),
                                    .nvml_state = nvml->state(),
                                    .nvml_error = nvml->last_error()});
          metrics.ReportWrite(s.ok());
          if (s.ok()) reported = true;
          if (s.message() != logged) {
            if (!s.ok())
              Log(LogLevel::kError, "writing the NodeResourceReport", {{"error", s.message()}});
            logged = s.message();
          }
          if (!SleepUntil(token, std::chrono::steady_clock::now() + flags.report_interval)) break;
        }
        return Status::Ok();
      }));
  // Spot interruption: poll the cloud's notice and drain before the node goes.
  std::unique_ptr<cloud::InterruptionSource> interruption;
  if (!flags.interruption_source.empty() && flags.interruption_source != "none") {
    auto source =
        NewInterruptionSource(flags.interruption_source, flags.metadata_endpoint, flags.node_name);
    if (!source.ok()) {
      Log(LogLevel::kError, "--interruption-source", {{"error", source.error().ToString()}});
      return 2;
    }
    interruption = std::move(*source);
  }
  auto event_sink = kube::NewRestEventSink(**client);
  kube::EventRecorder recorder(*event_sink,
                               {.component = "gpu-autoscaler-node-agent", .host = flags.node_name});
  InterruptionHandler handler(
      **client, &recorder,
      {.node_name = flags.node_name, .poll_interval = flags.interruption_poll_interval});
  if (interruption) {
    manager.Add(reconcile::MakeRunnable("interruption", /*needs_leader_election=*/false,
                                        [&](std::stop_token token) {
                                          handler.Run(*interruption, token);
                                          return Status::Ok();
                                        }));
  }
  // The QoS pools, kept from local_pods.
  auto qos_options = MakeQosOptions(flags);
  if (!qos_options.ok()) {
    Log(LogLevel::kError, "QoS flags", {{"error", qos_options.error().ToString()}});
    return 2;
  }
  QosMetrics qos_metrics(*registry);
  QosController qos(**client, local_pods, &recorder, &qos_metrics, std::move(qos_options).value());
  manager.Add(reconcile::MakeRunnable(
      "qos-pools", /*needs_leader_election=*/false, [&](std::stop_token token) {
        local_pods.Start();
        while (!local_pods.WaitForSync(token, std::chrono::seconds(30))) {
          if (token.stop_requested()) return Status::Ok();
          Log(LogLevel::kWarn, "waiting for the pods on this node", {{"node", flags.node_name}});
        }
        qos.Run(token);
        local_pods.Stop();
        return Status::Ok();
      }));
  // PSI eviction over the same pods, configured from the agent's ConfigMap.
  auto config_watch =
      AgentConfigWatch::Create(client->get(), &recorder, *registry, flags.config_map);
  if (!config_watch.ok()) {
    Log(LogLevel::kError, "bad flag", {{"error", config_watch.error().ToString()}});
    return 2;
  }
  // PSI and usage files are cgroup v2's; a v1 node's are in its unified hierarchy (PSI
  // only: no usage there, so no pod is picked).
  const std::string v2_root =
      DetectCgroupVersion(flags.cgroup_root).value_or(CgroupVersion::kV1) == CgroupVersion::kV2
          ? flags.cgroup_root
          : flags.cgroup_root + "/unified";
  const CgroupDriver driver =
      ParseCgroupDriver(flags.cgroup_driver).value_or(CgroupDriver::kCgroupfs);
  PressureEvictor evictor(
      **client, &recorder, *registry,
      {.proc_root = flags.proc_root,
       .node_name = flags.node_name,
       .pods =
           [&] {
             return EvictablePodsOf(*local_pods.Snapshot(), [&](const LocalPod& p) {
               return v2_root + "/" + PodCgroupPath(driver, p.qos_class, p.uid);
             });
           }},
      (*config_watch)->current().pressure_eviction);
  (*config_watch)->OnChange([&](const AgentConfig& c) { evictor.SetConfig(c.pressure_eviction); });
  manager.Add(reconcile::MakeRunnable(
      "pressure-eviction", /*needs_leader_election=*/false, [&](std::stop_token token) {
        (*config_watch)->Start();
        local_pods.Start();  // idempotent; the QoS pools start it too
        // The configuration in force before the first round, not the defaults.
        while (!local_pods.WaitForSync(token, std::chrono::seconds(30)) ||
               !(*config_watch)->WaitForSync(token, std::chrono::seconds(30))) {
          if (token.stop_requested()) return Status::Ok();
        }
        evictor.Run(token);
        return Status::Ok();
      }));
  manager.AddReadyzCheck("report", [&] {
    return reported ? Status::Ok() : UnavailableError("NodeResourceReport not written yet");
  });
  manager.AddMetricsHook([&] {
    auto snap = box.Get();
    // While NVML is not up, the GPU series go away rather than repeat stale values.
    const nvml::NvmlState state = nvml->state();
    const PodResourcesStatus pod_resources = attributor.status();
    if (state != nvml::NvmlState::kUp || snap == nullptr) {
      metrics.Render(nullptr, state, nullptr, &pod_resources);
      return;
    }
    const Attribution attribution = attributor.Attribute(*snap);
    metrics.Render(snap.get(), state, &attribution, &pod_resources);
  });

  Status served = manager.Serve();
  if (!served.ok()) {
    Log(LogLevel::kError, "starting HTTP endpoints", {{"error", served.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "starting node agent",
      {{"node", flags.node_name},
       {"nvml_library", flags.nvml_library},
       {"nvml", nvml::NvmlStateName(nvml->state())},
       {"server", (*client)->config().server},
       {"metrics_port", std::to_string(manager.metrics_port())},
       {"health_port", std::to_string(manager.health_port())}});
  Status result = manager.Run(stop.get_token());
  if (!result.ok()) {
    Log(LogLevel::kError, "node agent failed", {{"error", result.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "node agent exited cleanly", {});
  return 0;
}

}  // namespace gpu_autoscaler::node_agent
