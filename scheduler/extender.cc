#include "scheduler/extender.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <unordered_set>

#include "common/json_string.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::scheduler {
namespace {

namespace od = simdjson::ondemand;

bool KeyIs(std::string_view key, std::string_view want) {  // Go's case-insensitive match
  return key.size() == want.size() &&
         std::equal(key.begin(), key.end(), want.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

Status JsonError(std::string_view what, simdjson::error_code e) {
  return InvalidArgumentError(std::string(what) + ": " + simdjson::error_message(e));
}

#define GPA_EXT_CHECK(expr, what)                                     \
  do {                                                                \
    if (auto gpa_e_ = (expr); gpa_e_) return JsonError(what, gpa_e_); \
  } while (false)

bool IsNull(od::value& v) {
  od::json_type type;
  return !v.type().get(type) && type == od::json_type::null;
}

// The Pod member's raw JSON, for the pod decoder.
Status ReadRawPod(od::value& value, std::string* out) {
  od::object pod;
  GPA_EXT_CHECK(value.get_object().get(pod), "Pod must be an object");
  std::string_view raw;
  GPA_EXT_CHECK(pod.raw_json().get(raw), "Pod");
  out->assign(raw);
  return Status::Ok();
}

Result<std::string> NameOfNode(std::string_view raw) {
  od::parser parser;
  simdjson::padded_string padded(raw);
  od::document doc;
  GPA_EXT_CHECK(parser.iterate(padded).get(doc), "Nodes.items[]");
  std::string_view name;
  GPA_EXT_CHECK(doc["metadata"]["name"].get_string().get(name), "Nodes.items[].metadata.name");
  return std::string(name);
}

}  // namespace

Result<ExtenderArgs> ParseExtenderArgs(std::string_view body) {
  ExtenderArgs args;
  od::parser parser;
  simdjson::padded_string padded(body);
  od::document doc;
  GPA_EXT_CHECK(parser.iterate(padded).get(doc), "ExtenderArgs");
  od::object obj;
  GPA_EXT_CHECK(doc.get_object().get(obj), "ExtenderArgs must be a JSON object");
  bool has_pod = false;
  bool has_names = false;
  bool has_nodes = false;
  for (auto member : obj) {
    od::field field;
    GPA_EXT_CHECK(std::move(member).get(field), "ExtenderArgs");
    std::string_view key;
    GPA_EXT_CHECK(field.unescaped_key().get(key), "ExtenderArgs key");
    od::value value = field.value();
    if (KeyIs(key, "Pod")) {
      GPU_RETURN_IF_ERROR(ReadRawPod(value, &args.pod_json));
      has_pod = true;
    } else if (KeyIs(key, "NodeNames")) {
      if (IsNull(value)) continue;
      od::array names;
      GPA_EXT_CHECK(value.get_array().get(names), "NodeNames must be an array");
      for (auto element : names) {
        std::string_view name;
        GPA_EXT_CHECK(element.get_string().get(name), "NodeNames[] must be strings");
        args.node_names.emplace_back(name);
      }
      has_names = true;
    } else if (KeyIs(key, "Nodes")) {
      if (IsNull(value)) continue;
      od::object list;
      GPA_EXT_CHECK(value.get_object().get(list), "Nodes must be a NodeList object");
      for (auto item_field : list) {
        od::field f;
        GPA_EXT_CHECK(std::move(item_field).get(f), "Nodes");
        std::string_view k;
        GPA_EXT_CHECK(f.unescaped_key().get(k), "Nodes key");
        if (k != "items") continue;
        od::value items_value = f.value();
        if (IsNull(items_value)) continue;
        od::array items;
        GPA_EXT_CHECK(items_value.get_array().get(items), "Nodes.items must be an array");
        for (auto element : items) {
          od::object node;
          GPA_EXT_CHECK(element.get_object().get(node), "Nodes.items[] must be objects");
          std::string_view raw;
          GPA_EXT_CHECK(node.raw_json().get(raw), "Nodes.items[]");
          args.node_items.emplace_back(raw);
        }
      }
      has_nodes = true;
    }
  }
  if (!has_pod) return InvalidArgumentError("ExtenderArgs has no Pod");
  if (has_names == has_nodes) {
    return InvalidArgumentError(
        has_names ? "ExtenderArgs has both NodeNames and Nodes; exactly one is expected"
                  : "ExtenderArgs has neither NodeNames nor Nodes");
  }
  args.node_cache_capable = has_names;
  for (const std::string& raw : args.node_items) {
    GPU_ASSIGN_OR_RETURN(std::string name, NameOfNode(raw));
    args.node_names.push_back(std::move(name));
  }
  return args;
}

Result<ExtenderBindingArgs> ParseExtenderBindingArgs(std::string_view body) {
  ExtenderBindingArgs args;
  od::parser parser;
  simdjson::padded_string padded(body);
  od::document doc;
  GPA_EXT_CHECK(parser.iterate(padded).get(doc), "ExtenderBindingArgs");
  od::object obj;
  GPA_EXT_CHECK(doc.get_object().get(obj), "ExtenderBindingArgs must be a JSON object");
  for (auto member : obj) {
    od::field field;
    GPA_EXT_CHECK(std::move(member).get(field), "ExtenderBindingArgs");
    std::string_view key;
    GPA_EXT_CHECK(field.unescaped_key().get(key), "ExtenderBindingArgs key");
    std::string* target = KeyIs(key, "PodName")        ? &args.pod_name
                          : KeyIs(key, "PodNamespace") ? &args.pod_namespace
                          : KeyIs(key, "PodUID")       ? &args.pod_uid
                          : KeyIs(key, "Node")         ? &args.node
                                                       : nullptr;
    if (target == nullptr) continue;
    std::string_view value;
    GPA_EXT_CHECK(field.value().get_string().get(value), "ExtenderBindingArgs values are strings");
    target->assign(value);
  }
  if (args.pod_name.empty() || args.node.empty()) {
    return InvalidArgumentError("ExtenderBindingArgs needs PodName and Node");
  }
  return args;
}

namespace {

// One node's {Pods, NumPDBViolations}: Pods are whole Pod objects (`meta`
// false) or {UID} (`meta` true).
Status ParseVictims(od::value value, bool meta, ExtenderPreemptionArgs::Candidate* out) {
  const char* what = meta ? "NodeNameToMetaVictims[]" : "NodeNameToVictims[]";
  if (IsNull(value)) return Status::Ok();  // a nil *Victims
  od::object obj;
  GPA_EXT_CHECK(value.get_object().get(obj), std::string(what) + " must be an object");
  for (auto member : obj) {
    od::field field;
    GPA_EXT_CHECK(std::move(member).get(field), what);
    std::string_view key;
    GPA_EXT_CHECK(field.unescaped_key().get(key), what);
    od::value v = field.value();
    if (KeyIs(key, "NumPDBViolations")) {
      if (IsNull(v)) continue;
      GPA_EXT_CHECK(v.get_int64().get(out->pdb_violations),
                    std::string(what) + ".NumPDBViolations must be an integer");
    } else if (KeyIs(key, "Pods")) {
      if (IsNull(v)) continue;
      od::array pods;
      GPA_EXT_CHECK(v.get_array().get(pods), std::string(what) + ".Pods must be an array");
      for (auto element : pods) {
        od::object pod;
        GPA_EXT_CHECK(element.get_object().get(pod), std::string(what) + ".Pods[] must be objects");
        std::string_view uid;
        if (meta) {
          // MetaPod has one field, UID; Go matches its key in any case.
          bool found = false;
          for (auto pod_member : pod) {
            od::field f;
            GPA_EXT_CHECK(std::move(pod_member).get(f), what);
            std::string_view k;
            GPA_EXT_CHECK(f.unescaped_key().get(k), what);
            if (!KeyIs(k, "UID")) continue;
            GPA_EXT_CHECK(f.value().get_string().get(uid),
                          std::string(what) + ".Pods[].UID must be a string");
            found = true;
          }
          if (!found) return InvalidArgumentError(std::string(what) + ".Pods[] has no UID");
        } else {
          GPA_EXT_CHECK(pod["metadata"]["uid"].get_string().get(uid),
                        std::string(what) + ".Pods[].metadata.uid");
        }
        out->victim_uids.emplace_back(uid);
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ExtenderPreemptionArgs> ParseExtenderPreemptionArgs(std::string_view body) {
  ExtenderPreemptionArgs args;
  od::parser parser;
  simdjson::padded_string padded(body);
  od::document doc;
  GPA_EXT_CHECK(parser.iterate(padded).get(doc), "ExtenderPreemptionArgs");
  od::object obj;
  GPA_EXT_CHECK(doc.get_object().get(obj), "ExtenderPreemptionArgs must be a JSON object");
  bool has_pod = false;
  int maps = 0;
  for (auto member : obj) {
    od::field field;
    GPA_EXT_CHECK(std::move(member).get(field), "ExtenderPreemptionArgs");
    std::string_view key;
    GPA_EXT_CHECK(field.unescaped_key().get(key), "ExtenderPreemptionArgs key");
    od::value value = field.value();
    if (KeyIs(key, "Pod")) {
      GPU_RETURN_IF_ERROR(ReadRawPod(value, &args.pod_json));
      has_pod = true;
      continue;
    }
    const bool meta = KeyIs(key, "NodeNameToMetaVictims");
    if (!meta && !KeyIs(key, "NodeNameToVictims")) continue;
    if (IsNull(value)) continue;
    ++maps;
    od::object nodes;
    GPA_EXT_CHECK(
        value.get_object().get(nodes),
        std::string(meta ? "NodeNameToMetaVictims" : "NodeNameToVictims") + " must be an object");
    for (auto node_member : nodes) {
      od::field node_field;
      GPA_EXT_CHECK(std::move(node_member).get(node_field), "ExtenderPreemptionArgs");
      ExtenderPreemptionArgs::Candidate candidate;
      std::string_view node;
      GPA_EXT_CHECK(node_field.unescaped_key().get(node), "node name");
      candidate.node.assign(node);
      GPU_RETURN_IF_ERROR(ParseVictims(node_field.value(), meta, &candidate));
      args.candidates.push_back(std::move(candidate));
    }
  }
  if (!has_pod) return InvalidArgumentError("ExtenderPreemptionArgs has no Pod");
  if (maps != 1) {
    return InvalidArgumentError(maps == 0
                                    ? "ExtenderPreemptionArgs has neither NodeNameToVictims nor "
                                      "NodeNameToMetaVictims"
                                    : "ExtenderPreemptionArgs has both NodeNameToVictims and "
                                      "NodeNameToMetaVictims; exactly one is expected");
  }
  return args;
}

std::string PreemptionResultJson(const PreemptionPlan* plan) {
  std::string out = "{\"NodeNameToMetaVictims\":{";
  if (plan != nullptr) {
    AppendJsonString(out, plan->node);
    out += ":{\"Pods\":[";
    for (size_t i = 0; i < plan->victims.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"UID\":";
      AppendJsonString(out, plan->victims[i].pod->uid());
      out += '}';
    }
    out += "],\"NumPDBViolations\":";
    out += std::to_string(plan->budget_violations);
    out += '}';
  }
  out += "}}";
  return out;
}

std::string FilterResultJson(const ExtenderArgs& args, const FilterOutcome& outcome,
                             std::string_view error) {
  std::string out;
  size_t size = 64 + error.size();
  for (std::string_view name : outcome.feasible)
    size += name.size() + 3;
  for (const auto& [name, reason] : outcome.failed)
    size += name.size() + reason.size() + 6;
  out.reserve(size);
  out = "{\"Nodes\":";
  if (args.node_cache_capable) {
    out += "null,\"NodeNames\":[";
    bool first = true;
    for (std::string_view name : outcome.feasible) {
      if (!first) out += ',';
      AppendJsonString(out, name);
      first = false;
    }
    out += ']';
  } else {
    out += "{\"metadata\":{},\"items\":[";
    bool first = true;
    for (std::string_view name : outcome.feasible) {
      for (size_t i = 0; i < args.node_names.size(); ++i) {
        if (args.node_names[i] != name) continue;
        if (!first) out += ',';
        out += args.node_items[i];
        first = false;
        break;
      }
    }
    out += "]},\"NodeNames\":null";
  }
  // A JSON object: a node named twice keeps one entry (the last reason), as before.
  std::vector<const std::pair<std::string_view, std::string>*> failed;
  failed.reserve(outcome.failed.size());
  for (const auto& f : outcome.failed)
    failed.push_back(&f);
  std::stable_sort(failed.begin(), failed.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  out += ",\"FailedNodes\":{";
  for (size_t i = 0; i < failed.size(); ++i) {
    if (i + 1 < failed.size() && failed[i + 1]->first == failed[i]->first) continue;
    if (out.back() != '{') out += ',';
    AppendJsonString(out, failed[i]->first);
    out += ':';
    AppendJsonString(out, failed[i]->second);
  }
  out += "},\"Error\":";
  AppendJsonString(out, error);
  out += '}';
  return out;
}

std::string HostPriorityListJson(std::span<const std::string> hosts, std::span<const int> scores) {
  std::string out;
  size_t size = 2;
  for (const std::string& host : hosts)
    size += host.size() + 24;
  out.reserve(size);
  out += '[';
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"Host\":";
    AppendJsonString(out, hosts[i]);
    out += ",\"Score\":";
    out += std::to_string(i < scores.size() ? scores[i] : 0);
    out += '}';
  }
  out += ']';
  return out;
}

std::string BindingResultJson(std::string_view error) {
  std::string out = "{\"Error\":";
  AppendJsonString(out, error);
  out += '}';
  return out;
}

ExtenderReply Extender::Handle(std::string_view verb, std::string_view body) {
  if (verb == "filter") return Filter(body);
  if (verb == "prioritize") return Prioritize(body);
  if (verb == "bind") return Bind(body);
  if (verb == "preempt") return Preempt(body);
  return {404, BindingResultJson("unknown extender verb \"" + std::string(verb) +
                                 "\"; use filter, prioritize, bind or preempt")};
}

ExtenderReply Extender::Filter(std::string_view body) {
  Result<ExtenderArgs> args = ParseExtenderArgs(body);
  if (!args.ok()) return {400, BindingResultJson(args.error().message())};
  kube::Result<kube::PodView> pod = kube::DecodePod(args->pod_json);
  if (!pod.ok()) return {400, BindingResultJson("Pod: " + pod.error().message())};
  std::vector<std::string_view> names(args->node_names.begin(), args->node_names.end());
  const FilterOutcome outcome = cache_.Filter(*pod, names, /*predicates=*/false);
  return {200, FilterResultJson(*args, outcome, "")};
}

ExtenderReply Extender::Prioritize(std::string_view body) {
  Result<ExtenderArgs> args = ParseExtenderArgs(body);
  if (!args.ok()) return {400, BindingResultJson(args.error().message())};
  kube::Result<kube::PodView> pod = kube::DecodePod(args->pod_json);
  if (!pod.ok()) return {400, BindingResultJson("Pod: " + pod.error().message())};
  std::vector<std::string_view> names(args->node_names.begin(), args->node_names.end());
  const std::vector<int> scores = cache_.Prioritize(*pod, names);
  return {200, HostPriorityListJson(args->node_names, scores)};
}

ExtenderReply Extender::Bind(std::string_view body) {
  Result<ExtenderBindingArgs> args = ParseExtenderBindingArgs(body);
  if (!args.ok()) return {400, BindingResultJson(args.error().message())};
  std::shared_ptr<const kube::PodView> pod =
      hooks_.find_pod ? hooks_.find_pod(args->pod_namespace, args->pod_name) : nullptr;
  if (pod == nullptr) {
    return {200,
            BindingResultJson("pod " + args->pod_namespace + "/" + args->pod_name + " not found")};
  }
  if (!args->pod_uid.empty() && pod->uid() != args->pod_uid) {
    return {200,
            BindingResultJson("pod " + args->pod_namespace + "/" + args->pod_name + " has uid " +
                              std::string(pod->uid()) + ", not " + args->pod_uid + " (recreated)")};
  }
  Result<PlacementChoice> choice = cache_.PlanOn(*pod, args->node);
  if (!choice.ok()) return {200, BindingResultJson(choice.error().message())};
  if (Status s = cache_.Assume(*pod, *choice); !s.ok()) {
    return {200, BindingResultJson(s.message())};
  }
  BindRequest request{.ns = args->pod_namespace,
                      .name = args->pod_name,
                      .uid = args->pod_uid,
                      .node = args->node,
                      .gpus = choice->gpus,
                      .placement = hooks_.policy_name + " score " + std::to_string(choice->score)};
  Status bound = hooks_.bind ? hooks_.bind(request) : UnavailableError("no binder configured");
  if (!bound.ok()) {
    cache_.Forget(args->pod_namespace, args->pod_name);
    return {200, BindingResultJson(bound.message())};
  }
  if (hooks_.record_event) {
    std::string message = "Bound to " + args->node;
    if (!choice->gpus.empty()) {
      message += " on GPUs " + FormatGpuIndices(choice->gpus) +
                 (choice->nvlink_island ? " (one NVLink island)" : "");
    }
    message += " by " + hooks_.policy_name + " (score " + std::to_string(choice->score) + ")";
    hooks_.record_event(*pod, kube::EventType::kNormal, "GPUsAssigned", std::move(message));
  }
  return {200, BindingResultJson("")};
}

ExtenderReply Extender::Preempt(std::string_view body) {
  Result<ExtenderPreemptionArgs> args = ParseExtenderPreemptionArgs(body);
  if (!args.ok()) return {400, BindingResultJson(args.error().message())};
  kube::Result<kube::PodView> pod = kube::DecodePod(args->pod_json);
  if (!pod.ok()) return {400, BindingResultJson("Pod: " + pod.error().message())};
  if (!hooks_.preemption) {
    if (hooks_.count_preemption) hooks_.count_preemption("disabled", 0);
    return {200, PreemptionResultJson(nullptr)};
  }
  std::vector<std::string_view> nodes;
  std::unordered_set<std::string> chosen_by_kube;
  for (const ExtenderPreemptionArgs::Candidate& c : args->candidates) {
    nodes.push_back(c.node);
    chosen_by_kube.insert(c.victim_uids.begin(), c.victim_uids.end());
  }
  const std::vector<DisruptionBudget> budgets =
      hooks_.disruption_budgets ? hooks_.disruption_budgets() : std::vector<DisruptionBudget>{};
  Result<PreemptionPlan> plan = cache_.PlanPreemptionAmong(*pod, nodes, chosen_by_kube, budgets);
  if (hooks_.count_preemption) {
    hooks_.count_preemption(plan.ok() ? "preempted" : "no_candidate",
                            plan.ok() ? static_cast<int>(plan->victims.size()) : 0);
  }
  // No plan is an answer, not a failure: kube-scheduler then preempts nowhere.
  return {200, PreemptionResultJson(plan.ok() ? &*plan : nullptr)};
}

}  // namespace gpu_autoscaler::scheduler
