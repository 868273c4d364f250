#include "reconcile/request_auth.h"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "reconcile/logging.h"

namespace gpu_autoscaler::reconcile {
namespace {

using nlohmann::json;

std::string Digest(std::string_view token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof(md));
}

// A review's status object, or nullopt when the body is not a review: the
// request is then refused and nothing is cached.
std::optional<json> ReviewStatus(const std::string& body) {
  json review = json::parse(body, nullptr, false);
  if (!review.is_object()) return std::nullopt;
  auto it = review.find("status");
  if (it == review.end() || !it->is_object()) return std::nullopt;
  return *it;
}

// Drops the entries that expired, then the oldest half if still full.
template <typename Map>
void Trim(Map& map, size_t max_entries, Clock::TimePoint now) {
  if (map.size() < max_entries) return;
  std::erase_if(map, [&](const auto& kv) { return kv.second.expires <= now; });
  if (map.size() < max_entries) return;
  std::vector<std::pair<Clock::TimePoint, std::string>> by_expiry;
  for (const auto& [key, value] : map)
    by_expiry.emplace_back(value.expires, key);
  std::sort(by_expiry.begin(), by_expiry.end());
  for (size_t i = 0; i < by_expiry.size() / 2; ++i)
    map.erase(by_expiry[i].second);
}

}  // namespace

std::string_view VerbForMethod(std::string_view method) {
  if (method == "GET" || method == "HEAD") return "get";
  if (method == "POST") return "create";
  if (method == "PUT") return "update";
  if (method == "PATCH") return "patch";
  if (method == "DELETE") return "delete";
  return "";
}

RequestAuthorizer::RequestAuthorizer(kube::RestClient& client, RequestAuthorizerOptions options)
    : client_(client), options_(std::move(options)) {}

AuthDecision RequestAuthorizer::Check(std::string_view header, std::string_view method,
                                      std::string_view path) {
  const std::string_view verb = VerbForMethod(method);
  if (verb.empty()) return {405, "", "method not allowed"};
  Authentication who = AuthenticateBearer(header);
  if (who.http_status != 200) return {who.http_status, "", who.reason};
  return Authorize(who.user, {.verb = std::string(verb), .path = std::string(path)});
}

Authentication RequestAuthorizer::AuthenticateBearer(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return {401, {}, "Unauthorized: a bearer token is required"};
  }
  std::string_view token = header.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string_view::npos) {
    return {401, {}, "Unauthorized: malformed bearer token"};
  }
  const std::string digest = Digest(token);
  const Clock::TimePoint now = options_.clock->Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = users_.find(digest);
    if (it != users_.end() && it->second.expires > now) {
      if (!it->second.authenticated) return {401, {}, "Unauthorized"};
      return {200, it->second.user, ""};
    }
  }
  json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", std::string(token)}}}};
  auto reply =
      client_.Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review.dump());
  if (!reply.ok()) {
    Log(LogLevel::kWarn, "TokenReview failed", {{"error", reply.error().ToString()}});
    return {401, {}, "Unauthorized: the token could not be reviewed"};
  }
  const std::optional<json> status = ReviewStatus(reply->body);
  RequestUser user;
  bool authenticated = false;
  bool garbled = !status.has_value();
  try {  // a field of the wrong type refuses the request
    authenticated = status && status->value("authenticated", false);
    const json u = status ? status->value("user", json::object()) : json::object();
    if (authenticated && u.is_object()) {
      user.name = u.value("username", "");
      user.uid = u.value("uid", "");
      for (const json& g : u.value("groups", json::array())) {
        if (g.is_string()) user.groups.push_back(g.get<std::string>());
      }
      if (auto extra = u.find("extra"); extra != u.end() && extra->is_object()) {
        for (const auto& [key, values] : extra->items()) {
          auto& out = user.extra[key];
          if (!values.is_array()) continue;
          for (const json& v : values) {
            if (v.is_string()) out.push_back(v.get<std::string>());
          }
        }
      }
    }
  } catch (const json::exception&) {
    garbled = true;
  }
  if (garbled) {
    Log(LogLevel::kWarn, "TokenReview answer is not a review; refusing the request");
    return {401, {}, "Unauthorized: the token could not be reviewed"};
  }
  authenticated = authenticated && !user.name.empty();
  std::lock_guard<std::mutex> l(mu_);
  Trim(users_, options_.max_cache_entries, now);
  users_[digest] = {authenticated, user, now + options_.authentication_ttl};
  if (!authenticated) return {401, {}, "Unauthorized"};
  return {200, std::move(user), ""};
}

AuthDecision RequestAuthorizer::Authorize(const RequestUser& user,
                                          const AccessAttributes& attributes) {
  const bool resource_request = !attributes.resource.empty();
  json spec = {{"user", user.name}, {"groups", user.groups}};
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (!user.extra.empty()) spec["extra"] = user.extra;
  if (resource_request) {
    json ra = {{"verb", attributes.verb},
               {"group", attributes.group},
               {"version", attributes.version},
               {"resource", attributes.resource}};
    if (!attributes.subresource.empty()) ra["subresource"] = attributes.subresource;
    if (!attributes.name.empty()) ra["name"] = attributes.name;
    if (!attributes.ns.empty()) ra["namespace"] = attributes.ns;
    spec["resourceAttributes"] = std::move(ra);
  } else {
    spec["nonResourceAttributes"] = {{"path", attributes.path}, {"verb", attributes.verb}};
  }
  const std::string decision_key = Digest(spec.dump());
  const Clock::TimePoint now = options_.clock->Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = decisions_.find(decision_key);
    if (it != decisions_.end() && it->second.expires > now) {
      if (it->second.allowed) return {200, user.name, ""};
      return {403, user.name, it->second.reason};
    }
  }
  json review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  auto reply =
      client_.Request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review.dump());
  if (!reply.ok()) {
    Log(LogLevel::kWarn, "SubjectAccessReview failed",
        {{"user", user.name}, {"error", reply.error().ToString()}});
    return {500, user.name, "Internal Server Error: the request could not be authorised"};
  }
  const std::optional<json> status = ReviewStatus(reply->body);
  bool allowed = false;
  bool garbled = !status.has_value();
  std::string why;
  try {
    if (status) {
      allowed = status->value("allowed", false) && !status->value("denied", false);
      why = status->value("reason", "");
    }
  } catch (const json::exception&) {
    garbled = true;
  }
  if (garbled) {
    Log(LogLevel::kWarn, "SubjectAccessReview answer is not a review; refusing the request",
        {{"user", user.name}});
    return {500, user.name, "Internal Server Error: the request could not be authorised"};
  }
  std::string reason;
  if (resource_request) {
    // kube-apiserver's wording (authorizer.ForbiddenMessage).
    std::string resource = attributes.resource;
    if (!attributes.subresource.empty()) resource += "/" + attributes.subresource;
    reason = "User \"" + user.name + "\" cannot " + attributes.verb + " resource \"" + resource +
             "\" in API group \"" + attributes.group + "\"";
    reason += attributes.ns.empty() ? " at the cluster scope"
                                    : " in the namespace \"" + attributes.ns + "\"";
  } else {
    reason = "Forbidden: user \"" + user.name + "\" cannot " + attributes.verb + " path \"" +
             attributes.path + "\"";
  }
  if (!why.empty()) reason += ": " + why;
  std::lock_guard<std::mutex> l(mu_);
  Trim(decisions_, options_.max_cache_entries, now);
  decisions_[decision_key] = {allowed, reason,
                              now + (allowed ? options_.allow_ttl : options_.deny_ttl)};
  if (allowed) return {200, user.name, ""};
  return {403, user.name, reason};
}

}  // namespace gpu_autoscaler::reconcile
