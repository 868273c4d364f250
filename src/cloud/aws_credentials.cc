#include "cloud/aws_credentials.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cloud/aws_query.h"
#include "kube/meta_time.h"

namespace gpu_autoscaler::cloud {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back()))
    s.remove_suffix(1);
  return std::string(s);
}

class StaticProvider final : public AwsCredentialsProvider {
 public:
  explicit StaticProvider(AwsCredentials c) : creds_(std::move(c)) {}
  Result<AwsCredentials> Get() override { return creds_; }

 private:
  AwsCredentials creds_;
};

// One link of the chain. Fetch returns nullopt when the source is not
// configured, with `why_not` saying so for the final error message.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<std::optional<AwsCredentials>> Fetch(std::string* why_not) = 0;
};

std::optional<std::string> Env(const AwsEnvironment& env, const std::string& name) {
  auto v = env.get_env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

class EnvironmentSource final : public Source {
 public:
  explicit EnvironmentSource(const AwsEnvironment& env) : env_(env) {}
  Result<std::optional<AwsCredentials>> Fetch(std::string* why_not) override {
    auto id = Env(env_, "AWS_ACCESS_KEY_ID");
    auto secret = Env(env_, "AWS_SECRET_ACCESS_KEY");
    if (!id && !secret) {
      *why_not = "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY unset";
      return std::optional<AwsCredentials>();
    }
    if (!id || !secret) {
      return ProviderError(ProviderErrorKind::kAuth,
                           std::string("environment: ") +
                               (id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                               " unset while the other is set");
    }
    AwsCredentials c{*id, *secret, Env(env_, "AWS_SESSION_TOKEN").value_or(""), std::nullopt,
                     "environment"};
    return std::optional<AwsCredentials>(std::move(c));
  }

 private:
  const AwsEnvironment& env_;
};

class SharedFileSource final : public Source {
 public:
  explicit SharedFileSource(const AwsEnvironment& env) : env_(env) {}
  Result<std::optional<AwsCredentials>> Fetch(std::string* why_not) override {
    std::string path;
    if (auto p = Env(env_, "AWS_SHARED_CREDENTIALS_FILE")) {
      path = *p;
    } else if (auto home = Env(env_, "HOME")) {
      path = *home + "/.aws/credentials";
    } else {
      *why_not = "shared credentials file: neither AWS_SHARED_CREDENTIALS_FILE nor HOME set";
      return std::optional<AwsCredentials>();
    }
    if (path.starts_with("~/")) path = Env(env_, "HOME").value_or("") + path.substr(1);
    std::string profile = Env(env_, "AWS_PROFILE").value_or("default");
    auto text = env_.read_file(path);
    if (!text.ok()) {
      if (text.error().code() == StatusCode::kNotFound) {
        *why_not = "shared credentials file: " + path + " not found";
        return std::optional<AwsCredentials>();
      }
      return ProviderError(ProviderErrorKind::kAuth,
                           "shared credentials file " + path + ": " + text.error().message());
    }
    auto creds = ParseSharedCredentialsFile(*text, profile);
    if (!creds.ok()) return creds.error().WithContext(path);
    if (!creds->has_value()) {
      *why_not = "shared credentials file: " + path + " has no profile [" + profile + "]";
      return std::optional<AwsCredentials>();
    }
    (*creds)->source = "shared credentials file " + path + " [" + profile + "]";
    return creds;
  }

 private:
  const AwsEnvironment& env_;
};

class WebIdentitySource final : public Source {
 public:
  WebIdentitySource(const AwsCredentialChainOptions& o) : o_(o) {
    std::string endpoint = o.sts_endpoint;
    if (endpoint.empty()) {
      endpoint = o.region.empty() ? "https://sts.amazonaws.com"
                                  : "https://sts." + o.region + ".amazonaws.com";
      if (o.region.starts_with("cn-")) endpoint += ".cn";
    }
    if (o.sts_transport) {
      AwsQueryOptions q{.endpoint = endpoint,
                        .scope = {o.region.empty() ? "us-east-1" : o.region, "sts"},
                        .version = "2011-06-15",
                        .timeout = o.sts_timeout,
                        .clock = o.clock,
                        .log_name = "aws-sts"};
      q.retry.max_attempts = 3;
      sts_ = std::make_unique<AwsQueryClient>(o.sts_transport, q, nullptr);
    }
  }

  Result<std::optional<AwsCredentials>> Fetch(std::string* why_not) override {
    auto token_file = Env(o_.env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    auto role = Env(o_.env, "AWS_ROLE_ARN");
    if (!token_file || !role) {
      *why_not = "web identity: AWS_WEB_IDENTITY_TOKEN_FILE or AWS_ROLE_ARN unset";
      return std::optional<AwsCredentials>();
    }
    if (!sts_) {
      *why_not = "web identity: no STS transport configured";
      return std::optional<AwsCredentials>();
    }
    // Re-read every time: the kubelet rotates the projected token.
    auto token = o_.env.read_file(*token_file);
    if (!token.ok()) {
      return ProviderError(ProviderErrorKind::kAuth, "web identity token file " + *token_file +
                                                         ": " + token.error().message());
    }
    std::string session =
        Env(o_.env, "AWS_ROLE_SESSION_NAME")
            .value_or("gpu-autoscaler-" +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                         o_.clock->WallNow().time_since_epoch())
                                         .count()));
    auto doc = sts_->Call(
        "AssumeRoleWithWebIdentity",
        {{"RoleArn", *role}, {"RoleSessionName", session}, {"WebIdentityToken", Trim(*token)}});
    if (!doc.ok()) return doc.error().WithContext("web identity (role " + *role + ")");
    const XmlElement* c = doc->Find("AssumeRoleWithWebIdentityResult/Credentials");
    if (c == nullptr) {
      return ProviderError(ProviderErrorKind::kUnavailable,
                           "web identity: STS answer without Credentials");
    }
    auto creds = CredentialsFromXml(*c);
    if (!creds.ok()) return creds.error();
    creds->source = "web identity (" + *role + ")";
    return std::optional<AwsCredentials>(std::move(creds).value());
  }

  static Result<AwsCredentials> CredentialsFromXml(const XmlElement& c) {
    AwsCredentials out{c.ChildText("AccessKeyId"), c.ChildText("SecretAccessKey"),
                       c.ChildText("SessionToken"), std::nullopt, ""};
    if (out.access_key_id.empty() || out.secret_access_key.empty()) {
      return ProviderError(ProviderErrorKind::kUnavailable,
                           "STS credentials without AccessKeyId or SecretAccessKey");
    }
    if (std::string exp = c.ChildText("Expiration"); !exp.empty()) {
      auto t = kube::ParseRfc3339(exp);
      if (!t.ok()) {
        return ProviderError(ProviderErrorKind::kUnavailable,
                             "STS credentials: bad Expiration \"" + exp + "\"");
      }
      out.expiration = *t;
    }
    return out;
  }

 private:
  const AwsCredentialChainOptions& o_;
  std::unique_ptr<AwsQueryClient> sts_;
};

class ImdsSource final : public Source {
 public:
  explicit ImdsSource(const AwsCredentialChainOptions& o) : o_(o) {
    if (o.imds_transport) {
      ImdsOptions io = o.imds;
      io.clock = o.clock;
      imds_ = std::make_unique<ImdsClient>(o.imds_transport, io);
    }
  }

  Result<std::optional<AwsCredentials>> Fetch(std::string* why_not) override {
    if (!imds_) {
      *why_not = "instance metadata: not configured";
      return std::optional<AwsCredentials>();
    }
    if (Env(o_.env, "AWS_EC2_METADATA_DISABLED").value_or("") == "true") {
      *why_not = "instance metadata: AWS_EC2_METADATA_DISABLED=true";
      return std::optional<AwsCredentials>();
    }
    const std::string base = "/latest/meta-data/iam/security-credentials/";
    auto roles = imds_->Get(base);
    if (!roles.ok()) {
      // Off EC2 there is no metadata service: not configured, not an error.
      *why_not = "instance metadata: " + roles.error().message();
      return std::optional<AwsCredentials>();
    }
    if (!roles->has_value() || Trim(**roles).empty()) {
      *why_not = "instance metadata: no instance profile role";
      return std::optional<AwsCredentials>();
    }
    std::string role = Trim((**roles).substr(0, (**roles).find('\n')));
    auto doc = imds_->Get(base + role);
    if (!doc.ok()) return doc.error().WithContext("instance metadata role " + role);
    if (!doc->has_value()) {
      return ProviderError(ProviderErrorKind::kAuth,
                           "instance metadata: role " + role + " has no credentials");
    }
    auto creds = ParseImdsCredentials(**doc);
    if (!creds.ok()) return creds.error();
    creds->source = "instance metadata (role " + role + ")";
    return std::optional<AwsCredentials>(std::move(creds).value());
  }

 private:
  const AwsCredentialChainOptions& o_;
  std::unique_ptr<ImdsClient> imds_;
};

class ChainProvider final : public AwsCredentialsProvider {
 public:
  explicit ChainProvider(AwsCredentialChainOptions o) : o_(std::move(o)) {
    sources_.push_back(std::make_unique<EnvironmentSource>(o_.env));
    sources_.push_back(std::make_unique<SharedFileSource>(o_.env));
    sources_.push_back(std::make_unique<WebIdentitySource>(o_));
    sources_.push_back(std::make_unique<ImdsSource>(o_));
  }

  Result<AwsCredentials> Get() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && Fresh(*cached_, o_.refresh_before)) return *cached_;
    auto fetched = FetchLocked();
    if (fetched.ok()) {
      cached_ = *fetched;
      return std::move(fetched).value();
    }
    if (cached_ && Fresh(*cached_, std::chrono::seconds(0))) {
      spdlog::warn(
          "aws credentials: refreshing {} failed, using the cached ones until they "
          "expire: {}",
          cached_->source, fetched.error().message());
      return *cached_;
    }
    return fetched;
  }

  void Invalidate() override {
    std::lock_guard<std::mutex> lock(mu_);
    cached_.reset();
  }

 private:
  bool Fresh(const AwsCredentials& c, std::chrono::seconds margin) const {
    return !c.expiration || o_.clock->WallNow() + margin < *c.expiration;
  }

  Result<AwsCredentials> FetchLocked() {
    std::string tried;
    for (auto& source : sources_) {
      std::string why_not;
      GPU_ASSIGN_OR_RETURN(std::optional<AwsCredentials> creds, source->Fetch(&why_not));
      if (creds) {
        spdlog::info("aws credentials: using {}", creds->source);
        return std::move(*creds);
      }
      tried += (tried.empty() ? "" : "; ") + why_not;
    }
    return ProviderError(ProviderErrorKind::kAuth,
                         "no AWS credentials found (tried " + tried + ")");
  }

  AwsCredentialChainOptions o_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::mutex mu_;
  std::optional<AwsCredentials> cached_;
};

}  // namespace

std::shared_ptr<AwsCredentialsProvider> StaticAwsCredentials(AwsCredentials creds) {
  return std::make_shared<StaticProvider>(std::move(creds));
}

AwsEnvironment AwsEnvironment::Process() {
  AwsEnvironment env;
  env.get_env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  env.read_file = [](const std::string& path) -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      if (errno == ENOENT) return NotFoundError(path + ": no such file");
      return UnavailableError(path + ": cannot read");
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  return env;
}

std::shared_ptr<AwsCredentialsProvider> NewAwsCredentialChain(AwsCredentialChainOptions options) {
  return std::make_shared<ChainProvider>(std::move(options));
}

Result<std::optional<AwsCredentials>> ParseSharedCredentialsFile(std::string_view text,
                                                                 std::string_view profile) {
  std::string section;
  bool found = false;
  AwsCredentials c;
  size_t start = 0;
  int line_no = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line = Trim(text.substr(start, nl - start));
    start = nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return ProviderError(ProviderErrorKind::kAuth,
                             "line " + std::to_string(line_no) + ": unterminated section");
      }
      section = Trim(std::string_view(line).substr(1, line.size() - 2));
      if (section == profile) found = true;
      continue;
    }
    if (section != profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(std::string_view(line).substr(0, eq));
    std::string value = Trim(std::string_view(line).substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found) return std::optional<AwsCredentials>();
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return ProviderError(
        ProviderErrorKind::kAuth,
        "profile [" + std::string(profile) + "] lacks aws_access_key_id or aws_secret_access_key");
  }
  return std::optional<AwsCredentials>(std::move(c));
}

Result<AwsCredentials> ParseAssumeRoleWithWebIdentityResponse(std::string_view xml) {
  auto doc = ParseXml(xml);
  if (!doc.ok()) return doc.error();
  const XmlElement* c = doc->Find("AssumeRoleWithWebIdentityResult/Credentials");
  if (c == nullptr) return InvalidArgumentError("no AssumeRoleWithWebIdentityResult/Credentials");
  return WebIdentitySource::CredentialsFromXml(*c);
}

Result<AwsCredentials> ParseImdsCredentials(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "instance metadata credentials: not a JSON object");
  }
  auto str = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (std::string code = str("Code"); !code.empty() && code != "Success") {
    return ProviderError(ProviderErrorKind::kAuth, "instance metadata credentials: Code " + code);
  }
  AwsCredentials c{str("AccessKeyId"), str("SecretAccessKey"), str("Token"), std::nullopt, ""};
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "instance metadata credentials without AccessKeyId or SecretAccessKey");
  }
  if (std::string exp = str("Expiration"); !exp.empty()) {
    auto t = kube::ParseRfc3339(exp);
    if (!t.ok()) {
      return ProviderError(ProviderErrorKind::kUnavailable,
                           "instance metadata credentials: bad Expiration \"" + exp + "\"");
    }
    c.expiration = *t;
  }
  return c;
}

}  // namespace gpu_autoscaler::cloud
