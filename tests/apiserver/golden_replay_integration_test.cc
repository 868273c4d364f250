// Replays every exchange recorded from a real kube-apiserver v1.20
// (tests/golden/kube/*.json, in file order) against a fresh
// gpu-autoscaler-apiserver and compares status codes, the reason/code/details
// of Status bodies, and object shapes (fields present and their values,
// recursively), skipping each file's volatile paths.
//
// Comparison rules:
// - A volatile path ("metadata.uid") matches at any depth ("items.metadata.uid",
//   "object.metadata.uid"); those values are not compared, present or not.
// - A recorded `null` matches an absent field (Go renders unset fields either way).
// - Status bodies: `message` is not compared (only reason, code, details).
// - Watch streams: the non-BOOKMARK events must match in order; when BOOKMARKs
//   were recorded, at least one must follow, carrying metadata.resourceVersion.
//   (The bookmark period is a server flag, so their number differs.)
// - Discovery: 02 (/api/v1) entries the server lists must equal the recorded
//   entry of the same name, and the recorded entries it omits must be out of
//   scope (kOutOfScopeCoreResources: exec/attach/proxy-style subresources and
//   componentstatuses). 03 (/apis): every built-in group the server serves must
//   be recorded with the same preferred version and a superset of our versions
//   (policy included: at its default emulated version, 1.20, the server serves
//   PodDisruptionBudgets in policy/v1beta1 only), except groups that come from
//   CRDs loaded at start.
// - 22 (cluster-wide list): the recorded cluster held pods outside the replay
//   that were not recorded, so remainingItemCount is compared for presence only.
// - 67 (resourceVersion=0) is served from kube-apiserver's watch cache, whose
//   list order is unspecified; its items are compared sorted by name.
//
// How requests that depend on earlier state are rewritten:
// - resourceVersion query values are mapped from the recorded RV to ours via
//   every earlier response (objects and lists record their RVs); 34 watches from
//   30's RV this way. Request bodies' metadata.resourceVersion and metadata.uid
//   (PUTs of objects read earlier, 24/25/47/48/54/56) are mapped the same way.
// - continue tokens: 16 uses the token our server returned for 15.
// - 62/63/64 refer to compacted RVs: the harness calls the fault API's Compact()
//   first and uses RV 1 (below the compaction point) in the query / token.
// - 06 sends a wrong bearer token; every other request sends the right one.
// Prerequisites, created from the recorded data before the exchange:
// - 22: namespace "demo" and the demo pods listed in 22's response.
// - 65: namespace gpu-evict, PDB "web" (minAvailable 2, app=web) and two
//   Running+Ready pods web-1/web-2 (the description: "2 of 2 healthy").
// - 66: namespace gpu-golden-watch and pods gpu-1..3 (from 67's items); during
//   the watch, gpu-1's label gpu flips to "no" and back, and cpu-only (67) is
//   created. 34's watch drives create / label update / delete of "watched"
//   from its recorded events.
#include <curl/curl.h>
#include <dirent.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/api_server_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::testing {
namespace {

using nlohmann::json;

const std::set<std::string> kOutOfScopeCoreResources = {"componentstatuses",
                                                        "nodes/proxy",
                                                        "pods/attach",
                                                        "pods/exec",
                                                        "pods/log",
                                                        "pods/portforward",
                                                        "pods/proxy",
                                                        "services/proxy",
                                                        "serviceaccounts/token",
                                                        "replicationcontrollers/scale"};

// ---------------------------------------------------------------------------
// HTTP.

struct Response {
  long status = 0;
  std::string body;
  std::string error;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct StreamState {
  std::string* body;
  std::function<void()> on_open;
  bool opened = false;
};

size_t HeaderSeen(char* data, size_t size, size_t n, void* state_ptr) {
  auto* state = static_cast<StreamState*>(state_ptr);
  std::string line(data, size * n);
  if ((line == "\r\n" || line == "\n") && !state->opened) {
    state->opened = true;
    if (state->on_open) state->on_open();
  }
  return size * n;
}

class Client {
 public:
  explicit Client(kube::ClientConfig cfg) : cfg_(std::move(cfg)) {}

  // `on_open` runs once the response headers arrived (watches: stream open).
  Response Do(const std::string& method, const std::string& path, const std::string& body = "",
              const std::string& content_type = "", const std::string& token = "\x01",
              std::function<void()> on_open = nullptr) const {
    Response r;
    CURL* curl = curl_easy_init();
    std::string url = cfg_.server + path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60'000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    StreamState state{&r.body, std::move(on_open)};
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, HeaderSeen);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
    curl_slist* headers = nullptr;
    std::string auth = "Authorization: Bearer " + (token == "\x01" ? cfg_.bearer_token : token);
    headers = curl_slist_append(headers, auth.c_str());
    std::string type = "Content-Type: " + content_type;
    if (!content_type.empty()) headers = curl_slist_append(headers, type.c_str());
    if (!body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_blob ca{const_cast<char*>(cfg_.ca_pem.data()), cfg_.ca_pem.size(), CURL_BLOB_COPY};
    if (!cfg_.ca_pem.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
    } else {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return r;
  }

  json Json(const std::string& method, const std::string& path, const json& body, long want_status,
            const std::string& content_type = "application/json") const {
    Response r = Do(method, path, body.is_null() ? "" : body.dump(), content_type);
    EXPECT_EQ(r.status, want_status) << method << " " << path << ": " << r.error << r.body;
    return json::parse(r.body, nullptr, false);
  }

 private:
  kube::ClientConfig cfg_;
};

// ---------------------------------------------------------------------------
// Comparison.

std::string Dotted(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) {
    if (!out.empty()) out.push_back('.');
    out += p;
  }
  return out;
}

bool IsVolatile(const std::vector<std::string>& path, const std::vector<std::string>& volatiles) {
  std::string dotted = Dotted(path);
  for (const auto& v : volatiles) {
    if (dotted == v) return true;
    if (dotted.size() > v.size() && dotted.compare(dotted.size() - v.size(), v.size(), v) == 0 &&
        dotted[dotted.size() - v.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

void Compare(const json& want, const json& got, std::vector<std::string>& path,
             const std::vector<std::string>& volatiles, std::vector<std::string>* diffs) {
  if (IsVolatile(path, volatiles)) return;
  std::string where = path.empty() ? "<root>" : Dotted(path);
  if (want.is_object() && got.is_object()) {
    bool status = want.value("kind", "") == "Status";
    for (const auto& [key, value] : want.items()) {
      path.push_back(key);
      if (!(status && key == "message") && !IsVolatile(path, volatiles)) {
        if (!got.contains(key)) {
          if (!value.is_null()) diffs->push_back(Dotted(path) + ": missing");
        } else {
          Compare(value, got[key], path, volatiles, diffs);
        }
      }
      path.pop_back();
    }
    for (const auto& [key, value] : got.items()) {
      path.push_back(key);
      if (!want.contains(key) && !value.is_null() && !IsVolatile(path, volatiles)) {
        diffs->push_back(Dotted(path) + ": unexpected field " + value.dump().substr(0, 120));
      }
      path.pop_back();
    }
    return;
  }
  if (want.is_array() && got.is_array()) {
    if (want.size() != got.size()) {
      diffs->push_back(where + ": " + std::to_string(got.size()) + " elements, recorded " +
                       std::to_string(want.size()));
      return;
    }
    for (size_t i = 0; i < want.size(); ++i)
      Compare(want[i], got[i], path, volatiles, diffs);
    return;
  }
  if (want.is_null() && got.is_null()) return;
  if (want != got) {
    diffs->push_back(where + ": got " + got.dump().substr(0, 200) + ", recorded " +
                     want.dump().substr(0, 200));
  }
}

std::vector<json> ParseEvents(const std::string& body) {
  std::vector<json> events;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    events.push_back(json::parse(line, nullptr, false));
  }
  return events;
}

// Strips what the server sets, so a recorded object can be created again.
json Creatable(json obj) {
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "managedFields",
                        "generation", "deletionTimestamp", "deletionGracePeriodSeconds"}) {
    obj["metadata"].erase(f);
  }
  obj.erase("status");
  if (!obj.contains("apiVersion")) obj["apiVersion"] = "v1";
  if (!obj.contains("kind")) obj["kind"] = "Pod";
  return obj;
}

std::string ReplaceQueryValue(const std::string& path, const std::string& param,
                              const std::string& value) {
  std::string key = param + "=";
  auto q = path.find('?');
  if (q == std::string::npos) return path;
  size_t pos = q + 1;
  while (pos < path.size()) {
    size_t amp = path.find('&', pos);
    if (amp == std::string::npos) amp = path.size();
    if (path.compare(pos, key.size(), key) == 0) {
      return path.substr(0, pos + key.size()) + value + path.substr(amp);
    }
    pos = amp + 1;
  }
  return path;
}

std::string QueryValue(const std::string& path, const std::string& param) {
  std::string key = param + "=";
  auto q = path.find('?');
  if (q == std::string::npos) return "";
  size_t pos = q + 1;
  while (pos < path.size()) {
    size_t amp = path.find('&', pos);
    if (amp == std::string::npos) amp = path.size();
    if (path.compare(pos, key.size(), key) == 0) {
      return path.substr(pos + key.size(), amp - pos - key.size());
    }
    pos = amp + 1;
  }
  return "";
}

std::string Base64Url(const std::string& in) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6)
      out.push_back(kChars[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kChars[(v >> 18) & 63]);
    out.push_back(kChars[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kChars[(v >> 18) & 63]);
    out.push_back(kChars[(v >> 12) & 63]);
    out.push_back(kChars[(v >> 6) & 63]);
  }
  return out;
}

// ---------------------------------------------------------------------------

class GoldenReplay {
 public:
  GoldenReplay(TestApiServer& server, std::string dir)
      : server_(server), client_(server.config()), dir_(std::move(dir)) {}

  // Returns the mismatches of one file ("" entries never).
  std::vector<std::string> Run(const std::string& file) {
    json doc = json::parse(ReadFileOrDie(dir_ + "/" + file));
    std::vector<std::string> volatiles = doc["volatile"].get<std::vector<std::string>>();
    const json& req = doc["request"];
    const json& resp = doc["response"];
    std::string method = req["method"];
    std::string path = req["path"];
    std::string content_type = req["content_type"].is_string() ? req["content_type"] : "";
    std::string body;
    if (req["body"].is_string()) {
      body = req["body"];
    } else if (!req["body"].is_null()) {
      body = RewriteBody(req["body"]).dump();
    }
    std::string token = "\x01";
    std::function<void()> during;
    std::string prefix = file.substr(0, 2);

    if (prefix == "06") token = "not-the-token";
    if (prefix == "22") CreateDemoPods();
    if (prefix == "62" || prefix == "63" || prefix == "64") {
      EXPECT_TRUE(server_.Compact().ok());
      if (prefix == "63") {
        json token_json = {{"v", "meta.k8s.io/v1"}, {"rv", 1}, {"start", "a"}};
        path = ReplaceQueryValue(path, "continue", Base64Url(token_json.dump()));
      } else {
        path = ReplaceQueryValue(path, "resourceVersion", "1");
      }
    }
    if (prefix == "65") CreateEvictionSetup();
    if (prefix == "66") {
      CreateWatchSetup();
      during = [this] { MutateDuringLabelWatch(); };
    }
    if (prefix == "34") during = [this, &resp] { ReenactWatch(resp["events"]); };
    if (prefix != "62" && prefix != "63" && prefix != "64") {
      std::string rv = QueryValue(path, "resourceVersion");
      if (!rv.empty() && rv != "0") {
        if (rv_map_.count(rv) == 0) return {"no earlier response recorded resourceVersion " + rv};
        path = ReplaceQueryValue(path, "resourceVersion", rv_map_[rv]);
      }
      std::string cont = QueryValue(path, "continue");
      if (!cont.empty()) {
        if (continue_map_.count(cont) == 0) return {"no earlier response recorded continue token"};
        path = ReplaceQueryValue(path, "continue", continue_map_[cont]);
      }
    }

    std::thread actions;
    auto on_open = [&] {
      if (during) actions = std::thread(during);
    };
    Response r = client_.Do(method, path, body, content_type, token, on_open);
    if (actions.joinable()) actions.join();
    std::vector<std::string> diffs;
    if (!r.error.empty()) return {"transport error: " + r.error};
    if (r.status != resp["status"].get<long>()) {
      diffs.push_back("HTTP status " + std::to_string(r.status) + ", recorded " +
                      resp["status"].dump() + " (body " + r.body.substr(0, 400) + ")");
      return diffs;
    }
    std::vector<std::string> path_stack;
    if (resp.contains("events")) {
      CompareEvents(resp["events"], ParseEvents(r.body), volatiles, &diffs);
      return diffs;
    }
    json got = json::parse(r.body, nullptr, false);
    if (got.is_discarded()) return {"response is not JSON: " + r.body.substr(0, 200)};
    json want = resp["body"];
    if (prefix == "02") return CompareCoreDiscovery(want, got);
    if (prefix == "03") return CompareGroups(want, got);
    if (prefix == "22" && want["metadata"].contains("remainingItemCount")) {
      if (!got["metadata"].contains("remainingItemCount")) {
        diffs.push_back("metadata.remainingItemCount: missing");
      }
      want["metadata"].erase("remainingItemCount");
      got["metadata"].erase("remainingItemCount");
    }
    if (prefix == "67") {
      // Served from the watch cache, whose list order is unspecified (a Go map).
      for (json* list : {&want, &got}) {
        std::sort((*list)["items"].begin(), (*list)["items"].end(),
                  [](const json& a, const json& b) {
                    return a["metadata"]["name"] < b["metadata"]["name"];
                  });
      }
    }
    Compare(want, got, path_stack, volatiles, &diffs);
    if (method != "GET") CompareManagedFields(want, got, &diffs);
    Remember(want, got);
    return diffs;
  }

 private:
  // managedFields is volatile only in its time and manager (our client's
  // User-Agent differs from the recorder's): the fields each write owns must
  // be the real server's. Defaulting by admission and the registry strategy
  // (serviceAccountName, priority, tolerations, status) is owned by nobody.
  static void CompareManagedFields(const json& want, const json& got,
                                   std::vector<std::string>* diffs) {
    if (!want.contains("metadata") || !want["metadata"].contains("managedFields")) return;
    const json& w = want["metadata"]["managedFields"];
    const json none = json::array();
    const json& g = got.contains("metadata") && got["metadata"].contains("managedFields")
                        ? got["metadata"]["managedFields"]
                        : none;
    if (w.size() != g.size()) {
      diffs->push_back("metadata.managedFields: " + std::to_string(g.size()) +
                       " entries, recorded " + std::to_string(w.size()));
      return;
    }
    for (size_t i = 0; i < w.size(); ++i) {
      for (const char* key : {"apiVersion", "fieldsType", "operation", "fieldsV1"}) {
        if (w[i].value(key, json()) != g[i].value(key, json())) {
          diffs->push_back("metadata.managedFields[" + std::to_string(i) + "]." + key + ": got " +
                           g[i].value(key, json()).dump().substr(0, 300) + ", recorded " +
                           w[i].value(key, json()).dump().substr(0, 300));
        }
      }
    }
  }

  // Records recorded->ours mappings of resourceVersions and continue tokens.
  void Remember(const json& want, const json& got) {
    if (!want.is_object() || !got.is_object()) return;
    auto rv_of = [](const json& o) -> std::string {
      if (o.contains("metadata") && o["metadata"].is_object() &&
          o["metadata"].contains("resourceVersion") &&
          o["metadata"]["resourceVersion"].is_string()) {
        return o["metadata"]["resourceVersion"];
      }
      return "";
    };
    std::string w = rv_of(want), g = rv_of(got);
    if (!w.empty() && !g.empty()) rv_map_[w] = g;
    if (want.contains("metadata") && want["metadata"].contains("uid") && got.contains("metadata") &&
        got["metadata"].contains("uid")) {
      uid_map_[want["metadata"]["uid"]] = got["metadata"]["uid"];
    }
    if (want.contains("items") && got.contains("items") && want["items"].is_array() &&
        got["items"].is_array() && want["items"].size() == got["items"].size()) {
      for (size_t i = 0; i < want["items"].size(); ++i)
        Remember(want["items"][i], got["items"][i]);
    }
    if (want.contains("metadata") && want["metadata"].contains("continue") &&
        got.contains("metadata") && got["metadata"].contains("continue")) {
      continue_map_[want["metadata"]["continue"]] = got["metadata"]["continue"];
    }
  }

  // A recorded request body refers to recorded uids and resourceVersions
  // (PUT of an object read earlier): use ours.
  json RewriteBody(json body) {
    if (!body.is_object() || !body.contains("metadata") || !body["metadata"].is_object()) {
      return body;
    }
    json& meta = body["metadata"];
    if (meta.contains("resourceVersion") && rv_map_.count(meta["resourceVersion"]) != 0) {
      meta["resourceVersion"] = rv_map_[meta["resourceVersion"]];
    }
    if (meta.contains("uid") && uid_map_.count(meta["uid"]) != 0) {
      meta["uid"] = uid_map_[meta["uid"]];
    }
    return body;
  }

  void CompareEvents(const json& want_events, const std::vector<json>& got_events,
                     const std::vector<std::string>& volatiles, std::vector<std::string>* diffs) {
    std::vector<json> want, got;
    size_t want_bookmarks = 0, got_bookmarks = 0;
    for (const auto& e : want_events) {
      if (e["type"] == "BOOKMARK") {
        ++want_bookmarks;
      } else {
        want.push_back(e);
      }
    }
    for (const auto& e : got_events) {
      if (e.is_discarded()) {
        diffs->push_back("a watch event is not JSON");
        continue;
      }
      if (e["type"] == "BOOKMARK") {
        ++got_bookmarks;
        if (!e["object"]["metadata"].contains("resourceVersion")) {
          diffs->push_back("BOOKMARK without metadata.resourceVersion");
        }
      } else {
        if (got_bookmarks > 0 && want_bookmarks > 0) {
          diffs->push_back("an event arrived after a BOOKMARK; recorded bookmarks come last");
        }
        got.push_back(e);
      }
    }
    if (want.size() != got.size()) {
      std::string types;
      for (const auto& e : got)
        types += e["type"].get<std::string>() + " ";
      diffs->push_back("got " + std::to_string(got.size()) + " events (" + types + "), recorded " +
                       std::to_string(want.size()));
      return;
    }
    for (size_t i = 0; i < want.size(); ++i) {
      std::vector<std::string> path = {"event" + std::to_string(i)};
      Compare(want[i], got[i], path, volatiles, diffs);
    }
    // v1.20's cacher sends the first bookmark 2 s before the watch's deadline
    // and another each second after: a 4 s watch gets two, at 2 s and 3 s.
    if (want_bookmarks != got_bookmarks) {
      diffs->push_back(std::to_string(got_bookmarks) + " BOOKMARK events, recorded " +
                       std::to_string(want_bookmarks));
    }
  }

  std::vector<std::string> CompareCoreDiscovery(const json& want, const json& got) {
    std::vector<std::string> diffs;
    if (got.value("groupVersion", "") != "v1" || got.value("kind", "") != "APIResourceList") {
      diffs.push_back("not the v1 APIResourceList");
    }
    std::map<std::string, json> recorded, served;
    for (const auto& r : want["resources"])
      recorded[r["name"]] = r;
    for (const auto& r : got["resources"])
      served[r["name"]] = r;
    for (const auto& [name, entry] : served) {
      if (recorded.count(name) == 0) {
        diffs.push_back(name + ": not served by kube-apiserver v1.20");
        continue;
      }
      std::vector<std::string> path = {name};
      Compare(recorded[name], entry, path, {}, &diffs);
    }
    for (const auto& [name, entry] : recorded) {
      if (served.count(name) == 0 && kOutOfScopeCoreResources.count(name) == 0) {
        diffs.push_back(name + ": recorded but not served");
      }
    }
    return diffs;
  }

  std::vector<std::string> CompareGroups(const json& want, const json& got) {
    std::vector<std::string> diffs;
    std::set<std::string> crd_groups;
    json crds = client_.Json("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                             nullptr, 200);
    for (const auto& crd : crds["items"])
      crd_groups.insert(crd["spec"]["group"]);
    std::map<std::string, json> recorded;
    for (const auto& g : want["groups"])
      recorded[g["name"]] = g;
    for (const auto& g : got["groups"]) {
      std::string name = g["name"];
      if (crd_groups.count(name) != 0) continue;
      if (recorded.count(name) == 0) {
        diffs.push_back(name + ": not a kube-apiserver v1.20 group");
        continue;
      }
      if (g["preferredVersion"] != recorded[name]["preferredVersion"]) {
        diffs.push_back(name + ": preferredVersion " + g["preferredVersion"].dump());
      }
      for (const auto& v : g["versions"]) {
        const auto& rv = recorded[name]["versions"];
        if (std::find(rv.begin(), rv.end(), v) == rv.end()) {
          diffs.push_back(name + ": version " + v.dump() + " not recorded");
        }
      }
    }
    std::set<std::string> served;
    for (const auto& g : got["groups"])
      served.insert(g["name"]);
    for (const char* required : {"apps", "policy", "admissionregistration.k8s.io",
                                 "apiextensions.k8s.io", "coordination.k8s.io"}) {
      if (served.count(required) == 0) diffs.push_back(std::string(required) + ": not served");
    }
    return diffs;
  }

  void CreateNamespace(const std::string& name) {
    client_.Json("POST", "/api/v1/namespaces",
                 {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}},
                 201);
  }

  void CreateDemoPods() {
    json doc = json::parse(ReadFileOrDie(dir_ + "/22-list-all-namespaces.json"));
    bool created_ns = false;
    for (const auto& item : doc["response"]["body"]["items"]) {
      std::string ns = item["metadata"]["namespace"];
      if (ns == "gpu-golden") continue;
      if (!created_ns) {
        CreateNamespace(ns);
        created_ns = true;
      }
      client_.Json("POST", "/api/v1/namespaces/" + ns + "/pods", Creatable(item), 201);
    }
  }

  json Pod(const std::string& ns, const std::string& name, json labels) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
            {"spec",
             {{"automountServiceAccountToken", false},
              {"nodeName", "node-a"},
              {"containers",
               {{{"name", "main"},
                 {"image", "registry.example/app:1.0"},
                 {"resources",
                  {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}},
                   {"requests", {{"cpu", "500m"}, {"memory", "1Gi"}}}}}}}}}}};
  }

  void CreateEvictionSetup() {
    const std::string ns = "gpu-evict";
    CreateNamespace(ns);
    client_.Json(
        "POST", "/apis/policy/v1beta1/namespaces/" + ns + "/poddisruptionbudgets",
        {{"apiVersion", "policy/v1beta1"},
         {"kind", "PodDisruptionBudget"},
         {"metadata", {{"name", "web"}}},
         {"spec", {{"minAvailable", 2}, {"selector", {{"matchLabels", {{"app", "web"}}}}}}}},
        201);
    for (const char* name : {"web-1", "web-2"}) {
      json pod = client_.Json("POST", "/api/v1/namespaces/" + ns + "/pods",
                              Pod(ns, name, {{"app", "web"}}), 201);
      pod["status"]["phase"] = "Running";
      pod["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
      client_.Json("PUT", "/api/v1/namespaces/" + ns + "/pods/" + name + "/status", pod, 200);
    }
  }

  void CreateWatchSetup() {
    json doc = json::parse(ReadFileOrDie(dir_ + "/67-list-rv-zero.json"));
    CreateNamespace("gpu-golden-watch");
    json last;
    for (const auto& item : doc["response"]["body"]["items"]) {
      if (item["metadata"]["name"] == "cpu-only") {
        cpu_only_ = Creatable(item);
        continue;
      }
      last = client_.Json("POST", "/api/v1/namespaces/gpu-golden-watch/pods", Creatable(item), 201);
    }
    // 66 watches from the RV right after these creates (recorded: 805).
    rv_map_["805"] = last["metadata"]["resourceVersion"];
  }

  void MutateDuringLabelWatch() {
    const std::string pod = "/api/v1/namespaces/gpu-golden-watch/pods/gpu-1";
    client_.Json("PATCH", pod, {{"metadata", {{"labels", {{"gpu", "no"}}}}}}, 200,
                 "application/merge-patch+json");
    client_.Json("PATCH", pod, {{"metadata", {{"labels", {{"gpu", "yes"}}}}}}, 200,
                 "application/merge-patch+json");
    client_.Json("POST", "/api/v1/namespaces/gpu-golden-watch/pods", cpu_only_, 201);
  }

  // Performs the writes whose events 34 recorded.
  void ReenactWatch(const json& events) {
    json previous;
    for (size_t i = 0; i < events.size(); ++i) {
      const json& e = events[i];
      if (e["type"] == "BOOKMARK") continue;
      const json& obj = e["object"];
      std::string ns = obj["metadata"]["namespace"], name = obj["metadata"]["name"];
      std::string base = "/api/v1/namespaces/" + ns + "/pods";
      if (e["type"] == "ADDED") {
        client_.Json("POST", base, Creatable(obj), 201);
      } else if (e["type"] == "MODIFIED" && !obj["metadata"].contains("deletionTimestamp")) {
        client_.Json("PATCH", base + "/" + name,
                     {{"metadata", {{"labels", obj["metadata"]["labels"]}}}}, 200,
                     "application/merge-patch+json");
      } else if (e["type"] == "MODIFIED") {
        client_.Json("DELETE",
                     base + "/" + name + "?gracePeriodSeconds=" +
                         obj["metadata"]["deletionGracePeriodSeconds"].dump(),
                     nullptr, 200);
      }
    }
  }

  TestApiServer& server_;
  Client client_;
  std::string dir_;
  std::map<std::string, std::string> rv_map_;
  std::map<std::string, std::string> continue_map_;
  std::map<std::string, std::string> uid_map_;
  json cpu_only_;
};

std::vector<std::string> GoldenFiles(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 &&
        name.rfind("admission-review", 0) != 0) {
      files.push_back(name);
    }
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

TEST(GoldenReplayIntegrationTest, MatchesEveryRecordedExchange) {
  auto server = TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "the goldens are a real cluster's recording";
  std::string dir = SourcePath("tests/golden/kube");
  std::vector<std::string> files = GoldenFiles(dir);
  ASSERT_GE(files.size(), 60u);
  GoldenReplay replay(*server, dir);
  std::vector<std::string> failed;
  for (const auto& file : files) {
    std::vector<std::string> diffs = replay.Run(file);
    if (diffs.empty()) continue;
    failed.push_back(file);
    std::string all;
    for (const auto& d : diffs)
      all += "\n  " + d;
    ADD_FAILURE() << file << ":" << all;
  }
  std::string summary;
  for (const auto& f : failed)
    summary += " " + f;
  EXPECT_TRUE(failed.empty()) << failed.size() << " of " << files.size()
                              << " goldens differ:" << summary;
}

}  // namespace
}  // namespace gpu_autoscaler::testing
