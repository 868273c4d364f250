// File: scheduler/extender_priorities.h
//
// The extender's prioritize answer: the policy's node scores turned into
// kube-scheduler's extender priorities, 0..10.
//
// kube-scheduler adds priority × weight × 10 to its own plugins' scores and
// picks at random among equal totals. FragLookahead's integer scores tie
// often, and standalone breaks those ties by a fixed node order, which packs
// like first-fit; scaling scores alone would hand every tie to kube-scheduler's
// plugins (LeastAllocated spreads). So the node the standalone scheduler would
// pick gets 10 alone, and the others 1..9 by score. With a weight large enough
// that one priority point outweighs the plugins, kube-scheduler then makes
// standalone's choice (docs/scheduler.md has the measurement).
//
//   std::vector<int> p = ExtenderPriorities(candidates);  // one per candidate
//
// Thread-safety: a pure function.
#pragma once

#include <span>
#include <vector>

namespace gpu_autoscaler::scheduler {

struct ExtenderCandidate {
  int score = -1;       // the policy's score; < 0: the pod does not fit here
  double tiebreak = 0;  // autoscale::NodeScore::tiebreak: higher wins equal scores
  int order = 0;        // the node's place in standalone's order: lower wins full ties
};

inline constexpr int kMaxExtenderPriority = 10;  // kube-scheduler's MaxExtenderPriority

// Whether standalone picks `a` over `b`: the higher score, then the higher
// tiebreak, then the lower order. ClusterCache::Select picks by it too, so the
// extender's 10 goes to the node Select would pick.
inline bool PlacesBefore(const ExtenderCandidate& a, const ExtenderCandidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.tiebreak != b.tiebreak) return a.tiebreak > b.tiebreak;
  return a.order < b.order;
}

// Per candidate, in order: 10 for the one standalone would pick (first by
// PlacesBefore), 1..9 for the other fitting ones
// (linear in score between the lowest and the highest; 9 for all when every
// score is equal), 0 where the pod does not fit.
std::vector<int> ExtenderPriorities(std::span<const ExtenderCandidate> candidates);

}  // namespace gpu_autoscaler::scheduler
