#include "cost/pricing.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace gpu_autoscaler::cost {

namespace internal {
// Generated at build time from src/cost/catalog/pricing.yaml (see CMakeLists.txt).
extern const char kBuiltinPricingYaml[];
}  // namespace internal

std::string_view BuiltinCatalogYaml() {
  return internal::kBuiltinPricingYaml;
}

std::string_view CapacityTierName(CapacityTier tier) {
  switch (tier) {
    case CapacityTier::kOnDemand:
      return "on-demand";
    case CapacityTier::kSpot:
      return "spot";
    case CapacityTier::kReserved:
      return "reserved";
  }
  return "on-demand";
}

Result<CapacityTier> ParseCapacityTier(std::string_view name) {
  if (name == "on-demand" || name == "ondemand" || name == "on_demand") {
    return CapacityTier::kOnDemand;
  }
  if (name == "spot") return CapacityTier::kSpot;
  if (name == "reserved") return CapacityTier::kReserved;
  return InvalidArgumentError("unknown capacity tier \"" + std::string(name) +
                              "\" (want on-demand, spot or reserved)");
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct CatalogPricingSource::Catalog {
  struct GpuModel {
    std::string model{};
    double fallback_hourly = 0;
    std::string source{};
    std::string date{};
  };
  struct Family {
    std::string name{};
    std::string cloud{};
    std::string region{};
    std::string gpu_model{};
    double spot_discount = 0;
    double reserved_discount = 0;
  };
  struct Instance {
    std::string type{};
    std::string family{};
    std::string gpu_model{};
    int gpus = 0;
    double vcpus = 0;
    double memory_gib = 0;
    double hourly = 0;
    std::string source{};
    std::string date{};
  };

  std::string currency{};
  double vcpu_weight = 0;
  double memory_gib_weight = 0;
  double default_spot_discount = 0;
  double default_reserved_discount = 0;
  std::unordered_map<std::string, GpuModel> models;      // lower-case model -> rate
  std::unordered_map<std::string, std::string> aliases;  // lower-case alias -> lower-case model
  std::unordered_map<std::string, Family> families;      // by name
  std::unordered_map<std::string, Instance> instances;   // lower-case type

  const GpuModel* FindModel(std::string_view name) const {
    std::string key = Lower(name);
    if (auto it = models.find(key); it != models.end()) return &it->second;
    if (auto a = aliases.find(key); a != aliases.end()) {
      if (auto it = models.find(a->second); it != models.end()) return &it->second;
    }
    return nullptr;
  }
};

namespace {

using Catalog = CatalogPricingSource::Catalog;

// Reads one YAML document into a Catalog, reporting errors as
// "<file>: <path>.<field>: <problem>". In overlay mode every section is
// optional and entries that exist already inherit their missing fields.
class CatalogParser {
 public:
  CatalogParser(std::string_view file, bool overlay) : file_(file), overlay_(overlay) {}

  Status Parse(const YAML::Node& root, Catalog& cat) {
    if (!root.IsDefined() || root.IsNull()) {
      if (overlay_) return Status::Ok();
      return Error("", "document is empty");
    }
    if (!root.IsMap()) return Error("", "expected a mapping at the top level");
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      static const char* kKnown[] = {"schema_version",
                                     "currency",
                                     "default_spot_discount",
                                     "default_reserved_discount",
                                     "default_discount_source",
                                     "default_discount_date",
                                     "split_weights",
                                     "gpu_models",
                                     "families"};
      if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
        return Error(key, "unknown field");
      }
    }
    if (auto v = root["schema_version"]; v.IsDefined()) {
      GPU_ASSIGN_OR_RETURN(double version, Number(v, "schema_version"));
      if (version != 1) return Error("schema_version", "unsupported version (want 1)");
    }
    GPU_RETURN_IF_ERROR(String(root, "", "currency", !overlay_, cat.currency));
    if (!cat.currency.empty() && cat.currency.size() != 3) {
      return Error("currency", "want an ISO 4217 code such as USD");
    }
    GPU_RETURN_IF_ERROR(
        Fraction(root, "", "default_spot_discount", !overlay_, cat.default_spot_discount));
    GPU_RETURN_IF_ERROR(
        Fraction(root, "", "default_reserved_discount", !overlay_, cat.default_reserved_discount));
    if (auto w = root["split_weights"]; w.IsDefined()) {
      if (!w.IsMap()) return Error("split_weights", "expected a mapping");
      GPU_RETURN_IF_ERROR(
          KnownKeys(w, "split_weights", {"vcpu_hourly", "memory_gib_hourly", "source", "date"}));
      GPU_RETURN_IF_ERROR(Positive(w, "split_weights", "vcpu_hourly", true, cat.vcpu_weight));
      GPU_RETURN_IF_ERROR(
          Positive(w, "split_weights", "memory_gib_hourly", true, cat.memory_gib_weight));
      std::string ignored{};
      GPU_RETURN_IF_ERROR(String(w, "split_weights", "source", true, ignored));
      GPU_RETURN_IF_ERROR(String(w, "split_weights", "date", true, ignored));
    } else if (!overlay_) {
      return Error("split_weights", "missing");
    }
    if (auto models = root["gpu_models"]; models.IsDefined()) {
      GPU_RETURN_IF_ERROR(ParseModels(models, cat));
    } else if (!overlay_) {
      return Error("gpu_models", "missing");
    }
    if (auto families = root["families"]; families.IsDefined()) {
      GPU_RETURN_IF_ERROR(ParseFamilies(families, cat));
    } else if (!overlay_) {
      return Error("families", "missing");
    }
    return Status::Ok();
  }

 private:
  Status Error(std::string_view path, std::string_view problem) const {
    std::string m = file_ + ": ";
    if (!path.empty()) m += std::string(path) + ": ";
    m += problem;
    return InvalidArgumentError(std::move(m));
  }
  static std::string Join(std::string_view path, std::string_view field) {
    return path.empty() ? std::string(field) : std::string(path) + "." + std::string(field);
  }

  Result<double> Number(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) return Error(path, "expected a number");
    const std::string& s = n.Scalar();
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
      return Error(path, "expected a number, got \"" + s + "\"");
    }
    return v;
  }

  // Reads map[field] into `out` when present; a missing required field is an error.
  Status Positive(const YAML::Node& map, std::string_view path, const char* field, bool required,
                  double& out) const {
    auto n = map[field];
    std::string p = Join(path, field);
    if (!n.IsDefined()) return required ? Error(p, "missing") : Status::Ok();
    GPU_ASSIGN_OR_RETURN(double v, Number(n, p));
    if (v <= 0) return Error(p, "must be greater than 0");
    out = v;
    return Status::Ok();
  }
  Status Fraction(const YAML::Node& map, std::string_view path, const char* field, bool required,
                  double& out) const {
    auto n = map[field];
    std::string p = Join(path, field);
    if (!n.IsDefined()) return required ? Error(p, "missing") : Status::Ok();
    GPU_ASSIGN_OR_RETURN(double v, Number(n, p));
    if (v < 0 || v >= 1) return Error(p, "must be a fraction in [0, 1)");
    out = v;
    return Status::Ok();
  }
  Status String(const YAML::Node& map, std::string_view path, const char* field, bool required,
                std::string& out) const {
    auto n = map[field];
    std::string p = Join(path, field);
    if (!n.IsDefined()) return required ? Error(p, "missing") : Status::Ok();
    if (!n.IsScalar() || n.Scalar().empty()) return Error(p, "expected a non-empty string");
    out = n.Scalar();
    return Status::Ok();
  }

  // A misspelled key ("hourlly") is refused with its path, never ignored.
  Status KnownKeys(const YAML::Node& map, const std::string& path,
                   std::initializer_list<std::string_view> known) const {
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return Error(Join(path, key), "unknown field");
      }
    }
    return Status::Ok();
  }

  Status ParseModels(const YAML::Node& list, Catalog& cat) const {
    if (!list.IsSequence()) return Error("gpu_models", "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& m = list[i];
      std::string path = "gpu_models[" + std::to_string(i) + "]";
      if (!m.IsMap()) return Error(path, "expected a mapping");
      GPU_RETURN_IF_ERROR(
          KnownKeys(m, path, {"model", "aliases", "fallback_hourly", "source", "date"}));
      std::string name{};
      GPU_RETURN_IF_ERROR(String(m, path, "model", true, name));
      std::string key = Lower(name);
      auto existing = cat.models.find(key);
      Catalog::GpuModel model =
          existing != cat.models.end() ? existing->second : Catalog::GpuModel{.model = name};
      bool fresh = existing == cat.models.end();
      GPU_RETURN_IF_ERROR(Positive(m, path, "fallback_hourly", fresh, model.fallback_hourly));
      // A changed price must say where it came from.
      bool price_given = m["fallback_hourly"].IsDefined();
      GPU_RETURN_IF_ERROR(String(m, path, "source", fresh || price_given, model.source));
      GPU_RETURN_IF_ERROR(String(m, path, "date", fresh || price_given, model.date));
      if (auto aliases = m["aliases"]; aliases.IsDefined()) {
        if (!aliases.IsSequence()) return Error(Join(path, "aliases"), "expected a list");
        for (size_t j = 0; j < aliases.size(); ++j) {
          if (!aliases[j].IsScalar() || aliases[j].Scalar().empty()) {
            return Error(Join(path, "aliases[" + std::to_string(j) + "]"),
                         "expected a non-empty string");
          }
          cat.aliases[Lower(aliases[j].Scalar())] = key;
        }
      }
      cat.models[key] = std::move(model);
    }
    return Status::Ok();
  }

  Status ParseFamilies(const YAML::Node& list, Catalog& cat) const {
    if (!list.IsSequence()) return Error("families", "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& f = list[i];
      std::string path = "families[" + std::to_string(i) + "]";
      if (!f.IsMap()) return Error(path, "expected a mapping");
      GPU_RETURN_IF_ERROR(
          KnownKeys(f, path,
                    {"family", "cloud", "region", "gpu_model", "spot_discount", "reserved_discount",
                     "discount_source", "discount_date", "instances"}));
      std::string name{};
      GPU_RETURN_IF_ERROR(String(f, path, "family", true, name));
      auto existing = cat.families.find(name);
      bool fresh = existing == cat.families.end();
      Catalog::Family fam = fresh ? Catalog::Family{.name = name} : existing->second;
      GPU_RETURN_IF_ERROR(String(f, path, "cloud", fresh, fam.cloud));
      GPU_RETURN_IF_ERROR(String(f, path, "region", fresh, fam.region));
      GPU_RETURN_IF_ERROR(String(f, path, "gpu_model", fresh, fam.gpu_model));
      if (!cat.FindModel(fam.gpu_model)) {
        return Error(Join(path, "gpu_model"),
                     "\"" + fam.gpu_model + "\" is not listed under gpu_models");
      }
      GPU_RETURN_IF_ERROR(Fraction(f, path, "spot_discount", fresh, fam.spot_discount));
      GPU_RETURN_IF_ERROR(Fraction(f, path, "reserved_discount", fresh, fam.reserved_discount));
      bool discount_given = f["spot_discount"].IsDefined() || f["reserved_discount"].IsDefined();
      std::string ignored{};
      GPU_RETURN_IF_ERROR(String(f, path, "discount_source", discount_given, ignored));
      GPU_RETURN_IF_ERROR(String(f, path, "discount_date", discount_given, ignored));
      if (auto instances = f["instances"]; instances.IsDefined()) {
        GPU_RETURN_IF_ERROR(ParseInstances(instances, path, fam, cat));
      } else if (fresh) {
        return Error(Join(path, "instances"), "missing");
      }
      cat.families[name] = std::move(fam);
    }
    return Status::Ok();
  }

  Status ParseInstances(const YAML::Node& list, const std::string& family_path,
                        const Catalog::Family& fam, Catalog& cat) const {
    std::string list_path = Join(family_path, "instances");
    if (!list.IsSequence()) return Error(list_path, "expected a list");
    for (size_t j = 0; j < list.size(); ++j) {
      const YAML::Node& n = list[j];
      std::string path = list_path + "[" + std::to_string(j) + "]";
      if (!n.IsMap()) return Error(path, "expected a mapping");
      GPU_RETURN_IF_ERROR(KnownKeys(
          n, path,
          {"type", "gpus", "vcpus", "memory_gib", "hourly", "source", "date", "gpu_model"}));
      std::string type{};
      GPU_RETURN_IF_ERROR(String(n, path, "type", true, type));
      std::string key = Lower(type);
      auto existing = cat.instances.find(key);
      bool fresh = existing == cat.instances.end();
      Catalog::Instance inst =
          fresh ? Catalog::Instance{.type = type, .gpu_model = fam.gpu_model} : existing->second;
      inst.family = fam.name;
      double gpus = inst.gpus;
      GPU_RETURN_IF_ERROR(Positive(n, path, "gpus", fresh, gpus));
      if (gpus != std::floor(gpus) || gpus > 1024) {
        return Error(Join(path, "gpus"), "must be a whole number of GPUs");
      }
      inst.gpus = static_cast<int>(gpus);
      GPU_RETURN_IF_ERROR(Positive(n, path, "vcpus", fresh, inst.vcpus));
      GPU_RETURN_IF_ERROR(Positive(n, path, "memory_gib", fresh, inst.memory_gib));
      GPU_RETURN_IF_ERROR(Positive(n, path, "hourly", fresh, inst.hourly));
      bool price_given = n["hourly"].IsDefined();
      GPU_RETURN_IF_ERROR(String(n, path, "source", fresh || price_given, inst.source));
      GPU_RETURN_IF_ERROR(String(n, path, "date", fresh || price_given, inst.date));
      GPU_RETURN_IF_ERROR(String(n, path, "gpu_model", false, inst.gpu_model));
      if (!cat.FindModel(inst.gpu_model)) {
        return Error(Join(path, "gpu_model"),
                     "\"" + inst.gpu_model + "\" is not listed under gpu_models");
      }
      cat.instances[key] = std::move(inst);
    }
    return Status::Ok();
  }

  std::string file_{};
  bool overlay_;
};

Status ParseYamlInto(std::string_view yaml, std::string_view file_name, bool overlay,
                     Catalog& cat) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    return CatalogParser(file_name, overlay).Parse(root, cat);
  } catch (const YAML::Exception& e) {
    // Marks are 0-based.
    std::string where = std::string(file_name);
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    return InvalidArgumentError(where + ": " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string(file_name) + ": " + e.what());
  }
}

double Discount(CapacityTier tier, double spot, double reserved) {
  switch (tier) {
    case CapacityTier::kSpot:
      return spot;
    case CapacityTier::kReserved:
      return reserved;
    case CapacityTier::kOnDemand:
      break;
  }
  return 0;
}

}  // namespace

CatalogPricingSource::CatalogPricingSource(std::unique_ptr<Catalog> catalog)
    : catalog_(std::move(catalog)) {}
CatalogPricingSource::~CatalogPricingSource() = default;

Result<std::unique_ptr<CatalogPricingSource>> CatalogPricingSource::FromYaml(
    std::string_view yaml, std::string_view file_name) {
  auto cat = std::make_unique<Catalog>();
  GPU_RETURN_IF_ERROR(ParseYamlInto(yaml, file_name, /*overlay=*/false, *cat));
  return std::unique_ptr<CatalogPricingSource>(new CatalogPricingSource(std::move(cat)));
}

Result<std::unique_ptr<CatalogPricingSource>> CatalogPricingSource::Builtin() {
  // Parsed once (yaml-cpp takes ~10 ms for it) and copied per caller, since
  // overrides change the copy they are applied to.
  static const Result<std::unique_ptr<CatalogPricingSource>> parsed =
      FromYaml(BuiltinCatalogYaml(), "pricing.yaml (built in)");
  if (!parsed.ok()) return parsed.error();
  return (*parsed)->Clone();
}

std::unique_ptr<CatalogPricingSource> CatalogPricingSource::Clone() const {
  return std::unique_ptr<CatalogPricingSource>(
      new CatalogPricingSource(std::make_unique<Catalog>(*catalog_)));
}

Status CatalogPricingSource::ApplyOverride(std::string_view yaml, std::string_view file_name) {
  Catalog merged = *catalog_;  // all or nothing
  GPU_RETURN_IF_ERROR(ParseYamlInto(yaml, file_name, /*overlay=*/true, merged));
  *catalog_ = std::move(merged);
  return Status::Ok();
}

Status CatalogPricingSource::ApplyOverrideFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot read pricing override file");
  std::ostringstream text;
  text << in.rdbuf();
  return ApplyOverride(text.str(), path);
}

std::string_view CatalogPricingSource::currency() const {
  return catalog_->currency;
}
size_t CatalogPricingSource::instance_count() const {
  return catalog_->instances.size();
}

double CatalogPricingSource::GpuModelRate(std::string_view gpu_model) const {
  const Catalog::GpuModel* m = catalog_->FindModel(gpu_model);
  return m ? m->fallback_hourly : 0;
}

PriceResult CatalogPricingSource::Price(const PriceQuery& q) const {
  const Catalog& cat = *catalog_;
  NodePrice p;
  p.instance_type = q.instance_type;
  p.tier = q.tier;
  p.currency = cat.currency;
  double discount = 0;
  auto it = cat.instances.find(Lower(q.instance_type));
  if (it != cat.instances.end()) {
    const Catalog::Instance& inst = it->second;
    const Catalog::Family& fam = cat.families.at(inst.family);
    const Catalog::GpuModel* model = cat.FindModel(inst.gpu_model);
    p.family = fam.name;
    p.gpu_model = model->model;
    p.gpu_count = inst.gpus;
    p.vcpus = inst.vcpus;
    p.memory_gib = inst.memory_gib;
    p.on_demand_hourly = inst.hourly;
    p.source = inst.source;
    p.date = inst.date;
    // Split the list price by relative weights (OpenCost-style): GPUs at the
    // model's reference rate, vCPUs and GiB at the split weights.
    double w_gpu = inst.gpus * model->fallback_hourly;
    double w_cpu = inst.vcpus * cat.vcpu_weight;
    double w_mem = inst.memory_gib * cat.memory_gib_weight;
    double w_sum = w_gpu + w_cpu + w_mem;
    p.gpu_hourly = inst.hourly * w_gpu / w_sum;
    p.cpu_hourly = inst.hourly * w_cpu / w_sum;
    p.memory_hourly = inst.hourly - p.gpu_hourly - p.cpu_hourly;
    discount = Discount(q.tier, fam.spot_discount, fam.reserved_discount);
  } else {
    if (q.gpu_count > 0) {
      const Catalog::GpuModel* model = q.gpu_model.empty() ? nullptr : cat.FindModel(q.gpu_model);
      if (!model) {
        return Unpriced{q.instance_type,
                        q.gpu_model.empty()
                            ? "instance type not in the catalogue and the node's GPU model is "
                              "unknown"
                            : "instance type not in the catalogue and no fallback rate for GPU "
                              "model \"" +
                                  q.gpu_model + "\""};
      }
      p.gpu_model = model->model;
      p.gpu_hourly = q.gpu_count * model->fallback_hourly;
      p.source = model->source;
      p.date = model->date;
    } else if (q.vcpus <= 0 && q.memory_gib <= 0) {
      return Unpriced{q.instance_type,
                      "instance type not in the catalogue and the node reports no resources"};
    } else {
      p.source = "split_weights";
    }
    if (q.vcpus < 0 || q.memory_gib < 0) {
      return Unpriced{q.instance_type, "negative node resources"};
    }
    p.from_fallback = true;
    p.gpu_count = q.gpu_count;
    p.vcpus = q.vcpus;
    p.memory_gib = q.memory_gib;
    p.cpu_hourly = q.vcpus * cat.vcpu_weight;
    p.memory_hourly = q.memory_gib * cat.memory_gib_weight;
    p.on_demand_hourly = p.gpu_hourly + p.cpu_hourly + p.memory_hourly;
    discount = Discount(q.tier, cat.default_spot_discount, cat.default_reserved_discount);
  }
  double keep = 1.0 - discount;
  p.gpu_hourly *= keep;
  p.cpu_hourly *= keep;
  p.memory_hourly *= keep;
  p.hourly = p.on_demand_hourly * keep;
  return p;
}

}  // namespace gpu_autoscaler::cost
