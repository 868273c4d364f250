#include "node-agent/podresources/pod_resources_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "node-agent/podresources/api.grpc.pb.h"

namespace gpu_autoscaler::node_agent::podresources {
namespace {

Status FromGrpc(const std::string& call, const std::string& socket,
                std::chrono::milliseconds timeout, const grpc::Status& s) {
  const std::string where = "PodResources " + call + " on " + socket + ": ";
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::Ok();
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceededError(where + "the kubelet did not answer within " +
                                   std::to_string(timeout.count()) + "ms");
    case grpc::StatusCode::UNIMPLEMENTED:
      return UnimplementedError(where + "the kubelet does not serve it: " + s.error_message());
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ResourceExhaustedError(where + s.error_message());
    default:
      return UnavailableError(where + s.error_message() + " (gRPC code " +
                              std::to_string(static_cast<int>(s.error_code())) + ")");
  }
}

DeviceAssignment FromProto(const v1::ContainerDevices& d) {
  DeviceAssignment out;
  out.resource_name = d.resource_name();
  out.device_ids.assign(d.device_ids().begin(), d.device_ids().end());
  for (const auto& n : d.topology().nodes())
    out.numa_nodes.push_back(n.id());
  return out;
}

}  // namespace

struct PodResourcesClient::Impl {
  PodResourcesOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::PodResourcesLister::Stub> stub;

  // A missing socket is the common case (attribution not set up); say so
  // plainly rather than through gRPC's connect error.
  Status CheckSocket() const {
    struct stat st {};
    if (stat(options.socket_path.c_str(), &st) != 0) {
      return NotFoundError("PodResources socket " + options.socket_path +
                           " not found (mount the kubelet's pod-resources directory)");
    }
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPreconditionError("PodResources socket " + options.socket_path +
                                     " is not a socket");
    }
    return Status::Ok();
  }

  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + options.call_timeout);
  }
};

std::unique_ptr<PodResourcesClient> PodResourcesClient::Create(PodResourcesOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(impl->options.max_message_bytes);
  // Reconnect quickly after a kubelet restart rather than backing off for minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  impl->channel = grpc::CreateCustomChannel("unix://" + impl->options.socket_path,
                                            grpc::InsecureChannelCredentials(), args);
  impl->stub = v1::PodResourcesLister::NewStub(impl->channel);
  return std::unique_ptr<PodResourcesClient>(new PodResourcesClient(std::move(impl)));
}

PodResourcesClient::PodResourcesClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PodResourcesClient::~PodResourcesClient() = default;

const std::string& PodResourcesClient::socket_path() const {
  return impl_->options.socket_path;
}

Result<std::vector<PodDevices>> PodResourcesClient::List() {
  GPU_RETURN_IF_ERROR(impl_->CheckSocket());
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  v1::ListPodResourcesRequest request;
  v1::ListPodResourcesResponse response;
  GPU_RETURN_IF_ERROR(FromGrpc("List", impl_->options.socket_path, impl_->options.call_timeout,
                               impl_->stub->List(&ctx, request, &response)));
  std::vector<PodDevices> pods;
  pods.reserve(static_cast<size_t>(response.pod_resources_size()));
  for (const v1::PodResources& p : response.pod_resources()) {
    PodDevices pod{.namespace_name = p.namespace_(), .name = p.name()};
    for (const v1::ContainerResources& c : p.containers()) {
      ContainerDevices container{.name = c.name()};
      for (const v1::ContainerDevices& d : c.devices())
        container.devices.push_back(FromProto(d));
      container.cpu_ids.assign(c.cpu_ids().begin(), c.cpu_ids().end());
      pod.containers.push_back(std::move(container));
    }
    pods.push_back(std::move(pod));
  }
  return pods;
}

Result<AllocatableResources> PodResourcesClient::GetAllocatableResources() {
  GPU_RETURN_IF_ERROR(impl_->CheckSocket());
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  v1::AllocatableResourcesRequest request;
  v1::AllocatableResourcesResponse response;
  GPU_RETURN_IF_ERROR(FromGrpc("GetAllocatableResources", impl_->options.socket_path,
                               impl_->options.call_timeout,
                               impl_->stub->GetAllocatableResources(&ctx, request, &response)));
  AllocatableResources out;
  for (const v1::ContainerDevices& d : response.devices())
    out.devices.push_back(FromProto(d));
  out.cpu_ids.assign(response.cpu_ids().begin(), response.cpu_ids().end());
  return out;
}

}  // namespace gpu_autoscaler::node_agent::podresources
