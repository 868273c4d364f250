#include "scheduler/extender_priorities.h"

#include <algorithm>

namespace gpu_autoscaler::scheduler {

std::vector<int> ExtenderPriorities(std::span<const ExtenderCandidate> candidates) {
  std::vector<int> priorities(candidates.size(), 0);
  int winner = -1;
  int lo = 0;
  int hi = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const ExtenderCandidate& c = candidates[i];
    if (c.score < 0) continue;
    if (winner < 0) {
      lo = hi = c.score;
      winner = static_cast<int>(i);
      continue;
    }
    lo = std::min(lo, c.score);
    hi = std::max(hi, c.score);
    if (PlacesBefore(c, candidates[winner])) winner = static_cast<int>(i);
  }
  if (winner < 0) return priorities;
  constexpr int kSpan = kMaxExtenderPriority - 2;  // the others: 1..9
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int score = candidates[i].score;
    if (score < 0) continue;
    priorities[i] = hi == lo ? kMaxExtenderPriority - 1 : 1 + (score - lo) * kSpan / (hi - lo);
  }
  priorities[winner] = kMaxExtenderPriority;
  return priorities;
}

}  // namespace gpu_autoscaler::scheduler
