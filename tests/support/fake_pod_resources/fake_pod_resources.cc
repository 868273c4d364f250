#include "support/fake_pod_resources/fake_pod_resources.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "node-agent/podresources/api.grpc.pb.h"

namespace gpu_autoscaler::testing {

namespace pr = node_agent::podresources;

namespace {

void ToProto(const pr::DeviceAssignment& d, v1::ContainerDevices* out) {
  out->set_resource_name(d.resource_name);
  for (const auto& id : d.device_ids)
    out->add_device_ids(id);
  for (int64_t n : d.numa_nodes)
    out->mutable_topology()->add_nodes()->set_id(n);
}

class Service final : public v1::PodResourcesLister::Service {
 public:
  grpc::Status List(grpc::ServerContext*, const v1::ListPodResourcesRequest*,
                    v1::ListPodResourcesResponse* response) override {
    std::unique_lock<std::mutex> lock(mu);
    ++list_calls;
    cv.wait(lock, [&] { return !hang || stopping; });
    for (const auto& pod : data.pods) {
      v1::PodResources* p = response->add_pod_resources();
      p->set_name(pod.name);
      p->set_namespace_(pod.namespace_name);
      for (const auto& c : pod.containers) {
        v1::ContainerResources* cr = p->add_containers();
        cr->set_name(c.name);
        for (const auto& d : c.devices)
          ToProto(d, cr->add_devices());
        for (int64_t cpu : c.cpu_ids)
          cr->add_cpu_ids(cpu);
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status GetAllocatableResources(grpc::ServerContext*, const v1::AllocatableResourcesRequest*,
                                       v1::AllocatableResourcesResponse* response) override {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !hang || stopping; });
    for (const auto& d : data.allocatable.devices)
      ToProto(d, response->add_devices());
    for (int64_t cpu : data.allocatable.cpu_ids)
      response->add_cpu_ids(cpu);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::condition_variable cv;
  FakePodResourcesData data;
  bool hang = false;
  bool stopping = false;
  int list_calls = 0;
};

Result<std::vector<pr::DeviceAssignment>> DevicesFromJson(const nlohmann::json& list,
                                                          const std::string& where) {
  std::vector<pr::DeviceAssignment> out;
  if (!list.is_array()) return InvalidArgumentError(where + ": want an array");
  for (const auto& d : list) {
    if (!d.is_object() || !d.contains("resource") || !d["resource"].is_string()) {
      return InvalidArgumentError(where + ": each device wants a \"resource\" string");
    }
    pr::DeviceAssignment a{.resource_name = d["resource"].get<std::string>()};
    for (const auto& id : d.value("ids", nlohmann::json::array())) {
      if (!id.is_string()) return InvalidArgumentError(where + ": ids are strings");
      a.device_ids.push_back(id.get<std::string>());
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Result<FakePodResourcesData> ParsePodResourcesJson(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("pod resources: not a JSON object");
  }
  FakePodResourcesData data;
  for (const auto& p : doc.value("pods", nlohmann::json::array())) {
    if (!p.is_object()) return InvalidArgumentError("pods: want objects");
    pr::PodDevices pod{.namespace_name = p.value("namespace", ""), .name = p.value("name", "")};
    for (const auto& c : p.value("containers", nlohmann::json::array())) {
      if (!c.is_object()) return InvalidArgumentError("containers: want objects");
      pr::ContainerDevices container{.name = c.value("name", "")};
      GPU_ASSIGN_OR_RETURN(container.devices,
                           DevicesFromJson(c.value("devices", nlohmann::json::array()),
                                           "pods." + pod.name + ".devices"));
      pod.containers.push_back(std::move(container));
    }
    data.pods.push_back(std::move(pod));
  }
  GPU_ASSIGN_OR_RETURN(
      data.allocatable.devices,
      DevicesFromJson(doc.value("allocatable", nlohmann::json::array()), "allocatable"));
  return data;
}

struct FakePodResourcesServer::Impl {
  std::string socket_path;
  Service service;
  std::unique_ptr<grpc::Server> server;
};

Result<std::unique_ptr<FakePodResourcesServer>> FakePodResourcesServer::Start(
    const std::string& socket_path) {
  auto impl = std::make_unique<Impl>();
  impl->socket_path = socket_path;
  unlink(socket_path.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&impl->service);
  impl->server = builder.BuildAndStart();
  if (!impl->server) return UnavailableError("fake PodResources: cannot listen on " + socket_path);
  return std::unique_ptr<FakePodResourcesServer>(new FakePodResourcesServer(std::move(impl)));
}

FakePodResourcesServer::FakePodResourcesServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

FakePodResourcesServer::~FakePodResourcesServer() {
  {
    std::lock_guard<std::mutex> lock(impl_->service.mu);
    impl_->service.stopping = true;
  }
  impl_->service.cv.notify_all();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  unlink(impl_->socket_path.c_str());
}

void FakePodResourcesServer::Set(FakePodResourcesData data) {
  std::lock_guard<std::mutex> lock(impl_->service.mu);
  impl_->service.data = std::move(data);
}

void FakePodResourcesServer::SetPods(std::vector<pr::PodDevices> pods) {
  std::lock_guard<std::mutex> lock(impl_->service.mu);
  impl_->service.data.pods = std::move(pods);
}

void FakePodResourcesServer::SetHang(bool hang) {
  {
    std::lock_guard<std::mutex> lock(impl_->service.mu);
    impl_->service.hang = hang;
  }
  impl_->service.cv.notify_all();
}

int FakePodResourcesServer::list_calls() const {
  std::lock_guard<std::mutex> lock(impl_->service.mu);
  return impl_->service.list_calls;
}

const std::string& FakePodResourcesServer::socket_path() const {
  return impl_->socket_path;
}

}  // namespace gpu_autoscaler::testing
