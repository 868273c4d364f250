// Create, update, patch and delete, with admission and defaulting.
#include "apiserver/api_server_internal.h"

#include "apiserver/builtin_decode.h"

namespace gpu_autoscaler::apiserver {

// ---------------------------------------------------------------------------
// Writes.

namespace {

// Checks apiVersion/kind of a body against the endpoint, filling them in when absent.
std::optional<Error> CheckTypeMeta(json& obj, const ResourceInfo& info, const std::string& kind,
                                   const std::string& api_version) {
  std::string got_kind = obj.value("kind", "");
  std::string got_version = obj.value("apiVersion", "");
  if (got_kind.empty()) obj["kind"] = kind;
  if (got_version.empty()) obj["apiVersion"] = api_version;
  if ((!got_kind.empty() && got_kind != kind)) {
    return BadRequestErr(got_kind + " in version \"" + info.version + "\" cannot be handled as a " +
                         kind + ": no kind \"" + got_kind + "\" is registered for version \"" +
                         got_version + "\"");
  }
  if (info.custom) return std::nullopt;
  if (auto why = BuiltinDecodeError(info.group, kind, obj)) {
    return BadRequestErr(kind + " in version \"" + info.version + "\" cannot be handled as a " +
                         kind + ": " + *why);
  }
  return std::nullopt;
}

// A JSON, merge or strategic patch whose result the kind's Go type cannot
// hold: kube-apiserver's patcher answers 422 on the field "patch".
std::optional<Error> CheckPatchedDecodes(const json& patched, const ResourceInfo& info) {
  if (info.custom) return std::nullopt;
  auto why = BuiltinDecodeError(info.group, info.kind, patched);
  if (!why) return std::nullopt;
  const std::string body = "Invalid value: " + json(patched.dump()).dump() + ": " + *why;
  Error e = ApiErr(422, "Invalid", "\"\" is invalid: patch: " + body);
  e.mutable_details().causes.push_back({"FieldValueInvalid", body, "patch"});
  return e;
}

ValidationTarget TargetOf(const ResourceInfo& info, const std::string& sub) {
  return ValidationTarget{info.group, info.version, info.resource, info.kind, info.namespaced, sub};
}

bool IsPods(const ResourceInfo& info) {
  return !info.custom && info.group.empty() && info.resource == "pods";
}

bool IsPriorityClasses(const ResourceInfo& info) {
  return info.group == "scheduling.k8s.io" && info.resource == "priorityclasses";
}

// admission.NewForbidden: the name is the request's, else the object's
// generateName (admission runs before names are generated), else "Unknown".
Error AdmissionForbidden(const ResourceInfo& info, std::string name, const std::string& why) {
  if (name.empty()) name = "Unknown";
  Error e = ApiErr(
      403, "Forbidden",
      GroupResourceName(info.group, info.resource) + " \"" + name + "\" is forbidden: " + why);
  return WithDetails(e, info.group, info.resource, name);
}

}  // namespace

PriorityClassLookup ApiServer::Impl::StoredPriorityClasses() {
  const std::string key = registry.Find("scheduling.k8s.io", "v1", "priorityclasses")->StorageKey();
  return {
      .find = [this, key](const std::string& name) -> json {
        ObjectPtr pc = store.Get(key, name);
        return pc ? pc->Parse() : json();
      },
      .global_default = [this, key]() -> json {
        ListRequest lr;
        lr.storage_key = key;
        // Cheap pre-filter on the stored text; the parse below decides.
        lr.filter = [](const StoredObject& o) {
          return o.json.find("\"globalDefault\":true") != std::string::npos;
        };
        auto listed = store.List(lr);
        if (!listed.ok()) return json();
        std::vector<json> classes;
        for (const auto& pc : listed->items)
          classes.push_back(pc->Parse());
        return GlobalDefaultPriorityClass(classes);
      },
  };
}

std::optional<Error> ApiServer::Impl::CheckGlobalDefault(const ResourceInfo& info, const json& pc,
                                                         bool create) {
  if (pc.value("globalDefault", false) != true) return std::nullopt;
  const json existing = StoredPriorityClasses().global_default();
  if (!existing.is_object()) return std::nullopt;
  const std::string existing_name = MetaString(existing, "name");
  const std::string name = MetaString(pc, "name");
  if (!create && existing_name == name) return std::nullopt;
  return AdmissionForbidden(info, name,
                            "PriorityClass " + existing_name +
                                " is already marked as default. Only one default can exist");
}

kube::Result<std::monostate> ApiServer::Impl::Admit(bool mutating, const ResourceInfo& info,
                                                    const char* operation, const std::string& sub,
                                                    const std::string& ns, const std::string& name,
                                                    json* obj, const json* old, bool dry_run,
                                                    const json* options) {
  if (!admission.Active()) return std::monostate{};
  AdmissionAttributes a = AdmissionAttributesFor(info, operation, sub, ns, name);
  a.object = obj;
  a.old_object = old;
  a.dry_run = dry_run;
  a.options = options;
  return mutating ? admission.Mutate(a, obj, &t_warnings) : admission.Validate(a, &t_warnings);
}

void ApiServer::Impl::AfterWrite(const ResourceInfo& info, const json& obj, bool deleted) {
  if (info.group == "admissionregistration.k8s.io") admission.Invalidate();
  if (info.group != "apiextensions.k8s.io" || info.resource != "customresourcedefinitions") return;
  std::string name = MetaString(obj, "name");
  if (deleted) {
    std::string storage_key =
        obj["spec"].value("group", "") + "/" + obj["spec"]["names"].value("plural", "");
    registry.UnregisterCrd(name);
    for (const auto& [key, object_key] : store.KeysWithPrefix("")) {
      if (key == storage_key) (void)store.Delete(key, object_key, 0);
    }
    return;
  }
  (void)registry.RegisterCrd(obj);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::CreateObject(const ResourceInfo& info,
                                                                   const std::string& ns, json obj,
                                                                   bool dry_run,
                                                                   const std::string& manager) {
  json* meta = MetaOf(obj);
  if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
  if (info.namespaced) {
    std::string body_ns = MetaString(obj, "namespace");
    if (!body_ns.empty() && body_ns != ns) {
      return BadRequestErr(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    (*meta)["namespace"] = ns;
  } else {
    meta->erase("namespace");
  }
  std::string name = MetaString(obj, "name");
  const std::string request_name = name;  // admission sees "" for generateName
  if (name.empty()) {
    std::string generate = MetaString(obj, "generateName");
    if (!generate.empty()) {
      name = generate + RandomSuffix(5);
      (*meta)["name"] = name;
    }
  }
  if (info.namespaced) {
    auto ns_obj = store.Get("/namespaces", ns);
    if (!ns_obj) return NotFoundErr("", "namespaces", ns);
    if (ns_obj->json.find("\"deletionTimestamp\"") != std::string::npos &&
        IsTerminating(ns_obj->Parse())) {
      Error e = ApiErr(403, "Forbidden",
                       GroupResourceName(info.group, info.resource) + " \"" + name +
                           "\" is forbidden: unable to create new content in namespace " + ns +
                           " because it is being terminated");
      return WithDetails(e, info.group, info.resource, name);
    }
  }
  // Server-owned fields.
  for (const char* f : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "selfLink", "uid", "creationTimestamp"}) {
    meta->erase(f);
  }
  std::unique_ptr<json> schema;
  if (info.custom && !info.schema_json.empty()) {
    schema = std::make_unique<json>(json::parse(info.schema_json));
  }
  // kube-apiserver's order: decode (defaulting or pruning), then field
  // tracking, then the strategy (which drops a status the status subresource
  // owns) and the built-in admission plugins. Only what the client sent and
  // decoding filled is owned by its manager: a status it sent stays in its
  // managedFields although the strategy drops it, as the real server records.
  if (schema) {
    PruneUnknownFields(*schema, obj);
  } else if (!info.custom) {
    ApplyDecodeDefaults(info.group, info.kind, obj);
  }
  if (!manager.empty()) {  // empty: server-side apply already tracked the fields
    ApplyContext ctx{Now(), info.ApiVersion(), ""};
    UpdateManagedFields(nullptr, obj, manager, ctx);
  }
  bool has_status = info.HasSubresource("status");
  if (has_status && info.resource != "nodes" && info.resource != "namespaces" &&
      info.resource != "customresourcedefinitions") {
    obj.erase("status");
  }
  if (IsPods(info)) {
    // The Priority plugin, on the pod as sent: before the defaults fill
    // spec.priority, and before the webhooks.
    if (auto why = AdmitPodPriority(obj, StoredPriorityClasses())) {
      return AdmissionForbidden(
          info, request_name.empty() ? MetaString(obj, "generateName") : request_name, *why);
    }
  }
  auto default_object = [&] {
    if (schema) {
      PruneUnknownFields(*schema, obj);
    } else if (!info.custom) {
      ApplyDefaults(info.group, info.kind, obj);
    }
  };
  default_object();
  if (admission.Active()) {
    auto admitted = Admit(true, info, "CREATE", "", ns, request_name, &obj, nullptr, dry_run);
    if (!admitted.ok()) return admitted.error();
    default_object();  // a patched object is decoded (defaulted, pruned) again
    meta = MetaOf(obj);
    if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
  }
  (*meta)["uid"] = NewUid();
  (*meta)["creationTimestamp"] = Now();
  // PriorityClass's strategy sets generation 1 and never bumps it.
  if (info.tracks_generation || IsPriorityClasses(info)) {
    (*meta)["generation"] = 1;
  } else {
    meta->erase("generation");
  }
  if (!info.custom) PrepareForValidation(info.group, info.kind, obj);
  auto valid = ValidateCreate(TargetOf(info, ""), obj, schema.get());
  if (!valid.ok()) return valid.error();
  name = MetaString(obj, "name");
  if (IsPriorityClasses(info)) {
    if (auto e = CheckGlobalDefault(info, obj, true)) return *e;
  }
  auto validated = Admit(false, info, "CREATE", "", ns, request_name, &obj, nullptr, dry_run);
  if (!validated.ok()) return validated.error();
  if (dry_run) return Reply{201, obj.dump()};
  auto created = store.Create(info.StorageKey(), obj, info.selectable_fields);
  if (!created.ok()) {
    if (created.error().code() == 409) return AlreadyExistsErr(info.group, info.resource, name);
    return created.error();
  }
  std::string body = Render(*created->object, info);
  if (info.group == "admissionregistration.k8s.io") AfterWrite(info, obj, false);
  if (info.resource == "customresourcedefinitions") {
    AfterWrite(info, obj, false);
    // Like the apiextensions controllers: accept the names and mark it Established.
    json crd = ParseStored(*created->object, info);
    json status = crd.value("status", json::object());
    status["acceptedNames"] = crd["spec"]["names"];
    std::string now = Now();
    status["conditions"] = json::array({{{"type", "NamesAccepted"},
                                         {"status", "True"},
                                         {"reason", "NoConflicts"},
                                         {"message", "no conflicts found"},
                                         {"lastTransitionTime", now}},
                                        {{"type", "Established"},
                                         {"status", "True"},
                                         {"reason", "InitialNamesAccepted"},
                                         {"message", "the initial names have been accepted"},
                                         {"lastTransitionTime", now}}});
    crd["status"] = status;
    (void)store.Update(info.StorageKey(), created->object->key, created->object->resource_version,
                       crd, info.selectable_fields);
  }
  return Reply{201, body};
}

void ApiServer::Impl::Create(Call& c) {
  if (!c.sub.empty()) return RespondError(c.w, MethodNotAllowedErr());
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  if (auto e = CheckTypeMeta(*body, *c.info, c.info->kind, c.info->ApiVersion())) {
    return RespondError(c.w, *e);
  }
  auto reply = CreateObject(*c.info, c.ns, std::move(body).value(), c.DryRun(), FieldManager(c));
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::UpdateObject(
    const ResourceInfo& info, const std::string& ns, const std::string& name,
    const std::string& sub, const Mutator& mutate, bool allow_create, bool dry_run,
    const std::string& manager, bool admit) {
  std::string key = ns.empty() ? name : ns + "/" + name;
  std::unique_ptr<json> schema;
  if (info.custom && !info.schema_json.empty()) {
    schema = std::make_unique<json>(json::parse(info.schema_json));
  }
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    ObjectPtr current = store.Get(info.StorageKey(), key);
    if (!current) {
      if (!allow_create) return NotFoundErr(info.group, info.resource, name);
      auto desired = mutate(nullptr);
      if (!desired.ok()) return desired.error();
      json obj = std::move(desired).value();
      if (json* meta = MetaOf(obj)) (*meta)["name"] = name;
      auto created = CreateObject(info, ns, std::move(obj), dry_run, manager);
      if (!created.ok() && created.error().code() == 409 &&
          created.error().reason() == "AlreadyExists") {
        continue;  // lost a race with another create
      }
      return created;
    }
    json old = ParseStored(*current, info);
    auto desired = mutate(&old);
    if (!desired.ok()) return desired.error();
    json updated = std::move(desired).value();
    json* meta = MetaOf(updated);
    if (meta == nullptr) return BadRequestErr("the object must be a JSON object");
    std::string body_name = MetaString(updated, "name");
    if (!body_name.empty() && body_name != name) {
      return BadRequestErr("the name of the object (" + body_name +
                           ") does not match the name on the URL (" + name + ")");
    }
    std::string body_uid = MetaString(updated, "uid");
    if (!body_uid.empty() && body_uid != current->uid) {
      return ConflictErr(info.group, info.resource, name,
                         "Precondition failed: UID in precondition: " + current->uid +
                             ", UID in object meta: " + body_uid);
    }
    std::string body_rv = MetaString(updated, "resourceVersion");
    if (!body_rv.empty() && body_rv != std::to_string(current->resource_version)) {
      return ConflictErr(info.group, info.resource, name, kModified);
    }
    // Fields are tracked on the decoded request object, before the strategy
    // restores what this endpoint may not change (status on the main
    // resource, spec on status): a status the client dropped leaves the
    // managedFields even though the stored status stays, as in kube-apiserver.
    const bool track_request = !manager.empty() && sub != "binding";
    if (track_request) {
      json tracked = updated;
      tracked["apiVersion"] = info.ApiVersion();
      tracked["kind"] = info.kind;
      if (!info.custom) {
        ApplyDecodeDefaults(info.group, info.kind, tracked);
      } else if (schema) {
        PruneUnknownFields(*schema, tracked);
      }
      ApplyContext ctx{Now(), info.ApiVersion(), sub == "status" ? "status" : ""};
      UpdateManagedFields(&old, tracked, manager, ctx);
      if (const json* tracked_meta = MetaOf(tracked); tracked_meta != nullptr) {
        if (tracked_meta->contains("managedFields")) {
          (*meta)["managedFields"] = (*tracked_meta)["managedFields"];
        } else {
          meta->erase("managedFields");
        }
      }
    }
    const json& old_meta = old["metadata"];
    if (sub == "status" || sub == "finalize") {
      // Only status (or spec.finalizers) changes through these subresources.
      json result = old;
      if (sub == "status") {
        if (updated.contains("status")) {
          result["status"] = updated["status"];
        } else {
          result.erase("status");
        }
      } else {
        result["spec"]["finalizers"] =
            updated.value("spec", json::object()).value("finalizers", json::array());
      }
      if (meta->contains("managedFields"))
        result["metadata"]["managedFields"] = (*meta)["managedFields"];
      updated = std::move(result);
      meta = MetaOf(updated);
    } else if (sub != "binding") {  // a binding's mutator writes spec and status itself
      for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                            "deletionGracePeriodSeconds", "generation", "namespace", "name"}) {
        if (old_meta.contains(f)) {
          (*meta)[f] = old_meta[f];
        } else {
          meta->erase(f);
        }
      }
      if (info.HasSubresource("status")) {
        if (old.contains("status")) {
          updated["status"] = old["status"];
        } else {
          updated.erase("status");
        }
      }
    }
    updated["apiVersion"] = info.ApiVersion();
    updated["kind"] = info.kind;
    if (IsPods(info) && sub.empty()) {
      // The Priority plugin on UPDATE keeps what it set on create.
      auto spec = updated.find("spec");
      auto old_spec = old.find("spec");
      if (spec != updated.end() && spec->is_object() && old_spec != old.end() &&
          old_spec->is_object()) {
        for (const char* f : {"priority", "preemptionPolicy"}) {
          auto was = old_spec->find(f);
          auto now = spec->find(f);
          if ((now == spec->end() || now->is_null()) && was != old_spec->end()) (*spec)[f] = *was;
        }
      }
    }
    auto default_object = [&] {
      if (info.custom) {
        if (schema) PruneUnknownFields(*schema, updated);
      } else {
        ApplyDefaults(info.group, info.kind, updated);
      }
    };
    default_object();
    if (!manager.empty() && !track_request) {
      ApplyContext ctx{Now(), info.ApiVersion(), ""};
      UpdateManagedFields(&old, updated, manager, ctx);
    }
    if (admit && admission.Active()) {
      auto admitted = Admit(true, info, "UPDATE", sub, ns, name, &updated, &old, dry_run);
      if (!admitted.ok()) return admitted.error();
      default_object();
      if (MetaOf(updated) == nullptr) return BadRequestErr("the object must be a JSON object");
    }
    if (sub != "binding") {  // kube-apiserver's BindingREST sets nodeName without pod validation
      auto valid = ValidateUpdate(TargetOf(info, sub), old, updated, schema.get());
      if (!valid.ok()) return valid.error();
    }
    if (admit && sub.empty() && IsPriorityClasses(info)) {
      if (auto e = CheckGlobalDefault(info, updated, false)) return *e;
    }
    meta = MetaOf(updated);
    if (info.tracks_generation && SpecPart(old) != SpecPart(updated)) {
      (*meta)["generation"] = old_meta.value("generation", 0) + 1;
    }
    if (admit) {
      auto validated = Admit(false, info, "UPDATE", sub, ns, name, &updated, &old, dry_run);
      if (!validated.ok()) return validated.error();
    }
    meta = MetaOf(updated);
    (*meta)["resourceVersion"] = std::to_string(current->resource_version);
    if (SameObject(old, updated)) return Reply{200, Render(*current, info)};
    bool finalize = IsTerminating(old) && !HasFinalizers(updated);
    if (dry_run) return Reply{200, updated.dump()};
    auto written = store.Update(info.StorageKey(), key, current->resource_version, updated,
                                info.selectable_fields);
    if (!written.ok()) {
      if (written.error().code() == 409) continue;  // raced with another writer: retry
      if (written.error().code() == 404) return NotFoundErr(info.group, info.resource, name);
      return written.error();
    }
    std::string body = Render(*written->object, info);
    AfterWrite(info, updated, false);
    if (finalize) {
      // The last finalizer is gone from a terminating object: it is deleted now.
      auto deleted = store.Delete(info.StorageKey(), key, written->object->resource_version);
      if (deleted.ok()) {
        AfterWrite(info, updated, true);
        body = Render(*deleted->object, info);
      }
    }
    return Reply{200, body};
  }
  return ConflictErr(info.group, info.resource, name, kModified);
}

void ApiServer::Impl::Update(Call& c) {
  auto body = ParseBody(c);
  if (!body.ok()) return RespondError(c.w, body.error());
  if (auto e = CheckTypeMeta(*body, *c.info, c.info->kind, c.info->ApiVersion())) {
    return RespondError(c.w, *e);
  }
  json desired = std::move(body).value();
  auto reply = UpdateObject(
      *c.info, c.ns, c.name, c.sub, [&](const json*) -> kube::Result<json> { return desired; },
      c.info->allow_create_on_update&& c.sub.empty(), c.DryRun(), FieldManager(c));
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

void ApiServer::Impl::Patch(Call& c) {
  const ResourceInfo& info = *c.info;
  std::string media = MediaType(c.req.Header("Content-Type"));
  const std::string& patch = c.req.body;
  std::string manager = FieldManager(c);
  Mutator mutate;
  bool allow_create = false;
  if (media == "application/json-patch+json") {
    mutate = [&](const json* current) { return ApplyJsonPatch(*current, patch); };
  } else if (media == "application/merge-patch+json") {
    mutate = [&](const json* current) { return ApplyMergePatch(*current, patch); };
  } else if (media == "application/strategic-merge-patch+json") {
    if (info.custom) {
      return RespondError(
          c.w, ApiErr(415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/apply-patch+yaml"));
    }
    mutate = [&](const json* current) {
      return ApplyStrategicMergePatch(*current, patch, info.kind);
    };
  } else if (media == "application/apply-patch+yaml") {
    std::string field_manager = c.req.QueryParam("fieldManager");
    if (field_manager.empty()) {
      return RespondError(c.w, BadRequestErr("PATCH " + c.req.path +
                                             ": fieldManager is required for apply requests"));
    }
    bool force = c.req.QueryParam("force") == "true";
    allow_create = c.sub.empty();
    mutate = [&, field_manager, force](const json* current) -> kube::Result<json> {
      ApplyContext ctx{Now(), info.ApiVersion(), c.sub};
      auto applied = ApplyServerSide(current, patch, field_manager, force, ctx);
      if (!applied.ok()) return applied.error();
      json obj = std::move(applied).value();
      if (auto e = CheckTypeMeta(obj, info, info.kind, info.ApiVersion())) return *e;
      return obj;
    };
    manager.clear();  // ApplyServerSide maintains managedFields itself
  } else {
    Error e = ApiErr(415, "UnsupportedMediaType", "415: Unsupported Media Type");
    e.mutable_details().present = true;
    return RespondError(c.w, e);
  }
  if (media != "application/apply-patch+yaml") {
    mutate = [&, patch_only = std::move(mutate)](const json* current) -> kube::Result<json> {
      auto patched = patch_only(current);
      if (!patched.ok()) return patched;
      if (auto e = CheckPatchedDecodes(*patched, info)) return *e;
      return patched;
    };
  }
  auto reply = UpdateObject(info, c.ns, c.name, c.sub, mutate, allow_create, c.DryRun(), manager);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

kube::Result<ApiServer::Impl::Reply> ApiServer::Impl::DeleteObject(const ResourceInfo& info,
                                                                   const std::string& ns,
                                                                   const std::string& name,
                                                                   const json& options,
                                                                   bool dry_run, bool admit) {
  std::string key = ns.empty() ? name : ns + "/" + name;
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    ObjectPtr current = store.Get(info.StorageKey(), key);
    if (!current) return NotFoundErr(info.group, info.resource, name);
    json obj = ParseStored(*current, info);
    if (options.contains("preconditions") && options["preconditions"].is_object()) {
      const json& pre = options["preconditions"];
      std::string uid = pre.value("uid", "");
      if (!uid.empty() && uid != current->uid) {
        return WithDetails(ApiErr(409, "Conflict",
                                  "Operation cannot be fulfilled on " + info.kind + " \"" + name +
                                      "\": the UID in the precondition (" + uid +
                                      ") does not match the UID in record (" + current->uid +
                                      "). The object might have been deleted and then recreated"),
                           "", info.kind, name);
      }
      std::string rv = pre.value("resourceVersion", "");
      if (!rv.empty() && rv != std::to_string(current->resource_version)) {
        return WithDetails(ApiErr(409, "Conflict",
                                  "Operation cannot be fulfilled on " + info.kind + " \"" + name +
                                      "\": the ResourceVersion in the precondition (" + rv +
                                      ") does not match the ResourceVersion in record (" +
                                      std::to_string(current->resource_version) +
                                      "). The object might have been modified"),
                           "", info.kind, name);
      }
    }
    if (admit && admission.Active()) {
      for (bool mutating : {true, false}) {
        auto admitted =
            Admit(mutating, info, "DELETE", "", ns, name, nullptr, &obj, dry_run, &options);
        if (!admitted.ok()) return admitted.error();
      }
    }
    if (dry_run) return Reply{200, Render(*current, info)};
    bool is_pod = info.group.empty() && info.resource == "pods";
    bool finalizers = HasFinalizers(obj);
    std::optional<int64_t> grace;
    if (options.contains("gracePeriodSeconds") && options["gracePeriodSeconds"].is_number()) {
      grace = options["gracePeriodSeconds"].get<int64_t>();
    }
    if (is_pod) {
      if (!grace) grace = obj["spec"].value("terminationGracePeriodSeconds", int64_t{30});
      std::string phase = obj.value("status", json::object()).value("phase", "");
      if (obj["spec"].value("nodeName", "").empty() || phase == "Succeeded" || phase == "Failed") {
        grace = 0;  // nothing runs it: no graceful termination
      }
    }
    if (info.resource == "namespaces" && info.group.empty()) {
      DeleteNamespaceContents(name);
    }
    bool immediate = !finalizers && (!is_pod || *grace == 0);
    bool already_terminating = IsTerminating(obj);
    if (!immediate || is_pod) {
      if (!already_terminating ||
          (is_pod && grace &&
           obj["metadata"].value("deletionGracePeriodSeconds", int64_t{-1}) > *grace)) {
        // Graceful deletion: mark the object terminating first (a MODIFIED event).
        auto when = clock.WallNow() + std::chrono::seconds(is_pod ? *grace : 0);
        obj["metadata"]["deletionTimestamp"] = FormatTime(when);
        obj["metadata"]["deletionGracePeriodSeconds"] = is_pod ? *grace : 0;
        if (info.resource == "namespaces" && info.group.empty()) {
          obj["status"]["phase"] = "Terminating";
        }
        if (info.tracks_generation) {
          obj["metadata"]["generation"] = obj["metadata"].value("generation", 0) + 1;
        }
        auto marked = store.Update(info.StorageKey(), key, current->resource_version, obj,
                                   info.selectable_fields);
        if (!marked.ok()) {
          if (marked.error().code() == 409) continue;
          return NotFoundErr(info.group, info.resource, name);
        }
        current = marked->object;
      }
      if (!immediate) return Reply{200, Render(*current, info)};
    }
    auto deleted = store.Delete(info.StorageKey(), key, current->resource_version);
    if (!deleted.ok()) {
      if (deleted.error().code() == 409) continue;
      return NotFoundErr(info.group, info.resource, name);
    }
    AfterWrite(info, ParseStored(*deleted->object, info), true);
    if (info.return_deleted_object) return Reply{200, Render(*deleted->object, info)};
    json status = {{"kind", "Status"},
                   {"apiVersion", "v1"},
                   {"metadata", json::object()},
                   {"status", "Success"},
                   {"details", {{"name", name}, {"kind", info.resource}, {"uid", current->uid}}}};
    if (!info.group.empty()) status["details"]["group"] = info.group;
    return Reply{200, status.dump()};
  }
  return ConflictErr(info.group, info.resource, name, kModified);
}

// Like the namespace controller, but synchronous and without waiting for
// finalizers of the contents: a test server has no controllers to remove them.
void ApiServer::Impl::DeleteNamespaceContents(const std::string& ns) {
  for (const auto& [storage_key, key] : store.KeysWithPrefix(ns + "/")) {
    (void)store.Delete(storage_key, key, 0);
  }
}

namespace {
kube::Result<json> DeleteOptionsOf(const Call& c) {
  json options = json::object();
  if (!c.req.body.empty()) {
    options = json::parse(c.req.body, nullptr, false);
    if (options.is_discarded() || !options.is_object()) {
      return BadRequestErr("the body of the request was not a valid DeleteOptions");
    }
  }
  if (c.req.HasQueryParam("gracePeriodSeconds")) {
    auto grace = ParseInt(c.req.QueryParam("gracePeriodSeconds"));
    if (!grace) return BadRequestErr("invalid gracePeriodSeconds");
    options["gracePeriodSeconds"] = *grace;
  }
  if (c.req.HasQueryParam("propagationPolicy")) {
    options["propagationPolicy"] = c.req.QueryParam("propagationPolicy");
  }
  if (options.contains("propagationPolicy")) {
    std::string p = options.value("propagationPolicy", "");
    if (p != "Orphan" && p != "Background" && p != "Foreground") {
      return BadRequestErr(
          "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: "
          "Unsupported value: \"" +
          p + "\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
    }
  }
  return options;
}
}  // namespace

void ApiServer::Impl::Delete(Call& c) {
  if (IsPriorityClasses(*c.info) && IsSystemPriorityClass(c.name)) {
    // Only DELETE of the one object: kube's collection delete bypasses it.
    return RespondError(c.w, AdmissionForbidden(*c.info, c.name,
                                                "this is a system priority class and cannot be "
                                                "deleted"));
  }
  auto options = DeleteOptionsOf(c);
  if (!options.ok()) return RespondError(c.w, options.error());
  bool dry_run = c.DryRun() || (options->contains("dryRun") && !(*options)["dryRun"].empty());
  auto reply = DeleteObject(*c.info, c.ns, c.name, *options, dry_run);
  if (!reply.ok()) return RespondError(c.w, reply.error());
  Respond(c.w, reply->first, reply->second);
}

void ApiServer::Impl::DeleteCollection(Call& c) {
  const ResourceInfo& info = *c.info;
  auto options = DeleteOptionsOf(c);
  if (!options.ok()) return RespondError(c.w, options.error());
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  const Selectors& sel = *selectors;
  ListRequest lr;
  lr.storage_key = info.StorageKey();
  lr.prefix = c.ns.empty() ? "" : c.ns + "/";
  if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };
  auto listed = store.List(lr);
  if (!listed.ok()) return RespondError(c.w, listed.error());
  std::string items;
  for (const auto& obj : listed->items) {
    auto reply = DeleteObject(info, obj->ns, obj->name, *options, c.DryRun());
    if (!reply.ok()) continue;  // gone meanwhile
    if (!items.empty()) items.push_back(',');
    items.append(info.custom ? Render(*obj, info) : obj->json);
  }
  std::string body = "{\"kind\":" + json(info.list_kind).dump() +
                     ",\"apiVersion\":" + json(info.ApiVersion()).dump() +
                     ",\"metadata\":{\"resourceVersion\":\"" +
                     std::to_string(store.current_resource_version()) + "\"},\"items\":[" + items +
                     "]}";
  Respond(c.w, 200, body);
}

}  // namespace gpu_autoscaler::apiserver
