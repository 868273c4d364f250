#include "kube/discovery.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<json> GetJson(RestClient& client, const std::string& path) {
  GPU_ASSIGN_OR_RETURN(HttpResponse resp, client.Request("GET", path));
  json parsed = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return Error::Decode("discovery " + path + ": not a JSON object");
  return parsed;
}

std::string StringAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

Error NoSuchResource(std::string_view name) {
  return Error(Error::Kind::kApi, 404, "NotFound",
               "the server doesn't have a resource type \"" + std::string(name) + "\"");
}

}  // namespace

Result<GroupVersion> EvictionGroupVersion(RestClient& client) {
  GPU_ASSIGN_OR_RETURN(json list, GetJson(client, "/api/v1"));
  if (auto r = list.find("resources"); r != list.end() && r->is_array()) {
    for (const json& entry : *r) {
      if (!entry.is_object() || StringAt(entry, "name") != "pods/eviction" ||
          StringAt(entry, "kind") != "Eviction") {
        continue;
      }
      GroupVersion gv{StringAt(entry, "group"), StringAt(entry, "version")};
      if (!gv.group.empty() && !gv.version.empty()) return gv;
    }
  }
  return GroupVersion{};
}

Discovery::Discovery(RestClient& client, Clock& clock, Clock::Duration ttl)
    : client_(client), clock_(clock), ttl_(ttl) {}

bool Discovery::FreshLocked(Clock::TimePoint fetched_at) const {
  return clock_.Now() - fetched_at < ttl_;
}

void Discovery::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  have_groups_ = false;
  groups_.clear();
  resources_.clear();
}

Result<std::vector<Discovery::Group>> Discovery::GroupsLocked() {
  if (have_groups_ && FreshLocked(groups_fetched_at_)) return groups_;
  std::vector<Group> groups;
  GPU_ASSIGN_OR_RETURN(json core, GetJson(client_, "/api"));
  Group core_group;
  if (auto v = core.find("versions"); v != core.end() && v->is_array()) {
    for (const json& version : *v) {
      if (version.is_string()) core_group.versions.push_back(version.get<std::string>());
    }
  }
  if (!core_group.versions.empty()) {
    core_group.preferred = core_group.versions.front();
    groups.push_back(std::move(core_group));
  }
  GPU_ASSIGN_OR_RETURN(json apis, GetJson(client_, "/apis"));
  if (auto g = apis.find("groups"); g != apis.end() && g->is_array()) {
    for (const json& entry : *g) {
      if (!entry.is_object()) continue;
      Group group;
      group.name = StringAt(entry, "name");
      if (auto p = entry.find("preferredVersion"); p != entry.end() && p->is_object()) {
        group.preferred = StringAt(*p, "version");
      }
      if (auto vs = entry.find("versions"); vs != entry.end() && vs->is_array()) {
        for (const json& v : *vs) {
          if (v.is_object()) group.versions.push_back(StringAt(v, "version"));
        }
      }
      if (group.preferred.empty() && !group.versions.empty()) group.preferred = group.versions[0];
      if (group.name.empty() || group.preferred.empty()) continue;
      groups.push_back(std::move(group));
    }
  }
  groups_ = std::move(groups);
  groups_fetched_at_ = clock_.Now();
  have_groups_ = true;
  return groups_;
}

Result<std::vector<ApiResource>> Discovery::ResourcesLocked(const GroupVersion& gv) {
  std::string api_version = gv.ApiVersion();
  if (auto it = resources_.find(api_version);
      it != resources_.end() && FreshLocked(it->second.fetched_at)) {
    return it->second.resources;
  }
  std::string path = gv.group.empty() ? "/api/" + gv.version : "/apis/" + api_version;
  GPU_ASSIGN_OR_RETURN(json list, GetJson(client_, path));
  std::vector<ApiResource> out;
  if (auto r = list.find("resources"); r != list.end() && r->is_array()) {
    for (const json& entry : *r) {
      if (!entry.is_object()) continue;
      std::string name = StringAt(entry, "name");
      if (name.empty() || name.find('/') != std::string::npos) continue;  // subresource
      ApiResource res;
      res.gvr = {gv.group, gv.version, name, true};
      if (auto n = entry.find("namespaced"); n != entry.end() && n->is_boolean()) {
        res.gvr.namespaced = n->get<bool>();
      }
      res.kind = StringAt(entry, "kind");
      res.singular = StringAt(entry, "singularName");
      if (res.singular.empty()) res.singular = Lower(res.kind);
      for (const char* key : {"shortNames", "verbs"}) {
        auto arr = entry.find(key);
        if (arr == entry.end() || !arr->is_array()) continue;
        auto& dst = std::string_view(key) == "verbs" ? res.verbs : res.short_names;
        for (const json& s : *arr) {
          if (s.is_string()) dst.push_back(s.get<std::string>());
        }
      }
      out.push_back(std::move(res));
    }
  }
  resources_[api_version] = CachedResources{out, clock_.Now()};
  return out;
}

Result<GroupVersionResource> Discovery::FindLocked(std::string_view name, std::string_view group) {
  GPU_ASSIGN_OR_RETURN(std::vector<Group> groups, GroupsLocked());
  std::string lower = Lower(name);
  // Passes in client-go's RESTMapper priority: plural, then singular or
  // kind, then short names; the core group first within each pass.
  for (int pass = 0; pass < 3; ++pass) {
    for (const Group& g : groups) {
      if (!group.empty() && g.name != group) continue;
      auto resources = ResourcesLocked({g.name, g.preferred});
      if (!resources.ok()) {
        // An unavailable aggregated API (metrics.k8s.io down, say) must not
        // hide every other group; it only matters when asked for directly.
        if (g.name.empty() || !group.empty()) return std::move(resources).error();
        continue;
      }
      for (const ApiResource& r : *resources) {
        bool match = false;
        switch (pass) {
          case 0:
            match = r.gvr.resource == lower;
            break;
          case 1:
            match = r.singular == lower || Lower(r.kind) == lower;
            break;
          case 2:
            match =
                std::find(r.short_names.begin(), r.short_names.end(), lower) != r.short_names.end();
            break;
        }
        if (match) return r.gvr;
      }
    }
  }
  return NoSuchResource(name);
}

Result<GroupVersionResource> Discovery::Resolve(std::string_view name) {
  std::string_view resource = name;
  std::string_view group;
  if (size_t dot = name.find('.'); dot != std::string_view::npos) {
    resource = name.substr(0, dot);
    group = name.substr(dot + 1);
  }
  if (resource.empty()) return NoSuchResource(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto found = FindLocked(resource, group);
  if (found.ok() || !IsNotFound(found.error())) return found;
  // Not known: the server may have gained it (a new CRD); look again, once.
  have_groups_ = false;
  resources_.clear();
  found = FindLocked(resource, group);
  if (!found.ok() && IsNotFound(found.error())) return NoSuchResource(name);
  return found;
}

Result<GroupVersionResource> Discovery::ResolveKind(const GroupVersionKind& gvk) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt == 1) {
      have_groups_ = false;
      resources_.clear();
    }
    GPU_ASSIGN_OR_RETURN(std::vector<Group> groups, GroupsLocked());
    for (const Group& g : groups) {
      if (g.name != gvk.group) continue;
      std::string version = gvk.version.empty() ? g.preferred : gvk.version;
      if (std::find(g.versions.begin(), g.versions.end(), version) == g.versions.end()) continue;
      GPU_ASSIGN_OR_RETURN(std::vector<ApiResource> resources, ResourcesLocked({g.name, version}));
      for (const ApiResource& r : resources) {
        if (r.kind == gvk.kind) return r.gvr;
      }
    }
  }
  return Error(Error::Kind::kApi, 404, "NotFound",
               "no matches for kind \"" + gvk.kind + "\" in group \"" + gvk.group + "\"" +
                   (gvk.version.empty() ? "" : " version \"" + gvk.version + "\""));
}

Result<std::vector<GroupVersion>> Discovery::PreferredVersions() {
  std::lock_guard<std::mutex> lock(mu_);
  GPU_ASSIGN_OR_RETURN(std::vector<Group> groups, GroupsLocked());
  std::vector<GroupVersion> out;
  out.reserve(groups.size());
  for (const Group& g : groups)
    out.push_back({g.name, g.preferred});
  return out;
}

Result<std::vector<ApiResource>> Discovery::Resources(const GroupVersion& gv) {
  std::lock_guard<std::mutex> lock(mu_);
  return ResourcesLocked(gv);
}

}  // namespace gpu_autoscaler::kube
