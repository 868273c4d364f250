// File: src/reconcile/write_result.h
//
// What a reconcile returns when one of its writes to the API server fails.
// A 409 Conflict means the object changed since the cached copy the write
// was based on; most often the cache has not yet seen this controller's own
// last write. Retrying with the next cached copy fixes that, so it is a
// Requeue (rate-limited, not counted as an error). Anything else is a
// TransientError.
//
//   auto written = client.Replace(ref.WithSub("status"), body);
//   if (!written.ok()) return reconcile::WriteFailed("writing status", written.error());
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

#include "kube/error.h"
#include "reconcile/reconciler.h"

namespace gpu_autoscaler::reconcile {

inline ReconcileResult WriteFailed(std::string_view what, const kube::Error& error) {
  std::string message = std::string(what) + ": " + error.ToString();
  if (kube::IsConflict(error)) return Requeue{std::move(message)};
  return TransientError{std::move(message)};
}

}  // namespace gpu_autoscaler::reconcile
