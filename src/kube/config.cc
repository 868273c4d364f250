#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include "common/base64.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

namespace gpu_autoscaler::kube {
namespace {

namespace fs = std::filesystem;

// GPU_RETURN_IF_ERROR for Result<std::monostate, Error>.
#define CONFIG_RETURN_IF_ERROR(expr)                                            \
  do {                                                                          \
    auto config_result_tmp_ = (expr);                                           \
    if (!config_result_tmp_.ok()) return std::move(config_result_tmp_).error(); \
  } while (false)

constexpr std::string_view kDefaultServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Reads a whole file; the error names the file and errno's text. Bounded, so
// a path like /dev/zero cannot exhaust memory.
Result<std::string> ReadFile(const std::string& path) {
  constexpr size_t kMaxFileBytes = 16 << 20;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::Config(path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[64 * 1024];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxFileBytes) return Error::Config(path + ": larger than 16 MiB");
  }
  if (in.bad()) return Error::Config(path + ": read failed");
  return out;
}

// One named entry (cluster, user or context) with where it came from, so
// errors can name the file and field and relative paths resolve against the
// file's directory.
struct Entry {
  YAML::Node body;       // the "cluster" / "user" / "context" map
  std::string field;     // "users[0].user"
  std::string source;    // file name for messages
  std::string base_dir;  // for relative paths
};

struct Kubeconfig {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
  std::string current_context_source;
};

Error FieldError(const std::string& source, const std::string& field, const std::string& what) {
  return Error::Config(source + ": " + field + ": " + what);
}

// Reads an optional scalar string field.
Result<std::string> GetString(const Entry& e, const char* key) {
  YAML::Node n = e.body[key];
  if (!n || n.IsNull()) return std::string();
  if (!n.IsScalar()) return FieldError(e.source, e.field + "." + key, "expected a string");
  return n.Scalar();
}

Result<bool> GetBool(const Entry& e, const char* key) {
  YAML::Node n = e.body[key];
  if (!n || n.IsNull()) return false;
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    return FieldError(e.source, e.field + "." + key, "expected true or false");
  }
  return value;
}

std::string ResolvePath(const Entry& e, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || e.base_dir.empty()) return path;
  return (fs::path(e.base_dir) / path).string();
}

// PEM material from "<key>-data" (base64) or "<key>" (a file path).
Result<std::string> GetPem(const Entry& e, const std::string& key) {
  std::string data_key = key + "-data";
  GPU_ASSIGN_OR_RETURN(std::string data, GetString(e, data_key.c_str()));
  if (!data.empty()) {
    auto decoded = Base64Decode(Trim(data));
    if (!decoded) return FieldError(e.source, e.field + "." + data_key, "invalid base64");
    if (decoded->empty()) return FieldError(e.source, e.field + "." + data_key, "empty");
    return *decoded;
  }
  GPU_ASSIGN_OR_RETURN(std::string path, GetString(e, key.c_str()));
  if (path.empty()) return std::string();
  auto contents = ReadFile(ResolvePath(e, path));
  if (!contents.ok()) {
    return FieldError(e.source, e.field + "." + key, contents.error().message());
  }
  return std::move(contents).value();
}

// Parses the named list ("clusters") of one document into `out`; earlier
// entries win, as in kubectl's merge.
Result<std::monostate> ParseNamedList(const YAML::Node& doc, const char* list, const char* item,
                                      std::string_view source, std::string_view base_dir,
                                      std::map<std::string, Entry>* out) {
  YAML::Node n = doc[list];
  if (!n || n.IsNull()) return std::monostate{};
  if (!n.IsSequence()) return FieldError(std::string(source), list, "expected a list");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string field = std::string(list) + "[" + std::to_string(i) + "]";
    YAML::Node element = n[i];
    if (!element.IsMap()) return FieldError(std::string(source), field, "expected a map");
    YAML::Node name = element["name"];
    if (!name || !name.IsScalar() || name.Scalar().empty()) {
      return FieldError(std::string(source), field + ".name", "required");
    }
    YAML::Node body = element[item];
    if (body && !body.IsNull() && !body.IsMap()) {
      return FieldError(std::string(source), field + "." + item, "expected a map");
    }
    out->try_emplace(name.Scalar(),
                     Entry{body ? body : YAML::Node(YAML::NodeType::Map), field + "." + item,
                           std::string(source), std::string(base_dir)});
  }
  return std::monostate{};
}

Result<std::monostate> MergeDocument(std::string_view yaml, std::string_view source,
                                     std::string_view base_dir, Kubeconfig* cfg) {
  try {
    YAML::Node doc = YAML::Load(std::string(yaml));
    if (!doc || doc.IsNull()) return std::monostate{};  // an empty file is an empty config
    if (!doc.IsMap()) return Error::Config(std::string(source) + ": expected a kubeconfig map");
    CONFIG_RETURN_IF_ERROR(
        ParseNamedList(doc, "clusters", "cluster", source, base_dir, &cfg->clusters));
    CONFIG_RETURN_IF_ERROR(ParseNamedList(doc, "users", "user", source, base_dir, &cfg->users));
    CONFIG_RETURN_IF_ERROR(
        ParseNamedList(doc, "contexts", "context", source, base_dir, &cfg->contexts));
    YAML::Node current = doc["current-context"];
    if (current && !current.IsNull()) {
      if (!current.IsScalar()) {
        return FieldError(std::string(source), "current-context", "expected a string");
      }
      if (cfg->current_context.empty() && !current.Scalar().empty()) {
        cfg->current_context = current.Scalar();
        cfg->current_context_source = std::string(source);
      }
    }
    return std::monostate{};
  } catch (const YAML::Exception& e) {
    return Error::Config(std::string(source) + ": invalid YAML: " + e.what());
  } catch (const std::exception& e) {
    return Error::Config(std::string(source) + ": " + e.what());
  }
}

Result<std::monostate> ApplyCluster(const Entry& e, ClientConfig* cfg) {
  GPU_ASSIGN_OR_RETURN(cfg->server, GetString(e, "server"));
  if (cfg->server.empty()) return FieldError(e.source, e.field + ".server", "required");
  if (cfg->server.rfind("https://", 0) != 0 && cfg->server.rfind("http://", 0) != 0) {
    return FieldError(e.source, e.field + ".server",
                      "\"" + cfg->server + "\" is not an http:// or https:// URL");
  }
  while (cfg->server.size() > 1 && cfg->server.back() == '/')
    cfg->server.pop_back();
  GPU_ASSIGN_OR_RETURN(cfg->ca_pem, GetPem(e, "certificate-authority"));
  GPU_ASSIGN_OR_RETURN(cfg->insecure_skip_tls_verify, GetBool(e, "insecure-skip-tls-verify"));
  GPU_ASSIGN_OR_RETURN(cfg->tls_server_name, GetString(e, "tls-server-name"));
  return std::monostate{};
}

Result<std::monostate> ApplyUser(const Entry& e, ClientConfig* cfg) {
  for (const char* unsupported : {"exec", "auth-provider"}) {
    if (e.body[unsupported]) {
      return FieldError(e.source, e.field + "." + unsupported,
                        "credential plugins are not supported; use a token or client certificate");
    }
  }
  GPU_ASSIGN_OR_RETURN(cfg->client_cert_pem, GetPem(e, "client-certificate"));
  GPU_ASSIGN_OR_RETURN(cfg->client_key_pem, GetPem(e, "client-key"));
  if (cfg->client_cert_pem.empty() != cfg->client_key_pem.empty()) {
    return FieldError(e.source, e.field,
                      "client-certificate and client-key must be given together");
  }
  GPU_ASSIGN_OR_RETURN(cfg->bearer_token, GetString(e, "token"));
  GPU_ASSIGN_OR_RETURN(std::string token_file, GetString(e, "tokenFile"));
  if (!token_file.empty() && cfg->bearer_token.empty()) {
    std::string path = ResolvePath(e, token_file);
    auto first = ReadFile(path);  // read now so a missing file is reported here
    if (!first.ok()) return FieldError(e.source, e.field + ".tokenFile", first.error().message());
    cfg->token_source = FileTokenSource(path, RealClock::Instance());
  }
  GPU_ASSIGN_OR_RETURN(cfg->username, GetString(e, "username"));
  GPU_ASSIGN_OR_RETURN(cfg->password, GetString(e, "password"));
  return std::monostate{};
}

Result<ClientConfig> ResolveUnguarded(const Kubeconfig& kc, std::string_view context,
                                      std::string_view sources) {
  std::string name(context);
  if (name.empty()) name = kc.current_context;
  if (name.empty()) {
    return Error::Config(std::string(sources) + ": no current-context is set and none was given");
  }
  auto ctx = kc.contexts.find(name);
  if (ctx == kc.contexts.end()) {
    return Error::Config(std::string(sources) + ": context \"" + name + "\" not found");
  }
  const Entry& c = ctx->second;
  GPU_ASSIGN_OR_RETURN(std::string cluster_name, GetString(c, "cluster"));
  GPU_ASSIGN_OR_RETURN(std::string user_name, GetString(c, "user"));
  GPU_ASSIGN_OR_RETURN(std::string ns, GetString(c, "namespace"));
  if (cluster_name.empty()) return FieldError(c.source, c.field + ".cluster", "required");
  auto cluster = kc.clusters.find(cluster_name);
  if (cluster == kc.clusters.end()) {
    return FieldError(c.source, c.field + ".cluster", "cluster \"" + cluster_name + "\" not found");
  }
  ClientConfig cfg;
  cfg.context_name = name;
  if (!ns.empty()) cfg.default_namespace = ns;
  CONFIG_RETURN_IF_ERROR(ApplyCluster(cluster->second, &cfg));
  if (!user_name.empty()) {
    auto user = kc.users.find(user_name);
    if (user == kc.users.end()) {
      return FieldError(c.source, c.field + ".user", "user \"" + user_name + "\" not found");
    }
    CONFIG_RETURN_IF_ERROR(ApplyUser(user->second, &cfg));
  }
  return cfg;
}

// yaml-cpp may throw on access as well as on load.
Result<ClientConfig> Resolve(const Kubeconfig& kc, std::string_view context,
                             std::string_view sources) {
  try {
    return ResolveUnguarded(kc, context, sources);
  } catch (const std::exception& e) {
    return Error::Config(std::string(sources) + ": " + e.what());
  }
}

class FileTokenSourceImpl final : public TokenSource {
 public:
  FileTokenSourceImpl(std::string path, Clock& clock, std::chrono::seconds refresh)
      : path_(std::move(path)), clock_(clock), refresh_(refresh) {}

  Result<std::string> Token() override {
    std::lock_guard<std::mutex> lock(mu_);
    Clock::TimePoint now = clock_.Now();
    if (!token_.empty() && now - read_at_ < refresh_) return token_;
    auto contents = ReadFile(path_);
    std::string token = contents.ok() ? Trim(*contents) : "";
    if (token.empty()) {
      // Keep serving the last good token while a rotation is in flight.
      if (!token_.empty()) return token_;
      if (!contents.ok()) return Error::Config("token file " + contents.error().message());
      return Error::Config("token file " + path_ + ": empty");
    }
    token_ = std::move(token);
    read_at_ = now;
    return token_;
  }

 private:
  const std::string path_;
  Clock& clock_;
  const std::chrono::seconds refresh_;
  std::mutex mu_;
  std::string token_;
  Clock::TimePoint read_at_{};
};

class StaticTokenSourceImpl final : public TokenSource {
 public:
  explicit StaticTokenSourceImpl(std::string token) : token_(std::move(token)) {}
  Result<std::string> Token() override { return token_; }

 private:
  const std::string token_;
};

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::shared_ptr<TokenSource> FileTokenSource(std::string path, Clock& clock,
                                             std::chrono::seconds refresh) {
  return std::make_shared<FileTokenSourceImpl>(std::move(path), clock, refresh);
}

std::shared_ptr<TokenSource> StaticTokenSource(std::string token) {
  return std::make_shared<StaticTokenSourceImpl>(std::move(token));
}

Result<ClientConfig> ParseKubeconfig(std::string_view yaml, std::string_view source_name,
                                     std::string_view context, std::string_view base_dir) {
  Kubeconfig kc;
  CONFIG_RETURN_IF_ERROR(MergeDocument(yaml, source_name, base_dir, &kc));
  return Resolve(kc, context, source_name);
}

Result<ClientConfig> LoadKubeconfigFiles(const std::vector<std::string>& paths,
                                         std::string_view context) {
  Kubeconfig kc;
  std::string names;
  int loaded = 0;
  for (const std::string& path : paths) {
    if (path.empty()) continue;
    if (!names.empty()) names += ":";
    names += path;
    std::error_code ec;
    // kubectl skips files of a KUBECONFIG list that do not exist.
    if (!fs::exists(path, ec)) continue;
    GPU_ASSIGN_OR_RETURN(std::string yaml, ReadFile(path));
    std::string base_dir = fs::absolute(fs::path(path), ec).parent_path().string();
    CONFIG_RETURN_IF_ERROR(MergeDocument(yaml, path, base_dir, &kc));
    ++loaded;
  }
  if (loaded == 0) {
    return Error::Config((names.empty() ? std::string("kubeconfig") : names) +
                         ": no kubeconfig file found");
  }
  return Resolve(kc, context, names);
}

Result<ClientConfig> LoadInClusterConfig(Clock& clock, std::string_view sa_dir) {
  std::string host = Getenv("KUBERNETES_SERVICE_HOST");
  std::string port = Getenv("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return Error::Config(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  std::string dir = sa_dir.empty() ? std::string(kDefaultServiceAccountDir) : std::string(sa_dir);
  ClientConfig cfg;
  cfg.context_name = "in-cluster";
  bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  cfg.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
  std::string token_path = dir + "/token";
  auto token = ReadFile(token_path);
  if (!token.ok()) return Error::Config("in-cluster config: " + token.error().message());
  cfg.token_source = FileTokenSource(token_path, clock);
  auto ca = ReadFile(dir + "/ca.crt");
  if (!ca.ok()) return Error::Config("in-cluster config: " + ca.error().message());
  cfg.ca_pem = std::move(ca).value();
  if (auto ns = ReadFile(dir + "/namespace"); ns.ok() && !Trim(*ns).empty()) {
    cfg.default_namespace = Trim(*ns);
  }
  return cfg;
}

Result<ClientConfig> LoadDefaultConfig(std::string_view context) {
  if (!Getenv("KUBERNETES_SERVICE_HOST").empty()) return LoadInClusterConfig();
  std::vector<std::string> paths;
  std::string list = Getenv("KUBECONFIG");
  if (!list.empty()) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t colon = list.find(':', start);
      if (colon == std::string::npos) colon = list.size();
      paths.push_back(list.substr(start, colon - start));
      start = colon + 1;
    }
  } else {
    std::string home = Getenv("HOME");
    if (home.empty()) return Error::Config("kubeconfig: neither KUBECONFIG nor HOME is set");
    paths.push_back(home + "/.kube/config");
  }
  return LoadKubeconfigFiles(paths, context);
}

}  // namespace gpu_autoscaler::kube
