// DecideShrink against a MachineSet that deletes as badly as Cluster API
// allows: every small group of Machines, replicas and request is tried, and
// whenever the shrink is allowed, even the worst order of deletion takes
// exactly the Machines asked for; whenever it waits, some order would not.
#include "cloud/cluster_api_shrink.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {
namespace {

using nlohmann::json;

// What the MachineSet deletes once the plan's marks are written and the
// replicas lowered, choosing against us: among the Machines it deletes
// first, those not asked for before ours, then the same among the rest.
// Being deleted already, a Machine still counts and still goes first.
std::vector<std::string> WorstCaseDeletions(std::vector<MachineFacts> machines,
                                            const ShrinkPlan& plan) {
  auto asked = [&](const MachineFacts& m) {
    return std::find(plan.remove.begin(), plan.remove.end(), m.name) != plan.remove.end();
  };
  for (MachineFacts& m : machines) {
    if (std::find(plan.mark.begin(), plan.mark.end(), m.name) != plan.mark.end()) {
      m.marked = m.deleted_first = true;
    }
  }
  std::stable_sort(machines.begin(), machines.end(), [&](const auto& a, const auto& b) {
    return std::make_pair(!a.deleted_first, asked(a)) < std::make_pair(!b.deleted_first, asked(b));
  });
  const int excess = static_cast<int>(machines.size()) - plan.replicas;
  std::vector<std::string> out;
  for (int i = 0; i < excess && i < static_cast<int>(machines.size()); ++i)
    out.push_back(machines[i].name);
  return out;
}

enum class State { kJoined, kNoNode, kMarked, kDeleting, kMarkedAndDeleting };
constexpr State kStates[] = {State::kJoined, State::kNoNode, State::kMarked, State::kDeleting,
                             State::kMarkedAndDeleting};

MachineFacts Facts(int i, State s) {
  MachineFacts f{.name = "m" + std::to_string(i), .provider_id = "p" + std::to_string(i)};
  f.marked = s == State::kMarked || s == State::kMarkedAndDeleting;
  f.being_deleted = s == State::kDeleting || s == State::kMarkedAndDeleting;
  f.deleted_first = s != State::kJoined;
  return f;
}

TEST(DecideShrinkTest, AllowedShrinksDeleteExactlyWhatWasAskedAndRefusalsAreNeeded) {
  int allowed = 0, waited = 0;
  for (int n = 1; n <= 4; ++n) {
    int combos = 1;
    for (int i = 0; i < n; ++i)
      combos *= 5;
    for (int c = 0; c < combos; ++c) {
      std::vector<MachineFacts> machines;
      for (int i = 0, code = c; i < n; ++i, code /= 5)
        machines.push_back(Facts(i, kStates[code % 5]));
      for (int replicas = 0; replicas <= n + 1; ++replicas) {
        for (int subset = 1; subset < (1 << n); ++subset) {
          std::vector<std::string> ids;
          for (int i = 0; i < n; ++i)
            if (subset & (1 << i)) ids.push_back("p" + std::to_string(i));
          auto plan = DecideShrink("g", machines, ids, replicas, /*min_size=*/0);
          const std::string where = "n=" + std::to_string(n) + " combo=" + std::to_string(c) +
                                    " replicas=" + std::to_string(replicas) +
                                    " subset=" + std::to_string(subset);
          if (!plan.ok()) {
            ShrinkPlan anyway;
            for (const std::string& id : ids) {
              const MachineFacts& m = machines[std::stoi(id.substr(1))];
              if (m.being_deleted) continue;
              anyway.remove.push_back(m.name);
              if (!m.marked) anyway.mark.push_back(m.name);
            }
            anyway.replicas = replicas - static_cast<int>(anyway.remove.size());
            if (anyway.replicas < 0) {  // below the minimum size, 0 here
              EXPECT_EQ(ClassifyProviderError(plan.error()), ProviderErrorKind::kInvalid) << where;
              continue;
            }
            ASSERT_EQ(ClassifyProviderError(plan.error()), ProviderErrorKind::kUnavailable)
                << where << ": " << plan.error().message();
            // Needed: had it gone ahead, the worst order misses one asked for.
            const auto gone = WorstCaseDeletions(machines, anyway);
            EXPECT_TRUE(std::any_of(anyway.remove.begin(), anyway.remove.end(),
                                    [&](const std::string& name) {
                                      return std::find(gone.begin(), gone.end(), name) ==
                                             gone.end();
                                    }))
                << where;
            ++waited;
            continue;
          }
          for (const std::string& name : plan->remove) {
            EXPECT_FALSE(machines[std::stoi(name.substr(1))].being_deleted) << where;
          }
          const auto gone = WorstCaseDeletions(machines, *plan);
          for (const std::string& name : plan->remove) {
            EXPECT_NE(std::find(gone.begin(), gone.end(), name), gone.end())
                << where << " " << name;
          }
          ++allowed;
        }
      }
    }
  }
  // Both answers were exercised many times over.
  EXPECT_GT(allowed, 1000);
  EXPECT_GT(waited, 1000);
}

TEST(DecideShrinkTest, DuplicatesUnknownIdsAndTheMinimum) {
  std::vector<MachineFacts> machines = {Facts(0, State::kJoined), Facts(1, State::kJoined)};
  std::vector<std::string> twice = {"p1", "m1"};
  auto plan = DecideShrink("g", machines, twice, 2, 0);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->remove, std::vector<std::string>{"m1"});  // one Machine, lowered once
  EXPECT_EQ(plan->replicas, 1);

  std::vector<std::string> unknown = {"p9"};
  auto missing = DecideShrink("g", machines, unknown, 2, 0);
  EXPECT_EQ(ClassifyProviderError(missing.error()), ProviderErrorKind::kNotFound);
  EXPECT_NE(missing.error().message().find("g: no Machine has providerID \"p9\""),
            std::string::npos);
  std::vector<std::string> empty_id = {""};  // never matches a Machine without providerID
  machines[0].provider_id.clear();
  EXPECT_FALSE(DecideShrink("g", machines, empty_id, 2, 0).ok());

  std::vector<std::string> one = {"p1"};
  auto owed = DecideShrink("g", machines, one, 3, 0);
  EXPECT_NE(owed.error().message().find("replicas is 3 but 2 Machines exist"), std::string::npos)
      << owed.error().message();

  std::vector<std::string> both = {"m0", "p1"};
  auto below = DecideShrink("g", machines, both, 2, 1);
  EXPECT_EQ(ClassifyProviderError(below.error()), ProviderErrorKind::kInvalid);
  EXPECT_NE(below.error().message().find("below the minimum size 1"), std::string::npos);
}

// Found by cluster_api_machines_fuzz: Machines are told apart by position.
// With identity by name, a Machine being deleted that shared the asked-for
// Machine's name counted as removed, and the shrink went ahead.
TEST(DecideShrinkTest, MachinesAreToldApartByPositionNotName) {
  MachineFacts going = Facts(0, State::kDeleting), asked = Facts(1, State::kJoined);
  going.name = asked.name = "same";
  std::vector<MachineFacts> machines = {going, asked};
  std::vector<std::string> ids = {"p1"};
  auto waits = DecideShrink("g", machines, ids, 2, 0);
  ASSERT_FALSE(waits.ok());
  EXPECT_EQ(ClassifyProviderError(waits.error()), ProviderErrorKind::kUnavailable);

  machines[1].name.clear();  // an API server never serves a nameless Machine
  auto nameless = DecideShrink("g", machines, ids, 2, 0);
  EXPECT_EQ(ClassifyProviderError(nameless.error()), ProviderErrorKind::kInvalid);
  EXPECT_NE(nameless.error().message().find("the Machine with providerID \"p1\" has no name"),
            std::string::npos);
}

TEST(ReadMachineFactsTest, ReadsWhatTheMachineSetDeletesFirst) {
  auto facts = [](const char* text) {
    return ReadMachineFacts(json::parse(text), "cluster.x-k8s.io");
  };
  const MachineFacts joined = facts(R"({"metadata":{"name":"a"},"spec":{"providerID":"p"},
                                        "status":{"nodeRef":{"name":"n"}}})");
  EXPECT_EQ(joined.name, "a");
  EXPECT_EQ(joined.provider_id, "p");
  EXPECT_FALSE(joined.deleted_first);
  EXPECT_TRUE(facts(R"({"metadata":{"name":"a"}})").deleted_first);  // no Node yet
  EXPECT_TRUE(facts(R"({"metadata":{"name":"a"},"status":{"nodeRef":{},
                        "failureReason":"CreateError"}})")
                  .deleted_first);
  EXPECT_TRUE(facts(R"({"metadata":{"name":"a"},"status":{"nodeRef":{},
                        "conditions":[{"type":"HealthCheckSucceeded","status":"False"}]}})")
                  .deleted_first);
  EXPECT_FALSE(facts(R"({"metadata":{"name":"a"},"status":{"nodeRef":{},
                         "conditions":[{"type":"Ready","status":"False"}]}})")
                   .deleted_first);
  const MachineFacts marked = facts(R"({"metadata":{"name":"a",
      "annotations":{"cluster.x-k8s.io/delete-machine":""}},"status":{"nodeRef":{}}})");
  EXPECT_TRUE(marked.marked && marked.deleted_first);
  // Another API group's mark is not this group's.
  EXPECT_FALSE(facts(R"({"metadata":{"name":"a",
      "annotations":{"other.io/delete-machine":"x"}},"status":{"nodeRef":{}}})")
                   .marked);
  const MachineFacts going =
      facts(R"({"metadata":{"name":"a","deletionTimestamp":"2026-12-06T10:00:00Z"},
                "status":{"nodeRef":{}}})");
  EXPECT_TRUE(going.being_deleted && going.deleted_first);
  // Mistyped fields read as absent, not as a crash.
  const MachineFacts odd = facts(R"({"metadata":[],"spec":7,"status":"x"})");
  EXPECT_TRUE(odd.name.empty() && odd.deleted_first && !odd.marked);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
