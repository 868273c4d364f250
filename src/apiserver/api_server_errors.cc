// kube-apiserver-shaped errors and small helpers of the embedded API server.
#include "apiserver/api_server_internal.h"

namespace gpu_autoscaler::apiserver {

thread_local std::vector<std::string> t_warnings;

std::vector<std::pair<std::string, std::string>> WarningHeaders() {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& w : t_warnings)
    headers.emplace_back("Warning",
                         "299 - " + json(w).dump(-1, ' ', false, json::error_handler_t::replace));
  return headers;
}

// ---------------------------------------------------------------------------
// Errors shaped like kube-apiserver's.

Error ApiErr(int code, std::string reason, std::string message) {
  return Error(Error::Kind::kApi, code, std::move(reason), std::move(message));
}

std::string GroupResourceName(std::string_view group, std::string_view resource) {
  std::string out(resource);
  if (!group.empty()) out.append(".").append(group);
  return out;
}

Error WithDetails(Error e, std::string_view group, std::string_view kind, std::string_view name) {
  auto& d = e.mutable_details();
  d.group = std::string(group);
  d.kind = std::string(kind);
  d.name = std::string(name);
  d.present = true;
  return e;
}

Error NotFoundErr(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      ApiErr(404, "NotFound",
             GroupResourceName(group, resource) + " \"" + std::string(name) + "\" not found"),
      group, resource, name);
}

Error AlreadyExistsErr(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      ApiErr(409, "AlreadyExists",
             GroupResourceName(group, resource) + " \"" + std::string(name) + "\" already exists"),
      group, resource, name);
}

Error ConflictErr(std::string_view group, std::string_view resource, std::string_view name,
                  std::string_view why) {
  return WithDetails(
      ApiErr(409, "Conflict",
             "Operation cannot be fulfilled on " + GroupResourceName(group, resource) + " \"" +
                 std::string(name) + "\": " + std::string(why)),
      group, resource, name);
}

Error BadRequestErr(std::string message) {
  return ApiErr(400, "BadRequest", std::move(message));
}

Error GenericNotFound() {
  Error e = ApiErr(404, "NotFound", "the server could not find the requested resource");
  e.mutable_details().present = true;
  return e;
}

Error MethodNotAllowedErr() {
  Error e = ApiErr(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
  e.mutable_details().present = true;
  return e;
}

Error InternalErr(std::string message) {
  Error e = ApiErr(500, "InternalError", "Internal error occurred: " + message);
  e.mutable_details().causes.push_back({"", std::move(message), ""});
  return e;
}

// ---------------------------------------------------------------------------
// Small helpers.

std::string FormatTime(Clock::WallTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return std::nullopt;
  }
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

std::string MediaType(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string out(content_type.substr(0, semi));
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

json* MetaOf(json& obj) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) {
    obj["metadata"] = json::object();
    return &obj["metadata"];
  }
  return &*it;
}

std::string MetaString(const json& obj, const char* field) {
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) return {};
  auto f = it->find(field);
  if (f == it->end() || !f->is_string()) return {};
  return f->get<std::string>();
}

bool HasFinalizers(const json& obj) {
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) return false;
  auto f = it->find("finalizers");
  return f != it->end() && f->is_array() && !f->empty();
}

bool IsTerminating(const json& obj) {
  auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() && it->contains("deletionTimestamp") &&
         !(*it)["deletionTimestamp"].is_null();
}

// The object without metadata and status: what metadata.generation tracks.
json SpecPart(const json& obj) {
  json out = obj;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
    out.erase("apiVersion");
    out.erase("kind");
  }
  return out;
}

// Equality ignoring resourceVersion and managedFields: a no-op write.
bool SameObject(const json& a, const json& b) {
  json x = a, y = b;
  for (json* o : {&x, &y}) {
    if (json* m = MetaOf(*o)) {
      m->erase("resourceVersion");
      m->erase("managedFields");
    }
  }
  return x == y;
}

std::string GoJsonError(const std::string& body, const json::parse_error& e) {
  if (e.byte >= body.size()) return "unexpected end of JSON input";
  char c = body[e.byte > 0 ? e.byte - 1 : 0];
  return std::string("invalid character '") + c + "' looking for beginning of value";
}

Error UnrecognizedBody(const std::string& kind, const std::string& body, const std::string& why) {
  std::string excerpt = body.size() > 30 ? body.substr(0, 30) + " ..." : body;
  return BadRequestErr("the object provided is unrecognized (must be of type " + kind +
                       "): couldn't get version/kind; json parse error: " + why + " (" + excerpt +
                       ")");
}

kube::Result<json> ParseBody(const Call& c) {
  std::string media = MediaType(c.req.Header("Content-Type"));
  if (!media.empty() && media != "application/json" && media != "*/*") {
    Error e = ApiErr(415, "UnsupportedMediaType", "415: Unsupported Media Type");
    e.mutable_details().present = true;
    return e;
  }
  try {
    json body = json::parse(c.req.body);
    if (!body.is_object()) {
      return UnrecognizedBody(c.info->kind, c.req.body,
                              "json: cannot unmarshal " + std::string(body.type_name()) +
                                  " into Go value of type struct");
    }
    return body;
  } catch (const json::parse_error& e) {
    return UnrecognizedBody(c.info->kind, c.req.body, GoJsonError(c.req.body, e));
  }
}

}  // namespace gpu_autoscaler::apiserver
