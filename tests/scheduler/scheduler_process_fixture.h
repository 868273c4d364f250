// File: tests/scheduler/scheduler_process_fixture.h
//
// gpu-autoscaler-scheduler as a real process against the embedded API server
// (a separate process too), with helpers to create nodes and pods and to read
// back what the scheduler did: nodes, GPUs, PodScheduled, Events, metrics.
//
// Thread-safety: one test at a time, as gtest runs them.
#pragma once

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "scheduler/scheduler_test_util.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::scheduler {

class SchedulerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("sched");
    dir_ = testing::MakeTempDir("gpa-scheduler");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }
  void TearDown() override {
    if (scheduler_.running()) scheduler_.Kill(SIGTERM);
    std::filesystem::remove_all(dir_);
  }

  void StartScheduler(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler-scheduler"),
                                     "--kubeconfig=" + kubeconfig_,
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--metrics-secure=false",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--bind-address=127.0.0.1",
                                     "--port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(scheduler_.Spawn(args, dir_ + "/scheduler.log"));
    ASSERT_TRUE(testing::WaitFor([&] { return scheduler_.PortFromLog("metrics_port") > 0; }))
        << scheduler_.Log();
    // Ready once its informers have synced.
    const int health = scheduler_.PortFromLog("health_port");
    ASSERT_TRUE(testing::WaitFor([&] {
      return testing::RunCommand(
                 {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(health) + "/readyz"})
                 .exit_code == 0;
    })) << scheduler_.Log();
  }

  void AddNode(const testutil::NodeArgs& args) {
    nlohmann::json node = testutil::NodeJson(args);
    nlohmann::json status = node["status"];
    auto created = client_->Create({kube::resources::kNodes, "", "", ""}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = status;
    auto r = client_->Replace({kube::resources::kNodes, "", args.name, "status"}, *created);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  void AddPod(testutil::PodArgs args, const std::string& scheduler = "gpu-autoscaler") {
    args.ns = ns_;
    nlohmann::json pod = testutil::PodJson(args);
    pod["metadata"].erase("uid");
    pod.erase("status");
    if (!scheduler.empty()) pod["spec"]["schedulerName"] = scheduler;
    auto created = client_->Create({kube::resources::kPods, ns_, "", ""}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  nlohmann::json GetPod(const std::string& name) {
    auto pod = client_->Get({kube::resources::kPods, ns_, name, ""});
    return pod.ok() ? *pod : nlohmann::json();
  }
  std::string NodeOf(const std::string& name) {
    nlohmann::json pod = GetPod(name);
    return pod.is_object() ? pod["spec"].value("nodeName", "") : "";
  }
  std::string GpusOf(const std::string& name) {
    nlohmann::json pod = GetPod(name);
    return pod.is_object() ? pod["metadata"]
                                 .value("annotations", nlohmann::json::object())
                                 .value("gpuautoscaler.io/gpu-indices", "")
                           : "";
  }
  // PodScheduled "<status>: <message>".
  std::string Scheduled(const std::string& name) {
    nlohmann::json pod = GetPod(name);
    if (!pod.is_object()) return "";
    auto c =
        kube::FindCondition(pod["status"].value("conditions", nlohmann::json()), "PodScheduled");
    return c ? c->status + ": " + c->message : "";
  }
  std::vector<nlohmann::json> EventsFor(const std::string& pod, const std::string& reason) {
    std::vector<nlohmann::json> out;
    auto list = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!list.ok()) return out;
    for (const nlohmann::json& e : (*list)["items"]) {
      if (e["involvedObject"].value("name", "") == pod && e.value("reason", "") == reason) {
        out.push_back(e);
      }
    }
    return out;
  }
  std::string Metrics() {
    return testing::RunCommand(
               {"/usr/bin/curl", "-s",
                "http://127.0.0.1:" + std::to_string(scheduler_.PortFromLog("metrics_port")) +
                    "/metrics"})
        .out;
  }
  // POSTs to the extender; returns {status, body}.
  std::pair<int, std::string> Post(const std::string& verb, const std::string& body) {
    const std::string file = dir_ + "/body.json";
    std::ofstream(file) << body;
    testing::CommandResult r = testing::RunCommand(
        {"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "-XPOST", "-H",
         "Content-Type: application/json", "--data-binary", "@" + file,
         "http://127.0.0.1:" + std::to_string(scheduler_.PortFromLog("extender_port")) + "/" +
             verb});
    const size_t nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {0, r.out};
    return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  testing::ChildProcess scheduler_;
  std::string ns_;
  std::string dir_;
  std::string kubeconfig_;
};

}  // namespace gpu_autoscaler::scheduler
