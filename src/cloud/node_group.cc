#include "cloud/node_group.h"

#include <array>

namespace gpu_autoscaler::cloud {

std::string_view LifecycleName(Lifecycle l) {
  switch (l) {
    case Lifecycle::kOnDemand:
      return "on-demand";
    case Lifecycle::kSpot:
      return "spot";
    case Lifecycle::kReserved:
      return "reserved";
    case Lifecycle::kUnknown:
      break;
  }
  return "unknown";
}

std::string_view ProviderErrorKindName(ProviderErrorKind k) {
  switch (k) {
    case ProviderErrorKind::kNone:
      return "None";
    case ProviderErrorKind::kInsufficientCapacity:
      return "InsufficientCapacity";
    case ProviderErrorKind::kQuotaExceeded:
      return "QuotaExceeded";
    case ProviderErrorKind::kThrottled:
      return "Throttled";
    case ProviderErrorKind::kAuth:
      return "Auth";
    case ProviderErrorKind::kNotFound:
      return "NotFound";
    case ProviderErrorKind::kInvalid:
      return "Invalid";
    case ProviderErrorKind::kUnavailable:
      return "Unavailable";
    case ProviderErrorKind::kConflict:
      return "Conflict";
  }
  return "None";
}

namespace {

StatusCode CodeFor(ProviderErrorKind k) {
  switch (k) {
    case ProviderErrorKind::kInsufficientCapacity:
    case ProviderErrorKind::kQuotaExceeded:
    case ProviderErrorKind::kThrottled:
      return StatusCode::kResourceExhausted;
    case ProviderErrorKind::kAuth:
      return StatusCode::kPermissionDenied;
    case ProviderErrorKind::kNotFound:
      return StatusCode::kNotFound;
    case ProviderErrorKind::kInvalid:
      return StatusCode::kInvalidArgument;
    case ProviderErrorKind::kConflict:
      return StatusCode::kAborted;
    case ProviderErrorKind::kUnavailable:
    case ProviderErrorKind::kNone:
      break;
  }
  return StatusCode::kUnavailable;
}

std::string Tag(ProviderErrorKind k) {
  return "[cloud:" + std::string(ProviderErrorKindName(k)) + "]";
}

}  // namespace

Result<int> NodeGroupProvider::CurrentSize(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(NodeGroup now, Describe(group));
  return now.desired;
}

Status NodeGroupProvider::ResizeFrom(const std::string& group, int expected, int desired) {
  GPU_ASSIGN_OR_RETURN(int now, CurrentSize(group));
  if (now != expected) {
    return ProviderError(ProviderErrorKind::kConflict,
                         std::string(Name()) + " " + group + ": desired size is " +
                             std::to_string(now) + ", not the " + std::to_string(expected) +
                             " read before; someone else resized it");
  }
  return SetDesiredSize(group, desired);
}

Status ProviderError(ProviderErrorKind kind, std::string message) {
  if (kind == ProviderErrorKind::kNone) return Status::Ok();
  return Status(CodeFor(kind), Tag(kind) + " " + message);
}

ProviderErrorKind ClassifyProviderError(const Status& status) {
  if (status.ok()) return ProviderErrorKind::kNone;
  static constexpr std::array kKinds = {ProviderErrorKind::kInsufficientCapacity,
                                        ProviderErrorKind::kQuotaExceeded,
                                        ProviderErrorKind::kThrottled,
                                        ProviderErrorKind::kAuth,
                                        ProviderErrorKind::kNotFound,
                                        ProviderErrorKind::kInvalid,
                                        ProviderErrorKind::kUnavailable,
                                        ProviderErrorKind::kConflict};
  for (ProviderErrorKind k : kKinds) {
    if (status.message().find(Tag(k)) != std::string::npos) return k;
  }
  switch (status.code()) {
    case StatusCode::kNotFound:
      return ProviderErrorKind::kNotFound;
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
      return ProviderErrorKind::kAuth;
    case StatusCode::kInvalidArgument:
      return ProviderErrorKind::kInvalid;
    case StatusCode::kAborted:
      return ProviderErrorKind::kConflict;
    default:
      return ProviderErrorKind::kUnavailable;
  }
}

std::string_view InterruptionKindName(InterruptionNotice::Kind k) {
  switch (k) {
    case InterruptionNotice::Kind::kSpotInterruption:
      return "SpotInterruption";
    case InterruptionNotice::Kind::kRebalanceRecommendation:
      return "RebalanceRecommendation";
    case InterruptionNotice::Kind::kPreempted:
      return "Preempted";
    case InterruptionNotice::Kind::kScheduledPreempt:
      return "ScheduledPreempt";
  }
  return "SpotInterruption";
}

}  // namespace gpu_autoscaler::cloud
