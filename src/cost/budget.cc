#include "cost/budget.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace gpu_autoscaler::cost {

std::string_view BudgetPeriodName(BudgetPeriod p) {
  switch (p) {
    case BudgetPeriod::kDaily:
      return "daily";
    case BudgetPeriod::kWeekly:
      return "weekly";
    case BudgetPeriod::kMonthly:
      return "monthly";
    case BudgetPeriod::kCustom:
      return "custom";
  }
  return "monthly";
}

std::string_view EnforcementName(Enforcement e) {
  switch (e) {
    case Enforcement::kAlert:
      return "alert";
    case Enforcement::kBlockNewGpuPods:
      return "blockNewGPUPods";
    case Enforcement::kScaleDownSpot:
      return "scaleDownSpot";
  }
  return "alert";
}

std::string_view BudgetKindName(BudgetKind k) {
  return k == BudgetKind::kClusterBudget ? "ClusterBudget" : "Budget";
}

std::string Budget::DisplayName() const {
  return std::string(BudgetKindName(kind)) + " " + (ns.empty() ? name : ns + "/" + name);
}

std::string_view ChannelTypeName(ChannelType t) {
  switch (t) {
    case ChannelType::kSlack:
      return "slack";
    case ChannelType::kEmail:
      return "email";
    case ChannelType::kPagerDuty:
      return "pagerduty";
    case ChannelType::kWebhook:
      return "webhook";
  }
  return "slack";
}

namespace {

constexpr int64_t kDay = 86'400;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t ToUnix(std::chrono::sys_days d) {
  return static_cast<int64_t>(d.time_since_epoch().count()) * kDay;
}

Status CheckRequirementValues(const LabelRequirement& r, const std::string& path) {
  bool needs_values = r.op == LabelRequirement::Op::kIn || r.op == LabelRequirement::Op::kNotIn;
  if (needs_values == r.values.empty()) {
    return InvalidArgumentError(
        path + ".values: " +
        (needs_values ? "required for In and NotIn" : "must be empty for Exists and DoesNotExist"));
  }
  return Status::Ok();
}

}  // namespace

PeriodWindow BudgetSpec::PeriodAt(int64_t t) const {
  using namespace std::chrono;
  const int64_t day = FloorDiv(t, kDay);
  switch (period) {
    case BudgetPeriod::kDaily:
      return {day * kDay, (day + 1) * kDay};
    case BudgetPeriod::kWeekly: {
      // 1970-01-01 was a Thursday; weeks start on Monday.
      int64_t weekday = ((day + 3) % 7 + 7) % 7;
      int64_t start = (day - weekday) * kDay;
      return {start, start + 7 * kDay};
    }
    case BudgetPeriod::kMonthly: {
      year_month_day ymd{sys_days{days{day}}};
      year_month first = ymd.year() / ymd.month();
      year_month next = first + months{1};
      return {ToUnix(sys_days{first / 1}), ToUnix(sys_days{next / 1})};
    }
    case BudgetPeriod::kCustom: {
      int64_t len = std::max<int64_t>(1, custom_days) * kDay;
      int64_t k = FloorDiv(t - custom_start, len);
      return {custom_start + k * len, custom_start + (k + 1) * len};
    }
  }
  return {day * kDay, (day + 1) * kDay};
}

Status BudgetSpec::Validate(const AttributionLabels& keys) const {
  if (!(amount > 0) || !std::isfinite(amount)) {
    return InvalidArgumentError("spec.amount: must be greater than 0");
  }
  if (currency.size() != 3) return InvalidArgumentError("spec.currency: want an ISO 4217 code");
  if (period == BudgetPeriod::kCustom && custom_days <= 0) {
    return InvalidArgumentError("spec.customPeriod.days: must be at least 1 for period custom");
  }
  for (size_t i = 0; i < thresholds_percent.size(); ++i) {
    double t = thresholds_percent[i];
    if (!(t > 0) || t > 1000) {
      return InvalidArgumentError("spec.thresholds[" + std::to_string(i) +
                                  "]: must be a percentage in (0, 1000]");
    }
    if (i > 0 && t <= thresholds_percent[i - 1]) {
      return InvalidArgumentError("spec.thresholds: must be strictly ascending");
    }
  }
  auto check_key = [&](const std::string& key, const std::string& path) -> Status {
    if (key == keys.team || key == keys.project || key == keys.experiment) return Status::Ok();
    return InvalidArgumentError(path + ": label key \"" + key + "\" is not an attribution label (" +
                                keys.team + ", " + keys.project + ", " + keys.experiment + ")");
  };
  for (const auto& [key, value] : scope.match_labels) {
    GPU_RETURN_IF_ERROR(check_key(key, "spec.scope.selector.matchLabels"));
  }
  for (size_t i = 0; i < scope.match_expressions.size(); ++i) {
    const LabelRequirement& r = scope.match_expressions[i];
    std::string path = "spec.scope.selector.matchExpressions[" + std::to_string(i) + "]";
    GPU_RETURN_IF_ERROR(check_key(r.key, path + ".key"));
    GPU_RETURN_IF_ERROR(CheckRequirementValues(r, path));
  }
  if (scope.namespace_selector) {
    for (size_t i = 0; i < scope.namespace_selector->match_expressions.size(); ++i) {
      const LabelRequirement& r = scope.namespace_selector->match_expressions[i];
      GPU_RETURN_IF_ERROR(CheckRequirementValues(
          r, "spec.scope.namespaceSelector.matchExpressions[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
}

namespace {

using LabelLookup = std::function<const std::string*(std::string_view)>;

bool MatchesRequirements(const LabelMap& match_labels,
                         const std::vector<LabelRequirement>& match_expressions,
                         const LabelLookup& label) {
  for (const auto& [key, value] : match_labels) {
    const std::string* v = label(key);
    if (!v || *v != value) return false;
  }
  for (const LabelRequirement& r : match_expressions) {
    const std::string* v = label(r.key);
    bool listed = v && std::find(r.values.begin(), r.values.end(), *v) != r.values.end();
    switch (r.op) {
      case LabelRequirement::Op::kIn:
        if (!listed) return false;
        break;
      case LabelRequirement::Op::kNotIn:
        if (listed) return false;
        break;
      case LabelRequirement::Op::kExists:
        if (!v) return false;
        break;
      case LabelRequirement::Op::kDoesNotExist:
        if (v) return false;
        break;
    }
  }
  return true;
}

LabelLookup LookupIn(const LabelMap& labels) {
  return [&labels](std::string_view key) -> const std::string* {
    auto it = labels.find(std::string(key));
    return it == labels.end() ? nullptr : &it->second;
  };
}

}  // namespace

bool NamespaceSelector::Matches(const LabelMap& namespace_labels) const {
  return MatchesRequirements(match_labels, match_expressions, LookupIn(namespace_labels));
}

bool BudgetScope::Matches(std::string_view ns, const LabelLookup& label,
                          const LabelMap* namespace_labels) const {
  if (!namespaces.empty() &&
      std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end()) {
    return false;
  }
  if (namespace_selector &&
      (namespace_labels == nullptr || !namespace_selector->Matches(*namespace_labels))) {
    return false;
  }
  return MatchesRequirements(match_labels, match_expressions, label);
}

bool BudgetScope::Matches(std::string_view ns, const LabelMap& labels,
                          const LabelMap* namespace_labels) const {
  return Matches(ns, LookupIn(labels), namespace_labels);
}

bool BudgetScope::Matches(const CostSample& s, const AttributionLabels& keys,
                          const NamespaceLabelIndex* namespace_index) const {
  if (cluster_wide()) return true;
  if (s.idle) return false;  // idle capacity belongs to no scope but the cluster
  const LabelMap* ns_labels = nullptr;
  if (namespace_index != nullptr) {
    auto it = namespace_index->find(s.ns);
    if (it != namespace_index->end()) ns_labels = &it->second;
  }
  return Matches(
      s.ns,
      [&](std::string_view key) -> const std::string* {
        const std::string* v = nullptr;
        if (key == keys.team) {
          v = &s.team;
        } else if (key == keys.project) {
          v = &s.project;
        } else if (key == keys.experiment) {
          v = &s.experiment;
        }
        return v && !v->empty() ? v : nullptr;
      },
      ns_labels);
}

double SpendInPeriod(std::span<const CostSample> samples, const BudgetSpec& spec,
                     PeriodWindow period, const AttributionLabels& keys,
                     const NamespaceLabelIndex* namespaces) {
  double sum = 0;
  for (const CostSample& s : samples) {
    if (s.second < period.start || s.second >= period.end) continue;
    if (!spec.scope.Matches(s, keys, namespaces)) continue;
    sum += s.gpu_cost + s.cpu_cost + s.memory_cost + s.idle_cost;
  }
  return sum;
}

Result<int64_t> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not an RFC 3339 time (2024-05-01T00:00:00Z)");
  };
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > text.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!digits(0, 4, y) || text.size() < 20 || text[4] != '-' || !digits(5, 2, mo) ||
      text[7] != '-' || !digits(8, 2, d) || (text[10] != 'T' && text[10] != 't') ||
      !digits(11, 2, h) || text[13] != ':' || !digits(14, 2, mi) || text[16] != ':' ||
      !digits(17, 2, s)) {
    return bad();
  }
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      ++pos;
    if (pos == start) return bad();
  }
  int64_t offset = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(pos + 4, 2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (oh * 3600 + om * 60) * (text[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return bad();
  return ToUnix(sys_days{ymd}) + h * 3600 + mi * 60 + s - offset;
}

std::string FormatRfc3339(int64_t t) {
  using namespace std::chrono;
  int64_t day = FloorDiv(t, kDay);
  int64_t rem = t - day * kDay;
  year_month_day ymd{sys_days{days{day}}};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  return buf;
}

namespace {

// Field-by-field reader of a Budget object with "<source>: <path>: <problem>" errors.
class BudgetParser {
 public:
  BudgetParser(std::string_view source, const AttributionLabels& keys)
      : source_(source), keys_(keys) {}

  Status Error(const std::string& path, const std::string& problem) const {
    return InvalidArgumentError(source_ + ": " + path + ": " + problem);
  }

  Result<std::string> Str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) return Error(path, "expected a string");
    return n.Scalar();
  }
  Result<double> Num(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) return Error(path, "expected a number");
    const std::string& s = n.Scalar();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
      return Error(path, "expected a number, got \"" + s + "\"");
    }
    return v;
  }
  Result<std::vector<std::string>> StrList(const YAML::Node& n, const std::string& path) const {
    if (!n.IsSequence()) return Error(path, "expected a list");
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) {
      GPU_ASSIGN_OR_RETURN(std::string v, Str(n[i], path + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(v));
    }
    return out;
  }

  Result<Budget> Parse(const YAML::Node& root) const {
    if (!root.IsMap()) return Error("(root)", "expected a Budget object");
    Budget b;
    if (auto v = root["apiVersion"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(std::string api, Str(v, "apiVersion"));
      if (api != "gpuautoscaler.io/v1alpha1") {
        return Error("apiVersion", "want gpuautoscaler.io/v1alpha1, got \"" + api + "\"");
      }
    }
    if (auto v = root["kind"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(std::string kind, Str(v, "kind"));
      if (kind == BudgetKindName(BudgetKind::kClusterBudget)) {
        b.kind = BudgetKind::kClusterBudget;
      } else if (kind != BudgetKindName(BudgetKind::kBudget)) {
        return Error("kind", "want Budget or ClusterBudget, got \"" + kind + "\"");
      }
    }
    const bool cluster = b.kind == BudgetKind::kClusterBudget;
    auto meta = root["metadata"];
    if (!meta.IsMap() || !meta["name"].IsDefined()) return Error("metadata.name", "missing");
    GPU_ASSIGN_OR_RETURN(b.name, Str(meta["name"], "metadata.name"));
    if (auto v = meta["namespace"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(b.ns, Str(v, "metadata.namespace"));
      if (cluster && !b.ns.empty()) {
        return Error("metadata.namespace", "a ClusterBudget is cluster-scoped and has none");
      }
    }
    auto spec = root["spec"];
    if (!spec.IsMap()) return Error("spec", "missing");
    BudgetSpec& s = b.spec;
    if (auto scope = spec["scope"]; scope.IsDefined()) {
      if (!scope.IsMap()) return Error("spec.scope", "expected a mapping");
      if (auto ns = scope["namespaces"]; ns.IsDefined()) {
        GPU_ASSIGN_OR_RETURN(s.scope.namespaces, StrList(ns, "spec.scope.namespaces"));
      }
      if (auto sel = scope["namespaceSelector"]; sel.IsDefined()) {
        if (!cluster) {
          return Error("spec.scope.namespaceSelector",
                       "a Budget covers only its own namespace; select namespaces with a "
                       "ClusterBudget");
        }
        NamespaceSelector ns_sel;
        GPU_RETURN_IF_ERROR(ParseSelector(sel, "spec.scope.namespaceSelector", ns_sel.match_labels,
                                          ns_sel.match_expressions));
        s.scope.namespace_selector = std::move(ns_sel);
      }
      if (auto sel = scope["selector"]; sel.IsDefined()) {
        GPU_RETURN_IF_ERROR(ParseSelector(sel, "spec.scope.selector", s.scope.match_labels,
                                          s.scope.match_expressions));
      }
    }
    if (!cluster) GPU_RETURN_IF_ERROR(ConfineToOwnNamespace(b));
    if (!spec["amount"].IsDefined()) return Error("spec.amount", "missing");
    GPU_ASSIGN_OR_RETURN(s.amount, Num(spec["amount"], "spec.amount"));
    if (auto v = spec["currency"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(s.currency, Str(v, "spec.currency"));
    }
    if (auto v = spec["period"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(std::string p, Str(v, "spec.period"));
      bool found = false;
      for (BudgetPeriod bp : {BudgetPeriod::kDaily, BudgetPeriod::kWeekly, BudgetPeriod::kMonthly,
                              BudgetPeriod::kCustom}) {
        if (p == BudgetPeriodName(bp)) {
          s.period = bp;
          found = true;
        }
      }
      if (!found) {
        return Error("spec.period", "\"" + p + "\" is not one of daily, weekly, monthly, custom");
      }
    }
    if (auto c = spec["customPeriod"]; c.IsDefined()) {
      if (!c.IsMap()) return Error("spec.customPeriod", "expected a mapping");
      if (!c["start"].IsDefined()) return Error("spec.customPeriod.start", "missing");
      GPU_ASSIGN_OR_RETURN(std::string start, Str(c["start"], "spec.customPeriod.start"));
      auto t = ParseRfc3339(start);
      if (!t.ok()) return Error("spec.customPeriod.start", t.error().message());
      s.custom_start = *t;
      if (!c["days"].IsDefined()) return Error("spec.customPeriod.days", "missing");
      GPU_ASSIGN_OR_RETURN(double d, Num(c["days"], "spec.customPeriod.days"));
      if (d < 1 || d != std::floor(d) || d > 3660) {
        return Error("spec.customPeriod.days", "must be a whole number of days in [1, 3660]");
      }
      s.custom_days = static_cast<int64_t>(d);
    } else if (s.period == BudgetPeriod::kCustom) {
      return Error("spec.customPeriod", "required for period custom");
    }
    if (auto th = spec["thresholds"]; th.IsDefined()) {
      if (!th.IsSequence()) return Error("spec.thresholds", "expected a list");
      s.thresholds_percent.clear();
      for (size_t i = 0; i < th.size(); ++i) {
        GPU_ASSIGN_OR_RETURN(double t, Num(th[i], "spec.thresholds[" + std::to_string(i) + "]"));
        s.thresholds_percent.push_back(t);
      }
    }
    if (auto ch = spec["notifications"]; ch.IsDefined()) {
      GPU_RETURN_IF_ERROR(ParseChannels(ch, s));
    }
    if (auto v = spec["enforcement"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(std::string e, Str(v, "spec.enforcement"));
      bool found = false;
      for (Enforcement en :
           {Enforcement::kAlert, Enforcement::kBlockNewGpuPods, Enforcement::kScaleDownSpot}) {
        if (e == EnforcementName(en)) {
          s.enforcement = en;
          found = true;
        }
      }
      if (!found) {
        return Error("spec.enforcement",
                     "\"" + e + "\" is not one of alert, blockNewGPUPods, scaleDownSpot");
      }
    }
    if (Status st = s.Validate(keys_); !st.ok())
      return InvalidArgumentError(source_ + ": " + st.message());
    return b;
  }

 private:
  // A namespaced Budget's scope is its own namespace: whoever may create a
  // Budget in one namespace must not read the spend of, or block pods in,
  // another one.
  Status ConfineToOwnNamespace(Budget& b) const {
    std::vector<std::string>& listed = b.spec.scope.namespaces;
    for (size_t i = 0; i < listed.size(); ++i) {
      const bool other = b.ns.empty() ? listed[i] != listed[0] : listed[i] != b.ns;
      if (other) {
        return Error("spec.scope.namespaces[" + std::to_string(i) + "]",
                     "a Budget covers only its own namespace" +
                         (b.ns.empty() ? std::string() : " \"" + b.ns + "\"") + ", not \"" +
                         listed[i] + "\"; use a ClusterBudget");
      }
    }
    if (!b.ns.empty()) listed = {b.ns};
    return Status::Ok();
  }

  Status ParseSelector(const YAML::Node& sel, const std::string& path, LabelMap& match_labels,
                       std::vector<LabelRequirement>& match_expressions) const {
    if (!sel.IsMap()) return Error(path, "expected a mapping");
    if (auto ml = sel["matchLabels"]; ml.IsDefined()) {
      if (!ml.IsMap()) return Error(path + ".matchLabels", "expected a mapping");
      for (const auto& kv : ml) {
        std::string key = kv.first.as<std::string>();
        GPU_ASSIGN_OR_RETURN(std::string value, Str(kv.second, path + ".matchLabels." + key));
        match_labels[key] = value;
      }
    }
    if (auto me = sel["matchExpressions"]; me.IsDefined()) {
      if (!me.IsSequence()) return Error(path + ".matchExpressions", "expected a list");
      for (size_t i = 0; i < me.size(); ++i) {
        std::string p = path + ".matchExpressions[" + std::to_string(i) + "]";
        if (!me[i].IsMap()) return Error(p, "expected a mapping");
        LabelRequirement r;
        if (!me[i]["key"].IsDefined()) return Error(p + ".key", "missing");
        GPU_ASSIGN_OR_RETURN(r.key, Str(me[i]["key"], p + ".key"));
        if (!me[i]["operator"].IsDefined()) return Error(p + ".operator", "missing");
        GPU_ASSIGN_OR_RETURN(std::string op, Str(me[i]["operator"], p + ".operator"));
        if (op == "In") {
          r.op = LabelRequirement::Op::kIn;
        } else if (op == "NotIn") {
          r.op = LabelRequirement::Op::kNotIn;
        } else if (op == "Exists") {
          r.op = LabelRequirement::Op::kExists;
        } else if (op == "DoesNotExist") {
          r.op = LabelRequirement::Op::kDoesNotExist;
        } else {
          return Error(p + ".operator",
                       "\"" + op + "\" is not one of In, NotIn, Exists, DoesNotExist");
        }
        if (auto v = me[i]["values"]; v.IsDefined()) {
          GPU_ASSIGN_OR_RETURN(r.values, StrList(v, p + ".values"));
        }
        match_expressions.push_back(std::move(r));
      }
    }
    return Status::Ok();
  }

  Status ParseChannels(const YAML::Node& list, BudgetSpec& s) const {
    if (!list.IsSequence()) return Error("spec.notifications", "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string p = "spec.notifications[" + std::to_string(i) + "]";
      const YAML::Node& n = list[i];
      if (!n.IsMap()) return Error(p, "expected a mapping");
      NotificationChannel c;
      if (!n["type"].IsDefined()) return Error(p + ".type", "missing");
      GPU_ASSIGN_OR_RETURN(std::string type, Str(n["type"], p + ".type"));
      bool found = false;
      for (ChannelType t : {ChannelType::kSlack, ChannelType::kEmail, ChannelType::kPagerDuty,
                            ChannelType::kWebhook}) {
        if (type == ChannelTypeName(t)) {
          c.type = t;
          found = true;
        }
      }
      if (!found) {
        return Error(p + ".type",
                     "\"" + type + "\" is not one of slack, email, pagerduty, webhook");
      }
      auto ref = n["secretRef"];
      if (!ref.IsMap()) return Error(p + ".secretRef", "missing");
      if (!ref["name"].IsDefined()) return Error(p + ".secretRef.name", "missing");
      GPU_ASSIGN_OR_RETURN(c.secret_ref.name, Str(ref["name"], p + ".secretRef.name"));
      if (!ref["key"].IsDefined()) return Error(p + ".secretRef.key", "missing");
      GPU_ASSIGN_OR_RETURN(c.secret_ref.key, Str(ref["key"], p + ".secretRef.key"));
      if (auto to = n["to"]; to.IsDefined()) {
        GPU_ASSIGN_OR_RETURN(c.to, StrList(to, p + ".to"));
      }
      if (c.type == ChannelType::kEmail && c.to.empty()) {
        return Error(p + ".to", "an email channel needs at least one recipient");
      }
      s.channels.push_back(std::move(c));
    }
    return Status::Ok();
  }

  std::string source_;
  const AttributionLabels& keys_;
};

}  // namespace

Result<Budget> ParseBudget(std::string_view text, std::string_view source_name,
                           const AttributionLabels& keys) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return BudgetParser(source_name, keys).Parse(root);
  } catch (const YAML::Exception& e) {
    std::string where(source_name);
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    return InvalidArgumentError(where + ": " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string(source_name) + ": " + e.what());
  }
}

BudgetEnforcer::BudgetEnforcer(AttributionLabels keys)
    : keys_(std::move(keys)), budgets_(std::make_shared<std::vector<BudgetSnapshot>>()) {}

void BudgetEnforcer::SetBudgets(std::vector<BudgetSnapshot> budgets) {
  std::sort(budgets.begin(), budgets.end(), [](const BudgetSnapshot& a, const BudgetSnapshot& b) {
    // ClusterBudgets first: they are what an administrator set.
    const int ka = a.budget.kind == BudgetKind::kClusterBudget ? 0 : 1;
    const int kb = b.budget.kind == BudgetKind::kClusterBudget ? 0 : 1;
    return std::tie(ka, a.budget.ns, a.budget.name) < std::tie(kb, b.budget.ns, b.budget.name);
  });
  auto next = std::make_shared<const std::vector<BudgetSnapshot>>(std::move(budgets));
  std::lock_guard<std::mutex> lock(mu_);
  budgets_ = std::move(next);
}

AdmissionDecision BudgetEnforcer::MayStart(const PodAdmissionInfo& pod) const {
  if (pod.gpus <= 0) return {};
  std::shared_ptr<const std::vector<BudgetSnapshot>> budgets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    budgets = budgets_;
  }
  for (const BudgetSnapshot& b : *budgets) {
    const BudgetSpec& spec = b.budget.spec;
    if (spec.enforcement != Enforcement::kBlockNewGpuPods || !b.exhausted()) continue;
    if (!spec.scope.Matches(pod.ns, pod.labels, &pod.namespace_labels)) continue;
    char money[96];
    std::snprintf(money, sizeof(money), "%.2f of %.2f %s", b.spend, spec.amount,
                  spec.currency.c_str());
    const std::string name =
        b.budget.kind == BudgetKind::kClusterBudget
            ? "ClusterBudget " + b.budget.name
            : "budget " + (b.budget.ns.empty() ? b.budget.name : b.budget.ns + "/" + b.budget.name);
    return {false, name + " is exhausted (" + money + " spent in the " +
                       std::string(BudgetPeriodName(spec.period)) + " period from " +
                       FormatRfc3339(b.period.start) + "); new GPU pods are blocked until " +
                       FormatRfc3339(b.period.end)};
  }
  return {};
}

std::vector<std::string> BudgetEnforcer::SpotScaleDownRequests() const {
  std::shared_ptr<const std::vector<BudgetSnapshot>> budgets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    budgets = budgets_;
  }
  std::vector<std::string> out;
  for (const BudgetSnapshot& b : *budgets) {
    if (b.budget.spec.enforcement == Enforcement::kScaleDownSpot && b.exhausted()) {
      out.push_back(b.budget.ns.empty() ? b.budget.name : b.budget.ns + "/" + b.budget.name);
    }
  }
  return out;
}

}  // namespace gpu_autoscaler::cost
