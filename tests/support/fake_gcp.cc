#include "support/fake_gcp.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_http.h"
#include "common/base64.h"

namespace gpu_autoscaler::testing {

using json = nlohmann::json;

namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

std::string GoogleError(int code, const std::string& reason, const std::string& message) {
  json err = {{"error",
               {{"code", code},
                {"message", message},
                {"errors", {{{"message", message}, {"domain", "global"}, {"reason", reason}}}}}}};
  if (reason == "rateLimitExceeded") err["error"]["errors"][0]["domain"] = "usageLimits";
  return err.dump();
}

std::string Bio(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

std::unique_ptr<FakeGcp> FakeGcp::Start() {
  std::unique_ptr<FakeGcp> fake(new FakeGcp());
  WriteLoopbackCertificate(&fake->tls_);
  if (fake->tls_.cert_file.empty()) return nullptr;

  EVP_PKEY* key = EVP_RSA_gen(2048);
  EXPECT_NE(key, nullptr);
  if (key == nullptr) return nullptr;
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  fake->private_key_pem_ = Bio(priv);
  BIO_free(priv);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  fake->public_key_pem_ = Bio(pub);
  BIO_free(pub);
  EVP_PKEY_free(key);

  net::HttpServerOptions opts;
  opts.tls_cert_file = fake->tls_.cert_file;
  opts.tls_key_file = fake->tls_.key_file;
  FakeGcp* self = fake.get();
  auto server = net::HttpServer::Start(
      opts, [self](const net::ServerRequest& r, net::ResponseWriter& w) { self->Handle(r, w); });
  EXPECT_TRUE(server.ok()) << server.error().ToString();
  if (!server.ok()) return nullptr;
  fake->server_ = std::move(server).value();

  json key_file = {{"type", "service_account"},
                   {"project_id", "ml-prod"},
                   {"private_key_id", "0123abcd"},
                   {"private_key", fake->private_key_pem_},
                   {"client_email", kClientEmail},
                   {"client_id", "1234567890"},
                   {"token_uri", fake->endpoint() + "/token"}};
  fake->key_file_ = fake->tls_.dir + "/key.json";
  std::ofstream(fake->key_file_) << key_file.dump(2);
  return fake;
}

FakeGcp::~FakeGcp() {
  hung_ = false;
  if (server_) server_->Stop();
}

std::string FakeGcp::endpoint() const {
  return "https://127.0.0.1:" + std::to_string(server_->port());
}
std::string FakeGcp::compute_endpoint() const {
  return endpoint() + "/compute/v1";
}

void FakeGcp::AddMig(const std::string& project, const std::string& zone, const std::string& name,
                     int target_size, bool spot) {
  std::lock_guard<std::mutex> lock(mu_);
  Mig& mig = migs_[name];
  mig.project = project;
  mig.zone = zone;
  mig.spot = spot;
  ResizeLocked(mig, target_size);
}

void FakeGcp::ResizeLocked(Mig& mig, int size) {
  while (static_cast<int>(mig.instances.size()) > size)
    mig.instances.pop_back();
  while (static_cast<int>(mig.instances.size()) < size) {
    char suffix[8];
    std::snprintf(suffix, sizeof(suffix), "%04d", next_id_++);
    ManagedInstance inst{"gpu-" + std::string(suffix), false};
    const int capacity = mig.capacity >= 0 ? mig.capacity : capacity_;
    inst.stocked_out = static_cast<int>(mig.instances.size()) >= capacity;
    if (inst.stocked_out) inst.error_code = mig.capacity >= 0 ? mig.stockout_code : stockout_code_;
    mig.instances.push_back(inst);
  }
  mig.target_size = size;
}

int FakeGcp::target_size(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = migs_.find(name);
  return it == migs_.end() ? -1 : it->second.target_size;
}

std::vector<std::string> FakeGcp::instance_names(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  if (auto it = migs_.find(name); it != migs_.end()) {
    for (const auto& i : it->second.instances)
      out.push_back(i.name);
  }
  return out;
}

void FakeGcp::ThrottleNext(int calls) {
  std::lock_guard<std::mutex> lock(mu_);
  throttle_ = calls;
}
void FakeGcp::SetCapacity(int running, std::string code) {
  std::lock_guard<std::mutex> lock(mu_);
  capacity_ = running;
  stockout_code_ = std::move(code);
}
void FakeGcp::SetMigCapacity(const std::string& name, int running, std::string code) {
  std::lock_guard<std::mutex> lock(mu_);
  Mig& mig = migs_[name];
  mig.capacity = running;
  mig.stockout_code = std::move(code);
}
void FakeGcp::FailNextOperation(std::string code) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = std::move(code);
}
void FakeGcp::SetPendingPolls(int polls) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_polls_ = polls;
}
void FakeGcp::SetHung(bool hung) {
  hung_ = hung;
}
void FakeGcp::SetTokenLifetime(int seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  token_lifetime_ = seconds;
}
int FakeGcp::token_grants() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_grants_;
}
std::vector<std::string> FakeGcp::issued_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {tokens_.begin(), tokens_.end()};
}
std::vector<std::string> FakeGcp::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}
int FakeGcp::operation_polls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return operation_polls_;
}

void FakeGcp::Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req.method + " " + req.path + (req.query.empty() ? "" : "?" + req.query));
  }
  if (req.path == "/token") return HandleToken(req, w);
  if (req.path.starts_with("/compute/v1/")) {
    if (hung_) return HangUntilReleased(w, hung_);
    return HandleCompute(req, w);
  }
  w.Respond(404, "application/json", GoogleError(404, "notFound", "no such path"));
}

std::string FakeGcp::VerifyAssertion(const std::string& assertion) const {
  size_t dot1 = assertion.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : assertion.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return "not a JWS";
  auto header = Base64UrlDecode(assertion.substr(0, dot1));
  auto claims = Base64UrlDecode(assertion.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = Base64UrlDecode(assertion.substr(dot2 + 1));
  if (!header || !claims || !signature) return "bad base64url";
  BIO* bio = BIO_new_mem_buf(public_key_pem_.data(), static_cast<int>(public_key_pem_.size()));
  EVP_PKEY* pub = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string signing_input = assertion.substr(0, dot2);
  bool valid = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub) == 1 &&
               EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()),
                                signature->size(),
                                reinterpret_cast<const unsigned char*>(signing_input.data()),
                                signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pub);
  if (!valid) return "bad RS256 signature";
  try {
    json h = json::parse(*header);
    json c = json::parse(*claims);
    if (h.value("alg", "") != "RS256" || h.value("typ", "") != "JWT") return "bad JWT header";
    if (h.value("kid", "") != "0123abcd") return "bad kid";
    if (c.value("iss", "") != kClientEmail) return "bad iss";
    if (c.value("aud", "") != endpoint() + "/token") return "bad aud";
    if (c.value("scope", "").find("https://www.googleapis.com/auth/compute") == std::string::npos)
      return "bad scope";
    int64_t iat = c.value("iat", int64_t{0});
    int64_t exp = c.value("exp", int64_t{0});
    if (iat <= 0 || exp <= iat || exp - iat > 3600) return "bad iat/exp";
  } catch (const json::exception&) {
    return "claims are not JSON";
  }
  return "";
}

void FakeGcp::HandleToken(const net::ServerRequest& req, net::ResponseWriter& w) {
  auto form = ParseForm(req.body);
  if (req.method != "POST" ||
      req.Header("Content-Type").find("application/x-www-form-urlencoded") == std::string::npos ||
      form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
    w.Respond(400, "application/json", R"({"error":"unsupported_grant_type"})");
    return;
  }
  if (std::string why = VerifyAssertion(form["assertion"]); !why.empty()) {
    w.Respond(400, "application/json",
              json{{"error", "invalid_grant"}, {"error_description", why}}.dump());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string token = "ya29.fake-access-token-" + std::to_string(++token_grants_);
  tokens_.insert(token);
  w.Respond(200, "application/json",
            json{{"access_token", token}, {"expires_in", token_lifetime_}, {"token_type", "Bearer"}}
                .dump());
}

std::string FakeGcp::NewOperation(const std::string& zone, const std::string& type) {
  std::string name = "operation-" + std::to_string(next_id_++);
  Operation op{zone, pending_polls_, fail_next_};
  fail_next_.clear();
  operations_[name] = op;
  json out = {{"kind", "compute#operation"},
              {"name", name},
              {"operationType", type},
              {"status", op.pending > 0 ? "RUNNING" : "DONE"}};
  if (op.pending == 0 && !op.error_code.empty()) {
    out["error"] = {{"errors", {{{"code", op.error_code}, {"message", "injected failure"}}}}};
  }
  return out.dump();
}

void FakeGcp::HandleCompute(const net::ServerRequest& req, net::ResponseWriter& w) {
  std::unique_lock<std::mutex> lock(mu_);
  std::string auth(req.Header("Authorization"));
  if (!auth.starts_with("Bearer ") || tokens_.count(auth.substr(7)) == 0) {
    w.Respond(401, "application/json",
              GoogleError(401, "authError", "Request had invalid authentication credentials."));
    return;
  }
  if (throttle_ > 0) {
    --throttle_;
    w.Respond(403, "application/json",
              GoogleError(403, "rateLimitExceeded",
                          "Quota exceeded for quota metric 'Read requests' and limit 'Read "
                          "requests per minute'"));
    return;
  }
  // compute v1 projects P zones Z <collection> <name> [action]
  std::vector<std::string> seg = Split(req.path);
  auto not_found = [&] {
    w.Respond(404, "application/json",
              GoogleError(404, "notFound", "The resource '" + req.path + "' was not found"));
  };
  if (seg.size() == 7 && seg[4] == "global" && seg[5] == "instanceTemplates" &&
      req.method == "GET") {
    bool spot = seg[6] == "spot";
    json tmpl = {{"name", seg[6]},
                 {"properties",
                  {{"machineType", "a2-highgpu-1g"},
                   {"scheduling",
                    {{"provisioningModel", spot ? "SPOT" : "STANDARD"}, {"preemptible", spot}}}}}};
    w.Respond(200, "application/json", tmpl.dump());
    return;
  }
  if (seg.size() < 7 || seg[2] != "projects" || seg[4] != "zones") return not_found();
  const std::string& zone = seg[5];
  if (seg[6] == "operations" && seg.size() == 8 && req.method == "GET") {
    auto it = operations_.find(seg[7]);
    if (it == operations_.end() || it->second.zone != zone) return not_found();
    ++operation_polls_;
    Operation& op = it->second;
    if (op.pending > 0) --op.pending;
    json out = {{"kind", "compute#operation"},
                {"name", seg[7]},
                {"status", op.pending > 0 ? "RUNNING" : "DONE"}};
    if (op.pending == 0 && !op.error_code.empty()) {
      out["error"] = {{"errors", {{{"code", op.error_code}, {"message", "injected failure"}}}}};
    }
    w.Respond(200, "application/json", out.dump());
    return;
  }
  if (seg[6] != "instanceGroupManagers" || seg.size() < 8) return not_found();
  auto mig_it = migs_.find(seg[7]);
  if (mig_it == migs_.end() || mig_it->second.project != seg[3] || mig_it->second.zone != zone) {
    return not_found();
  }
  Mig& mig = mig_it->second;
  std::string action = seg.size() == 9 ? seg[8] : "";
  std::string base = compute_endpoint() + "/projects/" + mig.project + "/zones/" + zone;
  if (action.empty() && req.method == "GET") {
    json out = {
        {"kind", "compute#instanceGroupManager"},
        {"name", seg[7]},
        {"zone", base},
        {"baseInstanceName", "gpu"},
        {"instanceTemplate", "https://www.googleapis.com/compute/v1/projects/" + mig.project +
                                 "/global/instanceTemplates/" + (mig.spot ? "spot" : "standard")},
        {"targetSize", mig.target_size},
        {"status", {{"isStable", true}}}};
    w.Respond(200, "application/json", out.dump());
    return;
  }
  if (action == "resize" && req.method == "POST") {
    if (!req.HasQueryParam("size") || !req.HasQueryParam("requestId") || !req.body.empty()) {
      w.Respond(400, "application/json", GoogleError(400, "required", "size is required"));
      return;
    }
    int size = std::atoi(req.QueryParam("size").c_str());
    std::string op = NewOperation(zone, "compute.instanceGroupManagers.resize");
    if (operations_[json::parse(op)["name"].get<std::string>()].error_code.empty()) {
      ResizeLocked(mig, size);
    }
    w.Respond(200, "application/json", op);
    return;
  }
  if (action == "deleteInstances" && req.method == "POST") {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::exception&) {
      w.Respond(400, "application/json", GoogleError(400, "parseError", "bad JSON"));
      return;
    }
    if (!req.HasQueryParam("requestId") || !body.contains("instances")) {
      w.Respond(400, "application/json", GoogleError(400, "required", "instances is required"));
      return;
    }
    std::vector<std::string> names;
    for (const auto& url : body["instances"]) {
      std::string u = url.get<std::string>();
      std::string prefix = "zones/" + zone + "/instances/";
      bool member = false;
      for (const auto& inst : mig.instances)
        member = member || u == prefix + inst.name;
      if (!member) {
        w.Respond(400, "application/json",
                  GoogleError(400, "invalid", "instance " + u + " is not a member"));
        return;
      }
      names.push_back(u.substr(prefix.size()));
    }
    for (const auto& n : names) {
      std::erase_if(mig.instances, [&](const ManagedInstance& i) { return i.name == n; });
    }
    mig.target_size -= static_cast<int>(names.size());
    w.Respond(200, "application/json",
              NewOperation(zone, "compute.instanceGroupManagers.deleteInstances"));
    return;
  }
  if (action == "listManagedInstances" && req.method == "POST") {
    int max_results = std::max(1, std::atoi(req.QueryParam("maxResults").c_str()));
    int start = std::atoi(req.QueryParam("pageToken").c_str());
    json list = json::array();
    int i = start;
    for (; i < static_cast<int>(mig.instances.size()) && i < start + max_results; ++i) {
      const ManagedInstance& inst = mig.instances[static_cast<size_t>(i)];
      json m = {{"instance", base + "/instances/" + inst.name}, {"id", std::to_string(1000 + i)}};
      if (inst.stocked_out) {
        m["currentAction"] = "CREATING";
        m["lastAttempt"] = {
            {"errors",
             {{"errors",
               {{{"code", inst.error_code},
                 {"message", inst.error_code == "QUOTA_EXCEEDED"
                                 ? "Quota 'NVIDIA_A100_GPUS' exceeded.  Limit: 0.0 in region " +
                                       zone.substr(0, zone.rfind('-')) + "."
                                 : "The zone 'projects/" + mig.project + "/zones/" + zone +
                                       "' does not have enough resources available to fulfill the "
                                       "request.  Try a different zone, or try again later."}}}}}}};
      } else {
        m["currentAction"] = "NONE";
        m["instanceStatus"] = "RUNNING";
      }
      list.push_back(m);
    }
    json out = json::object();
    if (!list.empty()) out["managedInstances"] = list;
    if (i < static_cast<int>(mig.instances.size())) out["nextPageToken"] = std::to_string(i);
    w.Respond(200, "application/json", out.dump());
    return;
  }
  not_found();
}

// ---------------------------------------------------------------------------

std::unique_ptr<FakeGcpMetadata> FakeGcpMetadata::Start() {
  std::unique_ptr<FakeGcpMetadata> fake(new FakeGcpMetadata());
  FakeGcpMetadata* self = fake.get();
  auto server = net::HttpServer::Start(
      {}, [self](const net::ServerRequest& r, net::ResponseWriter& w) { self->Handle(r, w); });
  EXPECT_TRUE(server.ok()) << server.error().ToString();
  if (!server.ok()) return nullptr;
  fake->server_ = std::move(server).value();
  return fake;
}

FakeGcpMetadata::~FakeGcpMetadata() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (server_) server_->Stop();
}

std::string FakeGcpMetadata::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

void FakeGcpMetadata::SetPreempted(bool preempted) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (preempted_ != preempted) ++etag_;
    preempted_ = preempted;
  }
  changed_.notify_all();
}

int FakeGcpMetadata::token_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_requests_;
}
std::string FakeGcpMetadata::last_token() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_token_;
}

void FakeGcpMetadata::Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
  // The metadata server refuses requests without the header and proxied ones.
  if (req.Header("Metadata-Flavor") != "Google" || !req.Header("X-Forwarded-For").empty()) {
    w.Respond(403, "text/html", "Missing Metadata-Flavor:Google header.");
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (req.path == "/computeMetadata/v1/instance/service-accounts/default/token" &&
      req.method == "GET") {
    last_token_ = "ya29.metadata-token-" + std::to_string(++token_requests_);
    w.Respond(
        200, "application/json",
        json{{"access_token", last_token_}, {"expires_in", 3599}, {"token_type", "Bearer"}}.dump());
    return;
  }
  if (req.path == "/computeMetadata/v1/instance/preempted" && req.method == "GET") {
    if (req.QueryParam("wait_for_change") == "true" &&
        req.QueryParam("last_etag") == std::to_string(etag_)) {
      // The hanging GET: answer when the value changes (or the server stops).
      std::string seen = req.QueryParam("last_etag");
      changed_.wait(lock, [&] { return stopping_ || std::to_string(etag_) != seen; });
    }
    w.Respond(200, "application/text", preempted_ ? "TRUE" : "FALSE",
              {{"ETag", std::to_string(etag_)}});
    return;
  }
  w.Respond(404, "text/plain", "not found");
}

}  // namespace gpu_autoscaler::testing
