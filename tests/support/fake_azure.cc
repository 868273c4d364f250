#include "support/fake_azure.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::testing {

using json = nlohmann::json;

namespace {

std::string ArmError(const std::string& code, const std::string& message, json details = nullptr) {
  json err = {{"error", {{"code", code}, {"message", message}}}};
  if (!details.is_null()) err["error"]["details"] = details;
  return err.dump();
}

}  // namespace

std::unique_ptr<FakeAzure> FakeAzure::Start() {
  std::unique_ptr<FakeAzure> fake(new FakeAzure());
  WriteLoopbackCertificate(&fake->tls_);
  if (fake->tls_.cert_file.empty()) return nullptr;
  net::HttpServerOptions opts;
  opts.tls_cert_file = fake->tls_.cert_file;
  opts.tls_key_file = fake->tls_.key_file;
  FakeAzure* self = fake.get();
  auto server = net::HttpServer::Start(
      opts, [self](const net::ServerRequest& r, net::ResponseWriter& w) { self->Handle(r, w); });
  EXPECT_TRUE(server.ok()) << server.error().ToString();
  if (!server.ok()) return nullptr;
  fake->server_ = std::move(server).value();
  return fake;
}

FakeAzure::~FakeAzure() {
  hung_ = false;
  if (server_) server_->Stop();
}

std::string FakeAzure::endpoint() const {
  return "https://127.0.0.1:" + std::to_string(server_->port());
}

void FakeAzure::SetCapacityLocked(Vmss& v, int capacity) {
  while (static_cast<int>(v.instances.size()) > capacity)
    v.instances.pop_back();
  while (static_cast<int>(v.instances.size()) < capacity)
    v.instances.push_back(next_instance_++);
  v.capacity = capacity;
  ++v.version;
}

void FakeAzure::ResizeBeforeNextPatch(const std::string& name, int capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  vmss_[name].resize_before_patch = capacity;
}

void FakeAzure::AddVmss(const std::string& name, int capacity, bool spot) {
  std::lock_guard<std::mutex> lock(mu_);
  Vmss& v = vmss_[name];
  v.spot = spot;
  SetCapacityLocked(v, capacity);
}

int FakeAzure::capacity(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = vmss_.find(name);
  return it == vmss_.end() ? -1 : it->second.capacity;
}

std::vector<std::string> FakeAzure::instance_ids(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  if (auto it = vmss_.find(name); it != vmss_.end()) {
    for (int i : it->second.instances)
      out.push_back(std::to_string(i));
  }
  return out;
}

void FakeAzure::ThrottleNext(int calls, std::string retry_after) {
  std::lock_guard<std::mutex> lock(mu_);
  throttle_ = calls;
  retry_after_ = std::move(retry_after);
}
void FakeAzure::SetAllocationLimit(int capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  allocation_limit_ = capacity;
}
void FakeAzure::SetQuotaLimit(int capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  quota_limit_ = capacity;
}
void FakeAzure::SetPendingPolls(int polls) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_polls_ = polls;
}
void FakeAzure::SetHung(bool hung) {
  hung_ = hung;
}
void FakeAzure::SetForeignAsyncUrl(bool foreign) {
  std::lock_guard<std::mutex> lock(mu_);
  foreign_async_ = foreign;
}
int FakeAzure::token_grants() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_grants_;
}
std::vector<std::string> FakeAzure::issued_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {tokens_.begin(), tokens_.end()};
}
std::vector<std::string> FakeAzure::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}
int FakeAzure::async_polls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return async_polls_;
}
int FakeAzure::location_polls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return location_polls_;
}

void FakeAzure::Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req.method + " " + req.path + (req.query.empty() ? "" : "?" + req.query));
  }
  if (req.path.ends_with("/oauth2/v2.0/token")) return HandleToken(req, w);
  if (req.path.starts_with("/subscriptions/")) {
    if (hung_) return HangUntilReleased(w, hung_);
    return HandleArm(req, w);
  }
  w.Respond(404, "application/json", ArmError("NotFound", "no such path"));
}

void FakeAzure::HandleToken(const net::ServerRequest& req, net::ResponseWriter& w) {
  auto form = ParseForm(req.body);
  auto invalid = [&](const char* error) {
    w.Respond(401, "application/json",
              json{{"error", error}, {"error_description", "AADSTS7000215: rejected"}}.dump());
  };
  if (req.method != "POST" || req.path != "/" + std::string(kTenant) + "/oauth2/v2.0/token") {
    return invalid("invalid_request");
  }
  if (form["grant_type"] != "client_credentials" ||
      form["scope"] != "https://management.azure.com/.default") {
    return invalid("invalid_scope");
  }
  if (form["client_id"] != kClientId) return invalid("unauthorized_client");
  bool by_secret = form.count("client_secret") != 0 && form["client_secret"] == kClientSecret;
  bool by_assertion =
      form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
      form["client_assertion"] == kFederatedToken;
  if (!by_secret && !by_assertion) return invalid("invalid_client");
  std::lock_guard<std::mutex> lock(mu_);
  std::string token = "eyJ0eXAiOiJKV1Qi.fake-arm-token-" + std::to_string(++token_grants_);
  tokens_.insert(token);
  w.Respond(200, "application/json",
            json{{"token_type", "Bearer"},
                 {"expires_in", 3599},
                 {"ext_expires_in", 3599},
                 {"access_token", token}}
                .dump());
}

std::string FakeAzure::VmssJson(const std::string& name, const Vmss& v) const {
  std::string id = "/subscriptions/" + std::string(kSubscription) + "/resourceGroups/" +
                   kResourceGroup + "/providers/Microsoft.Compute/virtualMachineScaleSets/" + name;
  json out = {
      {"id", id},
      {"name", name},
      {"type", "Microsoft.Compute/virtualMachineScaleSets"},
      {"location", "eastus"},
      {"etag", "\"" + std::to_string(v.version) + "\""},
      {"zones", {"1"}},
      {"sku",
       {{"name", "Standard_NC24ads_A100_v4"}, {"tier", "Standard"}, {"capacity", v.capacity}}},
      {"properties",
       {{"provisioningState", "Succeeded"},
        {"orchestrationMode", "Uniform"},
        {"virtualMachineProfile",
         {{"priority", v.spot ? "Spot" : "Regular"}, {"evictionPolicy", "Delete"}}}}}};
  return out.dump();
}

void FakeAzure::HandleArm(const net::ServerRequest& req, net::ResponseWriter& w) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string auth(req.Header("Authorization"));
  if (!auth.starts_with("Bearer ") || tokens_.count(auth.substr(7)) == 0) {
    w.Respond(401, "application/json",
              ArmError("InvalidAuthenticationToken", "The access token is invalid."));
    return;
  }
  if (req.QueryParam("api-version") != kApiVersion) {
    w.Respond(400, "application/json",
              ArmError("InvalidApiVersionParameter", "The api-version is invalid."));
    return;
  }
  if (throttle_ > 0) {
    --throttle_;
    w.Respond(429, "application/json",
              ArmError("OperationNotAllowed",
                       "The server rejected the request because too many requests have been "
                       "received for this subscription.",
                       json::array({{{"code", "TooManyRequests"},
                                     {"target", "HighCostGet3Min"},
                                     {"message", "{\"operationGroup\":\"HighCostGet3Min\"}"}}})),
              {{"Retry-After", retry_after_},
               {"x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet3Min;0"}});
    return;
  }
  std::string sub_prefix = "/subscriptions/" + std::string(kSubscription);
  std::string ops_prefix = sub_prefix + "/providers/Microsoft.Compute/locations/eastus/";
  auto poll = [&](const std::string& kind, bool location) {
    std::string id = req.path.substr(ops_prefix.size() + kind.size() + 1);
    auto it = operations_.find(id);
    if (it == operations_.end()) {
      w.Respond(404, "application/json", ArmError("NotFound", "operation not found"));
      return;
    }
    Operation& op = it->second;
    if (op.pending > 0) --op.pending;
    if (location) {
      ++location_polls_;
      if (op.pending > 0) {
        w.Respond(202, "application/json", "",
                  {{"Location", endpoint() + req.target}, {"Retry-After", "1"}});
      } else {
        w.Respond(200, "application/json", "");
      }
      return;
    }
    ++async_polls_;
    json status = {{"name", id}, {"startTime", "2026-12-04T23:10:00Z"}};
    if (op.pending > 0) {
      status["status"] = "InProgress";
      w.Respond(200, "application/json", status.dump(), {{"Retry-After", "1"}});
      return;
    }
    if (op.error_code.empty()) {
      status["status"] = "Succeeded";
    } else {
      status["status"] = "Failed";
      status["error"] = {{"code", op.error_code}, {"message", op.error_message}};
    }
    w.Respond(200, "application/json", status.dump());
  };
  if (req.method == "GET" && req.path.starts_with(ops_prefix + "operations/")) {
    return poll("operations", false);
  }
  if (req.method == "GET" && req.path.starts_with(ops_prefix + "operationResults/")) {
    return poll("operationResults", true);
  }
  std::string vmss_prefix = sub_prefix + "/resourceGroups/" + kResourceGroup +
                            "/providers/Microsoft.Compute/virtualMachineScaleSets/";
  if (!req.path.starts_with(vmss_prefix)) {
    w.Respond(404, "application/json", ArmError("ResourceGroupNotFound", "not found"));
    return;
  }
  std::string rest = req.path.substr(vmss_prefix.size());
  std::string name = rest.substr(0, rest.find('/'));
  std::string action = rest.size() > name.size() ? rest.substr(name.size() + 1) : "";
  auto it = vmss_.find(name);
  if (it == vmss_.end()) {
    w.Respond(404, "application/json",
              ArmError("ResourceNotFound",
                       "The Resource 'Microsoft.Compute/"
                       "virtualMachineScaleSets/" +
                           name +
                           "' under resource group 'gpu-rg' was not "
                           "found."));
    return;
  }
  Vmss& v = it->second;
  std::string op_id = "op-" + std::to_string(next_id_++);
  if (action.empty() && req.method == "GET") {
    w.Respond(200, "application/json", VmssJson(name, v));
    return;
  }
  if (action.empty() && req.method == "PATCH") {
    if (v.resize_before_patch >= 0) {
      SetCapacityLocked(v, v.resize_before_patch);
      v.resize_before_patch = -1;
    }
    const std::string etag = "\"" + std::to_string(v.version) + "\"";
    if (std::string_view if_match = req.Header("If-Match");
        !if_match.empty() && if_match != "*" && if_match != etag) {
      w.Respond(412, "application/json",
                ArmError("PreconditionFailed", "The specified precondition 'If-Match = " +
                                                   std::string(if_match) + "' failed."));
      return;
    }
    int capacity = -1;
    try {
      capacity = json::parse(req.body).at("sku").at("capacity").get<int>();
    } catch (const json::exception&) {
      w.Respond(400, "application/json", ArmError("InvalidRequestContent", "bad body"));
      return;
    }
    if (capacity > quota_limit_) {
      w.Respond(409, "application/json",
                ArmError("OperationNotAllowed",
                         "Operation could not be completed as it results in exceeding approved "
                         "standardNCADSA100v4Family Cores quota. Current Limit: 48"));
      return;
    }
    Operation op{pending_polls_, "", ""};
    if (capacity > allocation_limit_) {
      op.error_code = "ZonalAllocationFailed";
      op.error_message =
          "Allocation failed. We do not have sufficient capacity for the "
          "requested VM size in this zone.";
    } else {
      SetCapacityLocked(v, capacity);
    }
    operations_[op_id] = op;
    std::string async = (foreign_async_ ? std::string("https://attacker.example") : endpoint()) +
                        ops_prefix + "operations/" + op_id + "?api-version=" + kApiVersion;
    w.Respond(200, "application/json", VmssJson(name, v), {{"Azure-AsyncOperation", async}});
    return;
  }
  if (action == "delete" && req.method == "POST") {
    std::vector<int> ids;
    try {
      json body = json::parse(req.body);
      for (const auto& id : body.at("instanceIds")) {
        ids.push_back(std::stoi(id.get<std::string>()));
      }
    } catch (const std::exception&) {
      w.Respond(400, "application/json", ArmError("InvalidRequestContent", "bad body"));
      return;
    }
    for (int id : ids) {
      if (std::find(v.instances.begin(), v.instances.end(), id) == v.instances.end()) {
        w.Respond(400, "application/json",
                  ArmError("InvalidParameter", "instance " + std::to_string(id) + " not found"));
        return;
      }
    }
    for (int id : ids)
      std::erase(v.instances, id);
    v.capacity -= static_cast<int>(ids.size());
    operations_[op_id] = Operation{pending_polls_, "", ""};
    w.Respond(202, "application/json", "",
              {{"Location", endpoint() + ops_prefix + "operationResults/" + op_id +
                                "?api-version=" + kApiVersion},
               {"Retry-After", "0"}});
    return;
  }
  if (action == "virtualMachines" && req.method == "GET") {
    size_t start = static_cast<size_t>(std::atoi(req.QueryParam("$skiptoken").c_str()));
    json list = json::array();
    size_t i = start;
    for (; i < v.instances.size() && i < start + 2; ++i) {
      std::string id = std::to_string(v.instances[i]);
      list.push_back({{"instanceId", id},
                      {"name", name + "_" + id},
                      {"location", "eastus"},
                      {"zones", {"1"}},
                      {"properties",
                       {{"provisioningState", "Succeeded"},
                        {"osProfile", {{"computerName", name + "00000" + id}}}}}});
    }
    json out = {{"value", list}};
    if (i < v.instances.size()) {
      out["nextLink"] = endpoint() + vmss_prefix + name +
                        "/virtualMachines?api-version=" + kApiVersion +
                        "&$skiptoken=" + std::to_string(i);
    }
    w.Respond(200, "application/json", out.dump());
    return;
  }
  w.Respond(404, "application/json", ArmError("NotFound", "no such action"));
}

// ---------------------------------------------------------------------------

std::unique_ptr<FakeAzureImds> FakeAzureImds::Start() {
  std::unique_ptr<FakeAzureImds> fake(new FakeAzureImds());
  FakeAzureImds* self = fake.get();
  auto server = net::HttpServer::Start(
      {}, [self](const net::ServerRequest& r, net::ResponseWriter& w) { self->Handle(r, w); });
  EXPECT_TRUE(server.ok()) << server.error().ToString();
  if (!server.ok()) return nullptr;
  fake->server_ = std::move(server).value();
  return fake;
}

FakeAzureImds::~FakeAzureImds() {
  if (server_) server_->Stop();
}

std::string FakeAzureImds::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

void FakeAzureImds::AddEvent(const std::string& id, const std::string& type,
                             const std::vector<std::string>& resources,
                             const std::string& not_before) {
  std::lock_guard<std::mutex> lock(mu_);
  ++incarnation_;
  events_.push_back(json{
      {"EventId", id},
      {"EventType", type},
      {"ResourceType", "VirtualMachine"},
      {"Resources", resources},
      {"EventStatus", "Scheduled"},
      {"NotBefore", not_before},
      {"Description", ""},
      {"EventSource", "Platform"},
      {"DurationInSeconds",
       -1}}.dump());
}

std::vector<std::string> FakeAzureImds::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acknowledged_;
}
int FakeAzureImds::token_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_requests_;
}
std::string FakeAzureImds::last_token() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_token_;
}
std::string FakeAzureImds::last_token_query() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_token_query_;
}

void FakeAzureImds::Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
  if (req.Header("Metadata") != "true") {
    w.Respond(
        400, "application/json",
        R"({"error":"invalid_request","error_description":"Required metadata header not specified"})");
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (req.path == "/metadata/identity/oauth2/token" && req.method == "GET") {
    if (req.QueryParam("api-version") != "2018-02-01" ||
        req.QueryParam("resource") != "https://management.azure.com/") {
      w.Respond(400, "application/json", R"({"error":"invalid_resource"})");
      return;
    }
    last_token_query_ = req.query;
    last_token_ = "eyJ0eXAiOiJKV1Qi.imds-token-" + std::to_string(++token_requests_);
    // IMDS sends its numbers as strings.
    w.Respond(200, "application/json",
              json{{"access_token", last_token_},
                   {"expires_in", "86399"},
                   {"expires_on", "1800086399"},
                   {"not_before", "1800000000"},
                   {"resource", "https://management.azure.com/"},
                   {"token_type", "Bearer"}}
                  .dump());
    return;
  }
  if (req.path == "/metadata/scheduledevents" && req.QueryParam("api-version") == "2020-07-01") {
    if (req.method == "POST") {
      try {
        json body = json::parse(req.body);
        for (const auto& r : body.at("StartRequests")) {
          acknowledged_.push_back(r.at("EventId").get<std::string>());
        }
      } catch (const json::exception&) {
        w.Respond(400, "application/json", R"({"error":"bad StartRequests"})");
        return;
      }
      w.Respond(200, "application/json", "");
      return;
    }
    json doc = {{"DocumentIncarnation", incarnation_}, {"Events", json::array()}};
    for (const auto& e : events_)
      doc["Events"].push_back(json::parse(e));
    w.Respond(200, "application/json", doc.dump());
    return;
  }
  w.Respond(404, "text/plain", "not found");
}

}  // namespace gpu_autoscaler::testing
