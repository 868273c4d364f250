// Field sets, metadata.managedFields bookkeeping and server-side apply.
#include "apiserver/patch_internal.h"

namespace gpu_autoscaler::apiserver {

using namespace patch_internal;  // NOLINT: this file implements them

namespace {

// ---------------------------------------------------------------------------
// Field sets (sigs.k8s.io/structured-merge-diff), stored as a trie keyed by the
// FieldsV1 path elements: "f:<field>", "k:{<key fields>}", "v:<value>".

struct FieldSet {
  bool member = false;
  std::map<std::string, FieldSet> children;

  bool Empty() const { return !member && children.empty(); }

  void Insert(const std::vector<std::string>& path) {
    FieldSet* node = this;
    for (const std::string& element : path)
      node = &node->children[element];
    node->member = true;
  }

  void UnionWith(const FieldSet& other) {
    member = member || other.member;
    for (const auto& [element, child] : other.children)
      children[element].UnionWith(child);
  }

  FieldSet Difference(const FieldSet& other) const {
    FieldSet out;
    out.member = member && !other.member;
    for (const auto& [element, child] : children) {
      auto it = other.children.find(element);
      FieldSet diff = it == other.children.end() ? child : child.Difference(it->second);
      if (!diff.Empty()) out.children.emplace(element, std::move(diff));
    }
    return out;
  }

  FieldSet Intersection(const FieldSet& other) const {
    FieldSet out;
    out.member = member && other.member;
    for (const auto& [element, child] : children) {
      auto it = other.children.find(element);
      if (it == other.children.end()) continue;
      FieldSet both = child.Intersection(it->second);
      if (!both.Empty()) out.children.emplace(element, std::move(both));
    }
    return out;
  }

  // Every member path, in sorted order.
  void Members(std::vector<std::string>& prefix, std::vector<std::vector<std::string>>& out) const {
    if (member && !prefix.empty()) out.push_back(prefix);
    for (const auto& [element, child] : children) {
      prefix.push_back(element);
      child.Members(prefix, out);
      prefix.pop_back();
    }
  }

  json ToFieldsV1() const {
    json out = json::object();
    if (member && !children.empty()) out["."] = json::object();
    for (const auto& [element, child] : children)
      out[element] = child.ToFieldsV1();
    return out;
  }

  static FieldSet FromFieldsV1(const json& v) {
    FieldSet out;
    if (!v.is_object()) return out;
    if (v.empty()) out.member = true;
    for (const auto& [element, child] : v.items()) {
      if (element == ".") {
        out.member = true;
        continue;
      }
      FieldSet c = FromFieldsV1(child);
      if (!c.Empty()) out.children.emplace(element, std::move(c));
    }
    return out;
  }
};

// The paths the field manager never tracks (stripMetaManager).
const FieldSet& StripSet() {
  static const FieldSet kStrip = [] {
    FieldSet s;
    s.Insert({"f:apiVersion"});
    s.Insert({"f:kind"});
    s.Insert({"f:metadata"});
    for (const char* f : {"name", "namespace", "creationTimestamp", "selfLink", "uid",
                          "clusterName", "generation", "managedFields", "resourceVersion"}) {
      s.Insert({"f:metadata", std::string("f:") + f});
    }
    return s;
  }();
  return kStrip;
}

// ".spec.containers[name=\"main\"].image", as fieldpath.Path.String() prints it.
std::string PathString(const std::vector<std::string>& path) {
  std::string out;
  for (const std::string& element : path) {
    if (StartsWith(element, "f:")) {
      out += "." + element.substr(2);
    } else if (StartsWith(element, "v:")) {
      out += "[=" + element.substr(2) + "]";
    } else if (StartsWith(element, "i:")) {
      out += "[" + element.substr(2) + "]";
    } else if (StartsWith(element, "k:")) {
      json keys = json::parse(element.substr(2), nullptr, false);
      std::string fields;
      if (keys.is_object()) {
        for (const auto& [name, value] : keys.items()) {
          if (!fields.empty()) fields += ",";
          fields += name + "=" + value.dump();
        }
      }
      out += "[" + fields + "]";
    }
  }
  return out;
}

// Where a walker is: the FieldsV1 elements so far, and the field names alone
// (list items add no field name) for schema lookups.
struct Path {
  std::vector<std::string> elements;
  std::vector<std::string> fields;

  void PushField(const std::string& name) {
    elements.push_back("f:" + name);
    fields.push_back(name);
  }
  void PopField() {
    elements.pop_back();
    fields.pop_back();
  }
};

// How the typed walkers treat one value.
enum class NodeKind { kLeaf, kMap, kSetList, kMapList };

// The walkers below follow structured-merge-diff's ToFieldSet, Compare and
// Merge, with list semantics taken from KindSchema. Lists whose items do not
// fit their declared type (duplicate keys, mixed items) are treated as atomic
// rather than rejected, so bookkeeping never blocks a write.
class TypedWalker {
 public:
  explicit TypedWalker(const KindSchema& schema) : schema_(schema) {}

  NodeKind Classify(const json& v, const std::vector<std::string>& fields) const {
    if (v.is_object()) return schema_.AtomicStruct(fields) ? NodeKind::kLeaf : NodeKind::kMap;
    if (!v.is_array()) return NodeKind::kLeaf;
    const ListInfo info = schema_.List(fields);
    if (info.type == ListType::kSet) {
      std::set<std::string> seen;
      for (const json& e : v) {
        if (e.is_structured() || !seen.insert(e.dump()).second) return NodeKind::kLeaf;
      }
      return NodeKind::kSetList;
    }
    if (info.type == ListType::kMap) {
      std::set<std::string> seen;
      for (const json& e : v) {
        if (!e.is_object() || !seen.insert(ItemKey(e, info)).second) return NodeKind::kLeaf;
      }
      return NodeKind::kMapList;
    }
    return NodeKind::kLeaf;
  }

  // typed.ToFieldSet: leaves, list items and empty maps are members.
  void ToFieldSet(const json& v, Path& path, FieldSet& out) const {
    switch (Classify(v, path.fields)) {
      case NodeKind::kLeaf:
        if (!path.elements.empty()) out.Insert(path.elements);
        return;
      case NodeKind::kMap:
        for (const auto& [key, child] : v.items()) {
          path.PushField(key);
          ToFieldSet(child, path, out);
          if (child.is_object() && child.empty()) out.Insert(path.elements);
          path.PopField();
        }
        return;
      case NodeKind::kSetList:
      case NodeKind::kMapList:
        for (const auto& [element, item] : Items(v, path.fields)) {
          path.elements.push_back(element);
          out.Insert(path.elements);
          if (item->is_object()) ToFieldSet(*item, path, out);
          path.elements.pop_back();
        }
        return;
    }
  }

  struct Comparison {
    FieldSet added;
    FieldSet modified;
    FieldSet removed;
  };

  // typed.Compare: leaves are added/removed/modified; maps and list items that
  // appear or disappear are added/removed themselves too.
  void Compare(const json* lhs, const json* rhs, Path& path, Comparison& out) const {
    // A null map or list is an empty one, as Go's nil slices and maps are.
    static const json kEmptyObject = json::object();
    static const json kEmptyArray = json::array();
    if (lhs != nullptr && rhs != nullptr && lhs->is_null() != rhs->is_null()) {
      const json* present = lhs->is_null() ? rhs : lhs;
      const json* empty = present->is_object()  ? &kEmptyObject
                          : present->is_array() ? &kEmptyArray
                                                : nullptr;
      if (empty != nullptr && Classify(*present, path.fields) != NodeKind::kLeaf) {
        (lhs->is_null() ? lhs : rhs) = empty;
      }
    }
    const NodeKind left = lhs != nullptr ? Classify(*lhs, path.fields) : NodeKind::kLeaf;
    const NodeKind right = rhs != nullptr ? Classify(*rhs, path.fields) : NodeKind::kLeaf;
    const bool leaf = (lhs != nullptr && left == NodeKind::kLeaf) ||
                      (rhs != nullptr && right == NodeKind::kLeaf) ||
                      (lhs != nullptr && rhs != nullptr && left != right);
    if (leaf) {
      if (path.elements.empty()) return;
      if (lhs == nullptr) {
        out.added.Insert(path.elements);
      } else if (rhs == nullptr) {
        out.removed.Insert(path.elements);
      } else if (*lhs != *rhs) {
        out.modified.Insert(path.elements);
      }
      return;
    }
    const NodeKind kind = lhs != nullptr ? left : right;
    if (kind == NodeKind::kMap) {
      if (lhs != nullptr) {
        for (const auto& [key, child] : lhs->items()) {
          const json* other = nullptr;
          if (rhs != nullptr) {
            if (auto it = rhs->find(key); it != rhs->end()) other = &*it;
          }
          path.PushField(key);
          Compare(&child, other, path, out);
          path.PopField();
        }
      }
      if (rhs != nullptr) {
        for (const auto& [key, child] : rhs->items()) {
          if (lhs != nullptr && lhs->contains(key)) continue;
          path.PushField(key);
          Compare(nullptr, &child, path, out);
          path.PopField();
        }
      }
    } else {
      std::map<std::string, const json*> right_items;
      if (rhs != nullptr) {
        for (const auto& [element, item] : Items(*rhs, path.fields))
          right_items[element] = item;
      }
      std::set<std::string> seen;
      if (lhs != nullptr) {
        for (const auto& [element, item] : Items(*lhs, path.fields)) {
          seen.insert(element);
          auto it = right_items.find(element);
          path.elements.push_back(element);
          Compare(item, it == right_items.end() ? nullptr : it->second, path, out);
          path.elements.pop_back();
        }
      }
      if (rhs != nullptr) {
        for (const auto& [element, item] : Items(*rhs, path.fields)) {
          if (seen.count(element) > 0) continue;
          path.elements.push_back(element);
          Compare(nullptr, item, path, out);
          path.elements.pop_back();
        }
      }
    }
    if (path.elements.empty()) return;
    if (lhs == nullptr) out.added.Insert(path.elements);
    if (rhs == nullptr) out.removed.Insert(path.elements);
  }

  // typed.Merge: `rhs` (the applied configuration) wins on leaves; maps merge
  // by key, associative lists by item key (live order, then new items).
  json Merge(const json& lhs, const json& rhs, Path& path) const {
    const NodeKind left = Classify(lhs, path.fields);
    const NodeKind right = Classify(rhs, path.fields);
    if (left != right || left == NodeKind::kLeaf) return rhs;
    if (left == NodeKind::kMap) {
      json out = lhs;
      for (const auto& [key, child] : rhs.items()) {
        path.PushField(key);
        auto it = lhs.find(key);
        out[key] = it == lhs.end() ? child : Merge(*it, child, path);
        path.PopField();
      }
      return out;
    }
    std::map<std::string, const json*> right_items;
    for (const auto& [element, item] : Items(rhs, path.fields))
      right_items[element] = item;
    json out = json::array();
    std::set<std::string> seen;
    for (const auto& [element, item] : Items(lhs, path.fields)) {
      seen.insert(element);
      auto it = right_items.find(element);
      if (it == right_items.end()) {
        out.push_back(*item);
        continue;
      }
      path.elements.push_back(element);
      out.push_back(Merge(*item, *it->second, path));
      path.elements.pop_back();
    }
    for (const auto& [element, item] : Items(rhs, path.fields)) {
      if (seen.count(element) == 0) out.push_back(*item);
    }
    return out;
  }

  // typed.RemoveItems: drops every member of `set` from `v`.
  void RemoveItems(json& v, const FieldSet& set, Path& path) const {
    for (const auto& [element, child] : set.children) {
      if (StartsWith(element, "f:")) {
        if (!v.is_object()) continue;
        const std::string name = element.substr(2);
        auto it = v.find(name);
        if (it == v.end()) continue;
        if (child.member) {
          v.erase(it);
          continue;
        }
        path.PushField(name);
        RemoveItems(*it, child, path);
        path.PopField();
        continue;
      }
      if (!v.is_array()) continue;
      const NodeKind kind = Classify(v, path.fields);
      if (kind != NodeKind::kSetList && kind != NodeKind::kMapList) continue;
      const ListInfo info = schema_.List(path.fields);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string item_element =
            kind == NodeKind::kSetList ? "v:" + v[i].dump() : ItemKey(v[i], info);
        if (item_element != element) continue;
        if (child.member) {
          v.erase(i);
        } else {
          path.elements.push_back(element);
          RemoveItems(v[i], child, path);
          path.elements.pop_back();
        }
        break;
      }
    }
  }

 private:
  static std::string ItemKey(const json& item, const ListInfo& info) {
    json keys = json::object();
    for (const std::string& k : info.keys) {
      if (auto it = item.find(k); it != item.end()) keys[k] = *it;
    }
    return "k:" + keys.dump();
  }

  // Elements of a granular list with their FieldsV1 path element, in order.
  std::vector<std::pair<std::string, const json*>> Items(
      const json& list, const std::vector<std::string>& fields) const {
    std::vector<std::pair<std::string, const json*>> out;
    const ListInfo info = schema_.List(fields);
    for (const json& e : list) {
      out.emplace_back(info.type == ListType::kSet ? "v:" + e.dump() : ItemKey(e, info), &e);
    }
    return out;
  }

  const KindSchema& schema_;
};

// ---------------------------------------------------------------------------
// metadata.managedFields

struct ManagerEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string time;
  FieldSet set;

  // BuildManagerIdentifier: appliers are one manager across API versions.
  bool SameManager(const ManagerEntry& other) const {
    return manager == other.manager && operation == other.operation &&
           (operation == "Apply" || api_version == other.api_version);
  }
};

std::string StringField(const json& entry, const char* name) {
  auto it = entry.find(name);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* ManagedFieldsOf(const json& obj) {
  if (!obj.is_object()) return nullptr;
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return nullptr;
  auto managed = meta->find("managedFields");
  return managed == meta->end() ? nullptr : &*managed;
}

// `[{}]` is the documented way for a client to reset managedFields.
bool IsResetManagedFields(const json* managed) {
  return managed != nullptr && managed->is_array() && managed->size() == 1 &&
         (*managed)[0].is_object() && (*managed)[0].empty();
}

std::vector<ManagerEntry> DecodeManagedFields(const json* managed) {
  std::vector<ManagerEntry> out;
  if (managed == nullptr || !managed->is_array()) return out;
  for (const json& raw : *managed) {
    if (!raw.is_object()) continue;
    ManagerEntry entry;
    entry.manager = StringField(raw, "manager");
    entry.operation = StringField(raw, "operation");
    entry.api_version = StringField(raw, "apiVersion");
    entry.time = StringField(raw, "time");
    if (auto fields = raw.find("fieldsV1"); fields != raw.end()) {
      entry.set = FieldSet::FromFieldsV1(*fields);
    }
    if (entry.set.Empty()) continue;
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const ManagerEntry& e) { return e.SameManager(entry); });
    if (same == out.end()) {
      out.push_back(std::move(entry));
    } else {
      same->set.UnionWith(entry.set);
      same->time = std::max(same->time, entry.time);
    }
  }
  return out;
}

// Writes `managers` into obj.metadata.managedFields, sorted like the real
// server (operation, time, manager, apiVersion); removes it when empty.
void EncodeManagedFields(std::vector<ManagerEntry> managers, json& obj) {
  managers.erase(std::remove_if(managers.begin(), managers.end(),
                                [](const ManagerEntry& e) { return e.set.Empty(); }),
                 managers.end());
  std::sort(managers.begin(), managers.end(), [](const ManagerEntry& a, const ManagerEntry& b) {
    return std::tie(a.operation, a.time, a.manager, a.api_version) <
           std::tie(b.operation, b.time, b.manager, b.api_version);
  });
  auto meta_it = obj.find("metadata");
  if (managers.empty()) {
    if (meta_it != obj.end() && meta_it->is_object()) meta_it->erase("managedFields");
    return;
  }
  if (meta_it == obj.end() || meta_it->is_null()) obj["metadata"] = json::object();
  json& meta = obj["metadata"];
  if (!meta.is_object()) return;  // validation reports a malformed metadata
  json list = json::array();
  for (const ManagerEntry& e : managers) {
    json entry = {{"manager", e.manager},
                  {"operation", e.operation},
                  {"apiVersion", e.api_version},
                  {"fieldsType", "FieldsV1"},
                  {"fieldsV1", e.set.ToFieldsV1()}};
    if (!e.time.empty()) entry["time"] = e.time;
    list.push_back(std::move(entry));
  }
  meta["managedFields"] = std::move(list);
}

json WithoutManagedFields(const json& obj) {
  json copy = obj;
  if (copy.is_object()) {
    auto meta = copy.find("metadata");
    if (meta != copy.end() && meta->is_object()) meta->erase("managedFields");
  }
  return copy;
}

std::string KindOf(const json& obj) {
  if (!obj.is_object()) return "";
  return StringField(obj, "kind");
}

// What a decoded-but-empty Go object of `kind` serializes to: the baseline a
// create is compared with, so fields that are non-pointer structs in Go do not
// count as added.
json ZeroObject(std::string_view kind) {
  if (!IsBuiltinKind(kind)) return json::object();
  json zero = {{"metadata", json::object()}};
  if (kind == "ConfigMap" || kind == "Secret" || kind == "Endpoints" || kind == "ServiceAccount") {
    return zero;
  }
  if (kind == "Event") {
    zero["involvedObject"] = json::object();
    zero["source"] = json::object();
    zero["firstTimestamp"] = nullptr;
    zero["lastTimestamp"] = nullptr;
    zero["eventTime"] = nullptr;
    zero["reportingComponent"] = "";
    zero["reportingInstance"] = "";
    return zero;
  }
  zero["spec"] = json::object();
  if (kind == "Lease") return zero;
  if (kind == "Pod") zero["spec"]["containers"] = nullptr;  // not omitempty in Go
  zero["status"] = json::object();
  if (kind == "CustomResourceDefinition") {
    zero["spec"]["names"] = json::object();
    zero["status"] = {{"acceptedNames", {{"kind", ""}, {"plural", ""}}},
                      {"conditions", nullptr},
                      {"storedVersions", nullptr}};
  } else if (PodSpecPath(kind) == "spec.template.spec") {
    zero["spec"]["template"] = {{"metadata", {{"creationTimestamp", nullptr}}},
                                {"spec", {{"containers", nullptr}}}};
  }
  return zero;
}

// conflict.go printManager: Update managers name their version and time.
std::string PrintManager(const ManagerEntry& e) {
  std::string out = json(e.manager).dump();
  if (e.operation == "Update") {
    out += " using " + e.api_version;
    if (!e.time.empty()) out += " at " + e.time;
  }
  return out;
}

kube::Error ConflictError(const std::vector<std::pair<const ManagerEntry*, FieldSet>>& conflicts) {
  struct Conflict {
    std::string manager;
    std::string path;
  };
  std::vector<Conflict> all;
  for (const auto& [entry, set] : conflicts) {
    std::vector<std::vector<std::string>> members;
    std::vector<std::string> prefix;
    set.Members(prefix, members);
    for (const auto& member : members)
      all.push_back({PrintManager(*entry), PathString(member)});
  }
  std::string message;
  if (all.size() == 1) {
    message = "Apply failed with 1 conflict: conflict with " + all[0].manager + ": " + all[0].path;
  } else {
    std::map<std::string, std::vector<std::string>> by_manager;
    for (const Conflict& c : all)
      by_manager[c.manager].push_back(c.path);
    std::string lines;
    for (const auto& [manager, paths] : by_manager) {
      if (!lines.empty()) lines += "\n";
      lines += "conflicts with " + manager + ":";
      for (const std::string& p : paths)
        lines += "\n- " + p;
    }
    message = "Apply failed with " + std::to_string(all.size()) + " conflicts: " + lines;
  }
  kube::Error error(kube::Error::Kind::kApi, 409, "Conflict", message);
  for (const Conflict& c : all) {
    error.mutable_details().causes.push_back(
        {"FieldManagerConflict", "conflict with " + c.manager, c.path});
  }
  return error;
}

// Removes from `last` what someone still owns; a member whose descendants are
// owned is kept and only its unowned descendants are removed.
FieldSet Unowned(const FieldSet& last, const FieldSet& owned) {
  FieldSet out;
  if (last.member && owned.Empty()) {
    out.member = true;
    return out;
  }
  for (const auto& [element, child] : last.children) {
    auto it = owned.children.find(element);
    FieldSet sub = it == owned.children.end() ? child : Unowned(child, it->second);
    if (!sub.Empty()) out.children.emplace(element, std::move(sub));
  }
  return out;
}

kube::Error InvalidPatchOptions(std::string detail) {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: " + detail);
  error.mutable_details().group = "meta.k8s.io";
  error.mutable_details().kind = "PatchOptions";
  error.mutable_details().causes.push_back(
      {detail.rfind("Required", 0) == 0 ? "FieldValueRequired" : "FieldValueTooLong", detail,
       "fieldManager"});
  return error;
}

}  // namespace

kube::Result<json> ApplyServerSide(const json* existing, std::string_view body,
                                   std::string_view field_manager, bool force,
                                   const ApplyContext& ctx) {
  if (field_manager.empty())
    return InvalidPatchOptions("Required value: is required for apply patch");
  if (field_manager.size() > 128) {
    return InvalidPatchOptions("Too long: must have at most 128 bytes");
  }
  std::string parse_error;
  std::optional<json> config = ParseYamlOrJson(body, &parse_error);
  if (!config) return BadRequest("error decoding YAML: " + parse_error);
  if (!config->is_object()) {
    return BadRequest("error decoding YAML: cannot unmarshal " + GoJsonTypeName(*config) +
                      " into an object");
  }
  const std::string patch_version = StringField(*config, "apiVersion");
  if (patch_version != ctx.api_version) {
    return BadRequest("Incorrect version specified in apply patch. Specified patch version: " +
                      patch_version + ", expected: " + ctx.api_version);
  }
  if (const json* managed = ManagedFieldsOf(*config); managed != nullptr && !managed->is_null()) {
    return BadRequest("metadata.managedFields must be nil in an apply patch");
  }
  if (existing != nullptr && !existing->is_object()) {
    return BadRequest("the live object is not a JSON object");
  }
  if (ValueTooDeep(*config) || (existing != nullptr && ValueTooDeep(*existing))) {
    return BadRequest("the object is nested too deeply");
  }
  std::string kind = KindOf(*config);
  if (existing != nullptr) {
    const std::string live_kind = KindOf(*existing);
    if (!kind.empty() && !live_kind.empty() && kind != live_kind) {
      return BadRequest("Incorrect kind specified in apply patch. Specified patch kind: " + kind +
                        ", expected: " + live_kind);
    }
    if (kind.empty()) kind = live_kind;
  }

  try {
    const KindSchema schema(kind);
    const TypedWalker walker(schema);
    const json live = existing != nullptr ? WithoutManagedFields(*existing) : json::object();
    std::vector<ManagerEntry> managers = existing != nullptr
                                             ? DecodeManagedFields(ManagedFieldsOf(*existing))
                                             : std::vector<ManagerEntry>{};
    // An object that predates field tracking: its fields belong to a
    // pseudo-manager, so the first apply cannot silently take them over.
    if (existing != nullptr && managers.empty()) {
      Path path;
      TypedWalker::Comparison baseline;
      const json zero = ZeroObject(kind);
      walker.Compare(&zero, &live, path, baseline);
      ManagerEntry before{"before-first-apply", "Update", ctx.api_version, ctx.time,
                          baseline.added.Difference(StripSet())};
      if (!before.set.Empty()) managers.push_back(std::move(before));
    }

    ManagerEntry applier{std::string(field_manager), "Apply", ctx.api_version, ctx.time, {}};
    Path path;
    walker.ToFieldSet(*config, path, applier.set);
    applier.set = applier.set.Difference(StripSet());

    FieldSet last_applied;
    FieldSet owned = applier.set;
    for (auto it = managers.begin(); it != managers.end();) {
      if (it->SameManager(applier)) {
        last_applied = it->set;
        it = managers.erase(it);
      } else {
        owned.UnionWith(it->set);
        ++it;
      }
    }

    json merged = walker.Merge(live, *config, path);
    // Fields this manager applied before but no longer does, and nobody else
    // owns, are removed from the object.
    walker.RemoveItems(merged, Unowned(last_applied, owned), path);

    TypedWalker::Comparison compare;
    walker.Compare(&live, &merged, path, compare);
    FieldSet changed = compare.modified;
    changed.UnionWith(compare.added);
    std::vector<std::pair<const ManagerEntry*, FieldSet>> conflicts;
    for (const ManagerEntry& other : managers) {
      FieldSet conflict = other.set.Intersection(changed);
      if (!conflict.Empty()) conflicts.emplace_back(&other, std::move(conflict));
    }
    if (!conflicts.empty() && !force) {
      std::sort(conflicts.begin(), conflicts.end(), [](const auto& a, const auto& b) {
        return std::tie(a.first->manager, a.first->operation) <
               std::tie(b.first->manager, b.first->operation);
      });
      return ConflictError(conflicts);
    }
    for (ManagerEntry& other : managers) {
      other.set = other.set.Difference(changed).Difference(compare.removed);
    }
    managers.push_back(std::move(applier));
    EncodeManagedFields(std::move(managers), merged);
    return merged;
  } catch (const json::exception& e) {
    return BadRequest(std::string("invalid apply patch: ") + e.what());
  }
}

void UpdateManagedFields(const json* old, json& updated, std::string_view manager,
                         const ApplyContext& ctx) {
  if (!updated.is_object() || ValueTooDeep(updated) || (old != nullptr && ValueTooDeep(*old))) {
    return;
  }
  try {
    const std::string name = manager.empty() ? std::string("unknown") : std::string(manager);
    const json* supplied = ManagedFieldsOf(updated);
    std::vector<ManagerEntry> managers;
    if (!IsResetManagedFields(supplied)) {
      managers = DecodeManagedFields(supplied);
      // Clients that do not know about managedFields must not wipe them.
      if (managers.empty() && old != nullptr) managers = DecodeManagedFields(ManagedFieldsOf(*old));
    }
    const std::string kind = KindOf(updated);
    const KindSchema schema(kind);
    const TypedWalker walker(schema);
    const json before = old != nullptr ? WithoutManagedFields(*old) : ZeroObject(kind);
    const json after = WithoutManagedFields(updated);
    Path path;
    TypedWalker::Comparison compare;
    walker.Compare(&before, &after, path, compare);

    FieldSet changed = compare.modified;
    changed.UnionWith(compare.added);
    for (ManagerEntry& entry : managers) {
      entry.set = entry.set.Difference(changed).Difference(compare.removed);
    }
    const FieldSet current = changed.Difference(compare.removed).Difference(StripSet());
    if (!current.Empty()) {
      ManagerEntry entry{name, "Update", ctx.api_version, ctx.time, current};
      auto same = std::find_if(managers.begin(), managers.end(),
                               [&](const ManagerEntry& e) { return e.SameManager(entry); });
      if (same == managers.end()) {
        managers.push_back(std::move(entry));
      } else {
        same->set.UnionWith(current);
        same->time = ctx.time;
      }
    }
    EncodeManagedFields(std::move(managers), updated);
  } catch (const json::exception&) {
    // Bookkeeping never fails a write (the real server logs and moves on).
  }
}

std::string FieldManagerFromUserAgent(std::string_view user_agent) {
  const std::string_view prefix = user_agent.substr(0, user_agent.find('/'));
  std::string out;
  for (char c : prefix) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) continue;  // not printable
    if (out.size() >= 128) break;
    out += c;
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace gpu_autoscaler::apiserver
