// Errors, bounds, body parsing and built-in list semantics shared by the patch kinds.
#include "apiserver/patch_internal.h"

namespace gpu_autoscaler::apiserver::patch_internal {

// ---------------------------------------------------------------------------
// Errors, shaped like the ones kube-apiserver v1.20 returns.

kube::Error BadRequest(std::string message) {
  return kube::Error(kube::Error::Kind::kApi, 400, "BadRequest", std::move(message));
}

// errors.NewGenericServerResponse(422, ...): the real server drops the
// underlying message and renders `"details": {}`.
kube::Error GenericInvalid() {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid",
                    "the server rejected our request due to an error in our request");
  error.mutable_details().present = true;
  return error;
}

kube::Error GenericUnprocessable(std::string message) {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid", std::move(message));
  error.mutable_details().present = true;
  return error;
}

// Approximates Go's encoding/json syntax error text for a parse failure at
// byte `position` of `text`.
std::string GoJsonSyntaxMessage(std::string_view text, std::size_t position) {
  // nlohmann reports the 1-based position of the offending byte.
  std::size_t index = position == 0 ? 0 : position - 1;
  while (index < text.size() && (text[index] == ' ' || text[index] == '\n' || text[index] == '\t' ||
                                 text[index] == '\r')) {
    ++index;
  }
  if (index >= text.size()) return "unexpected end of JSON input";
  std::string c(1, text[index]);
  if (text[index] == '\'') c = "\\'";
  return "invalid character '" + c + "' looking for beginning of value";
}

// Nesting limit for patches and the objects they apply to. Real objects are a
// few dozen levels deep; the limit keeps the recursive walkers (and nlohmann's
// recursive copy and comparison) far from the stack's end.

bool TextTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

bool ValueTooDeep(const json& root) {
  std::vector<std::pair<const json*, int>> stack = {{&root, 1}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (depth > kMaxDepth) return true;
    for (const json& child : *v)
      stack.emplace_back(&child, depth + 1);
  }
  return false;
}

// Upper bound on the JSON values that the copy operations of one JSON patch
// may duplicate.

std::size_t NodeCount(const json& root) {
  std::size_t count = 0;
  std::vector<const json*> stack = {&root};
  while (!stack.empty()) {
    const json* v = stack.back();
    stack.pop_back();
    ++count;
    if (v->is_structured()) {
      for (const json& child : *v)
        stack.push_back(&child);
    }
  }
  return count;
}

// Parses JSON without throwing; on failure fills `message` with Go's wording.
std::optional<json> ParseJson(std::string_view text, std::string* message) {
  if (TextTooDeep(text)) {
    *message = "exceeded max depth";
    return std::nullopt;
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    *message = GoJsonSyntaxMessage(text, e.byte);
  } catch (const json::exception& e) {
    *message = e.what();
  }
  return std::nullopt;
}

// Go's `%T`-ish name of a JSON value, for "cannot unmarshal X into ..." messages.
std::string GoJsonTypeName(const json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "bool";
  if (v.is_number()) return "number";
  return "null";
}

bool IsBuiltinKind(std::string_view kind) {
  static const std::set<std::string_view> kKinds = {
      "Pod",
      "Namespace",
      "ConfigMap",
      "Secret",
      "Service",
      "Node",
      "Event",
      "Lease",
      "PodDisruptionBudget",
      "Deployment",
      "ReplicaSet",
      "StatefulSet",
      "DaemonSet",
      "Job",
      "CronJob",
      "PodTemplate",
      "ReplicationController",
      "CustomResourceDefinition",
      "Endpoints",
      "ServiceAccount",
      "PersistentVolumeClaim",
      "PersistentVolume",
      "LimitRange",
      "ResourceQuota",
      "Binding",
      "Eviction",
      "PriorityClass",
  };
  return kKinds.count(kind) > 0;
}

// Path of the PodSpec inside objects of `kind`, "" when it has none.
std::string_view PodSpecPath(std::string_view kind) {
  if (kind == "Pod") return "spec";
  if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
      kind == "DaemonSet" || kind == "Job" || kind == "ReplicationController") {
    return "spec.template.spec";
  }
  if (kind == "CronJob") return "spec.jobTemplate.spec.template.spec";
  if (kind == "PodTemplate") return "template.spec";
  return "";
}

std::string JoinPath(const std::vector<std::string>& fields) {
  std::string out;
  for (const std::string& f : fields) {
    if (!out.empty()) out += '.';
    out += f;
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// ---------------------------------------------------------------------------
// YAML (sigs.k8s.io/yaml semantics: YAML 1.1 scalars via go-yaml v2) to JSON.

constexpr int kMaxYamlDepth = 1000;
constexpr std::size_t kMaxYamlNodes = 1 << 20;  // bounds alias expansion

json ResolvePlainScalar(const std::string& s) {
  static const std::set<std::string> kNull = {"", "~", "null", "Null", "NULL"};
  static const std::set<std::string> kTrue = {"true", "True", "TRUE", "y",  "Y", "yes",
                                              "Yes",  "YES",  "on",   "On", "ON"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE", "n",   "N",  "no",
                                               "No",    "NO",    "off",   "Off", "OFF"};
  if (kNull.count(s) > 0) return nullptr;
  if (kTrue.count(s) > 0) return true;
  if (kFalse.count(s) > 0) return false;
  std::string plain;
  for (char c : s) {
    if (c != '_') plain += c;
  }
  const char* begin = plain.c_str();
  char* end = nullptr;
  errno = 0;
  int base = 10;
  std::string digits = plain;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits = digits.substr(1);
  }
  if (StartsWith(digits, "0x")) {
    base = 16;
  } else if (StartsWith(digits, "0o")) {
    base = 8;
    digits = digits.substr(2);
  } else if (digits.size() > 1 && digits[0] == '0' &&
             digits.find_first_not_of("01234567") == std::string::npos) {
    base = 8;
  }
  if (!digits.empty() && digits.find_first_of(".eE") == std::string::npos) {
    const long long value = std::strtoll(digits.c_str(), &end, base);
    if (end != nullptr && *end == '\0' && errno == 0 && end != digits.c_str()) {
      return negative ? -value : value;
    }
  }
  if (plain == ".inf" || plain == ".Inf" || plain == ".INF" || plain == "+.inf") {
    return s;  // JSON has no infinity; keep the text
  }
  errno = 0;
  const double d = std::strtod(begin, &end);
  const bool numeric = plain.find_first_of("0123456789") != std::string::npos &&
                       plain.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (numeric && end != nullptr && *end == '\0' && errno == 0) return d;
  return s;
}

std::optional<json> YamlToJson(const YAML::Node& node, int depth, std::size_t& budget,
                               std::string* error) {
  if (depth > kMaxYamlDepth || budget == 0) {
    *error = "document is too deeply nested or too large";
    return std::nullopt;
  }
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(node.Scalar());
      return ResolvePlainScalar(node.Scalar());
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        std::optional<json> v = YamlToJson(item, depth + 1, budget, error);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        std::string key;
        if (kv.first.IsScalar()) {
          key = kv.first.Scalar();
        } else if (kv.first.IsNull()) {
          key = "null";
        } else {
          *error = "map keys must be strings";
          return std::nullopt;
        }
        std::optional<json> v = YamlToJson(kv.second, depth + 1, budget, error);
        if (!v) return std::nullopt;
        out[key] = std::move(*v);
      }
      return out;
    }
  }
  return json(nullptr);
}

// JSON is tried first (it is what most clients send); then YAML.
std::optional<json> ParseYamlOrJson(std::string_view body, std::string* error) {
  const std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (body[first] == '{' || body[first] == '[')) {
    std::string ignored;
    if (std::optional<json> parsed = ParseJson(body, &ignored)) return parsed;
  }
  try {
    const YAML::Node root = YAML::Load(std::string(body));
    std::size_t budget = kMaxYamlNodes;
    return YamlToJson(root, 0, budget, error);
  } catch (const YAML::Exception& e) {
    *error = e.what();
  }
  return std::nullopt;
}

}  // namespace gpu_autoscaler::apiserver::patch_internal
