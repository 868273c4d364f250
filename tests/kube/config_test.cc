#include "kube/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>

namespace gpu_autoscaler::kube {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// base64 of "CA PEM", "CERT PEM", "KEY PEM".
constexpr char kCaData[] = "Q0EgUEVN";
constexpr char kCertData[] = "Q0VSVCBQRU0=";
constexpr char kKeyData[] = "S0VZIFBFTQ==";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gpa-config-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string p = path_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << contents;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets an environment variable for the scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const std::string kFull = std::string(R"(apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )") +
                          kCaData + R"(
- name: dev
  cluster:
    server: http://127.0.0.1:8080
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes.default
users:
- name: admin
  user:
    client-certificate-data: )" +
                          kCertData + R"(
    client-key-data: )" + kKeyData +
                          R"(
- name: dev-user
  user:
    token: dev-token
- name: basic
  user:
    username: alice
    password: s3cret
contexts:
- name: prod-admin
  context:
    cluster: prod
    user: admin
    namespace: gpu-system
- name: dev
  context:
    cluster: dev
    user: dev-user
- name: basic
  context:
    cluster: dev
    user: basic
current-context: prod-admin
)";

TEST(KubeconfigTest, ParsesCurrentContext) {
  auto cfg = ParseKubeconfig(kFull, "config");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->context_name, "prod-admin");
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");  // trailing '/' dropped
  EXPECT_EQ(cfg->ca_pem, "CA PEM");
  EXPECT_EQ(cfg->client_cert_pem, "CERT PEM");
  EXPECT_EQ(cfg->client_key_pem, "KEY PEM");
  EXPECT_EQ(cfg->default_namespace, "gpu-system");
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);
  EXPECT_TRUE(cfg->bearer_token.empty());
}

TEST(KubeconfigTest, ExplicitContexts) {
  auto dev = ParseKubeconfig(kFull, "config", "dev");
  ASSERT_TRUE(dev.ok()) << dev.error().ToString();
  EXPECT_EQ(dev->server, "http://127.0.0.1:8080");
  EXPECT_TRUE(dev->insecure_skip_tls_verify);
  EXPECT_EQ(dev->tls_server_name, "kubernetes.default");
  EXPECT_EQ(dev->bearer_token, "dev-token");
  EXPECT_EQ(dev->default_namespace, "default");

  auto basic = ParseKubeconfig(kFull, "config", "basic");
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->username, "alice");
  EXPECT_EQ(basic->password, "s3cret");

  auto missing = ParseKubeconfig(kFull, "config", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), Error::Kind::kConfig);
  EXPECT_EQ(missing.error().message(), "config: context \"nope\" not found");
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::string message;
};

class KubeconfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(KubeconfigErrorTest, NamesFileAndField) {
  auto cfg = ParseKubeconfig(GetParam().yaml, "config");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().kind(), Error::Kind::kConfig);
  EXPECT_EQ(cfg.error().message(), GetParam().message);
}

std::string WithUser(const std::string& user_fields) {
  return "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
         "users:\n- name: u\n  user:\n" +
         user_fields +
         "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
         "current-context: x\n";
}

std::string WithCluster(const std::string& cluster_fields) {
  return "clusters:\n- name: c\n  cluster:\n" + cluster_fields +
         "contexts:\n- name: x\n  context:\n    cluster: c\n"
         "current-context: x\n";
}

INSTANTIATE_TEST_SUITE_P(
    BadFields, KubeconfigErrorTest,
    ::testing::Values(
        BadCase{"KeyDataNotBase64",
                WithUser("    client-certificate-data: " + std::string(kCertData) +
                         "\n    client-key-data: '%%%not base64'\n"),
                "config: users[0].user.client-key-data: invalid base64"},
        BadCase{"CaDataNotBase64",
                WithCluster("    server: https://h\n"
                            "    certificate-authority-data: abc\n"),
                "config: clusters[0].cluster.certificate-authority-data: invalid base64"},
        BadCase{"MissingServer", WithCluster("    insecure-skip-tls-verify: true\n"),
                "config: clusters[0].cluster.server: required"},
        BadCase{"ServerNotUrl", WithCluster("    server: 10.0.0.1:6443\n"),
                "config: clusters[0].cluster.server: \"10.0.0.1:6443\" is not an http:// or "
                "https:// URL"},
        BadCase{"InsecureNotBool",
                WithCluster("    server: https://h\n    insecure-skip-tls-verify: maybe\n"),
                "config: clusters[0].cluster.insecure-skip-tls-verify: expected true or false"},
        BadCase{"ServerNotString", WithCluster("    server: [a, b]\n"),
                "config: clusters[0].cluster.server: expected a string"},
        BadCase{"CertWithoutKey",
                WithUser("    client-certificate-data: " + std::string(kCertData) + "\n"),
                "config: users[0].user: client-certificate and client-key must be given "
                "together"},
        BadCase{"ExecPlugin", WithUser("    exec:\n      command: aws\n"),
                "config: users[0].user.exec: credential plugins are not supported; use a token "
                "or client certificate"},
        BadCase{"MissingCertFile",
                WithUser("    client-certificate: /nonexistent/cert.pem\n"
                         "    client-key-data: " +
                         std::string(kKeyData) + "\n"),
                "config: users[0].user.client-certificate: /nonexistent/cert.pem: No such file "
                "or directory"},
        BadCase{"MissingTokenFile", WithUser("    tokenFile: /nonexistent/token\n"),
                "config: users[0].user.tokenFile: /nonexistent/token: No such file or directory"},
        BadCase{"ClustersNotList", "clusters: {a: b}\n", "config: clusters: expected a list"},
        BadCase{"EntryWithoutName", "users:\n- user:\n    token: t\n",
                "config: users[0].name: required"},
        BadCase{"UnknownCluster",
                "contexts:\n- name: x\n  context:\n    cluster: gone\ncurrent-context: x\n",
                "config: contexts[0].context.cluster: cluster \"gone\" not found"},
        BadCase{"UnknownUser",
                "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                "contexts:\n- name: y\n  context:\n    cluster: c\n    user: who\n"
                "current-context: y\n",
                "config: contexts[0].context.user: user \"who\" not found"},
        BadCase{"NoCurrentContext", "clusters: []\n",
                "config: no current-context is set and none was given"},
        BadCase{"NotAMap", "- a\n- b\n", "config: expected a kubeconfig map"}),
    [](const auto& info) { return info.param.name; });

TEST(KubeconfigTest, TokenUser) {
  auto cfg = ParseKubeconfig(WithUser("    token: t\n"), "config");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->bearer_token, "t");
}

TEST(KubeconfigTest, InvalidYamlIsAnErrorNotAnException) {
  for (std::string_view yaml : {"clusters: [", "a: b: c", "{{{{", "key: 'unterminated"}) {
    auto cfg = ParseKubeconfig(yaml, "broken.yaml");
    ASSERT_FALSE(cfg.ok()) << yaml;
    EXPECT_EQ(cfg.error().message().rfind("broken.yaml: ", 0), 0u) << cfg.error().message();
  }
}

TEST(KubeconfigTest, RelativePathsResolveAgainstTheFile) {
  TempDir dir;
  dir.Write("certs/ca.crt", "CA FROM FILE");
  dir.Write("certs/client.crt", "CERT FROM FILE");
  dir.Write("certs/client.key", "KEY FROM FILE");
  dir.Write("token", "  file-token\n");
  std::string path = dir.Write("kube/config", R"(
clusters:
- name: c
  cluster:
    server: https://h:6443
    certificate-authority: ../certs/ca.crt
users:
- name: u
  user:
    client-certificate: ../certs/client.crt
    client-key: ../certs/client.key
    tokenFile: ../token
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)");
  auto cfg = LoadKubeconfigFiles({path});
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->ca_pem, "CA FROM FILE");
  EXPECT_EQ(cfg->client_cert_pem, "CERT FROM FILE");
  EXPECT_EQ(cfg->client_key_pem, "KEY FROM FILE");
  ASSERT_NE(cfg->token_source, nullptr);
  auto token = cfg->token_source->Token();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "file-token");
}

TEST(KubeconfigTest, MergesFilesFirstWins) {
  TempDir dir;
  std::string first = dir.Write("a.yaml", R"(
clusters:
- name: shared
  cluster: {server: "https://first:6443"}
contexts:
- name: one
  context: {cluster: shared, user: me}
current-context: one
)");
  std::string second = dir.Write("b.yaml", R"(
clusters:
- name: shared
  cluster: {server: "https://second:6443"}
- name: other
  cluster: {server: "https://other:6443"}
users:
- name: me
  user: {token: from-second}
contexts:
- name: one
  context: {cluster: other}
- name: two
  context: {cluster: other, user: me}
current-context: two
)");
  std::string missing = dir.path() + "/does-not-exist.yaml";
  auto cfg = LoadKubeconfigFiles({missing, first, second});
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->context_name, "one");           // first file's current-context
  EXPECT_EQ(cfg->server, "https://first:6443");  // first definition of "shared"
  EXPECT_EQ(cfg->bearer_token, "from-second");   // user only in the second file

  auto two = LoadKubeconfigFiles({first, second}, "two");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->server, "https://other:6443");

  // Errors name the file the bad entry came from.
  std::string bad = dir.Write("bad.yaml",
                              "users:\n- name: broken\n  user:\n"
                              "    client-key-data: '!!'\n"
                              "    client-certificate-data: Q0VSVCBQRU0=\n");
  auto broken = LoadKubeconfigFiles({first, bad, second});
  ASSERT_TRUE(broken.ok());  // the broken user is not used by context "one"
  std::string uses_broken = dir.Write("c.yaml",
                                      "contexts:\n- name: b\n  context: {cluster: shared, user: "
                                      "broken}\n");
  auto failed = LoadKubeconfigFiles({first, bad, uses_broken}, "b");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), bad + ": users[0].user.client-key-data: invalid base64");
}

TEST(KubeconfigTest, NoFiles) {
  auto cfg = LoadKubeconfigFiles({"/nonexistent/a", "/nonexistent/b"});
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message(), "/nonexistent/a:/nonexistent/b: no kubeconfig file found");
}

TEST(KubeconfigTest, DefaultConfigReadsKubeconfigList) {
  TempDir dir;
  std::string path = dir.Write("config", WithUser("    token: t\n"));
  ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
  ScopedEnv list("KUBECONFIG", "/nonexistent/x:" + path);
  auto cfg = LoadDefaultConfig();
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->server, "https://h");
  EXPECT_EQ(cfg->bearer_token, "t");
}

TEST(FileTokenSourceTest, ReReadsAfterRefreshInterval) {
  TempDir dir;
  std::string path = dir.Write("token", "first\n");
  FakeClock clock;
  auto source = FileTokenSource(path, clock, 60s);
  EXPECT_EQ(*source->Token(), "first");
  dir.Write("token", "second\n");
  EXPECT_EQ(*source->Token(), "first");  // cached within the interval
  clock.Step(59s);
  EXPECT_EQ(*source->Token(), "first");
  clock.Step(1s);
  EXPECT_EQ(*source->Token(), "second");
  // A rotation in flight (file gone or empty) keeps the last good token.
  fs::remove(path);
  clock.Step(60s);
  EXPECT_EQ(*source->Token(), "second");
  dir.Write("token", "");
  clock.Step(60s);
  EXPECT_EQ(*source->Token(), "second");
  dir.Write("token", "third");
  clock.Step(60s);
  EXPECT_EQ(*source->Token(), "third");
}

TEST(FileTokenSourceTest, MissingFileWithoutCachedToken) {
  FakeClock clock;
  auto source = FileTokenSource("/nonexistent/token", clock);
  auto token = source->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().kind(), Error::Kind::kConfig);
  EXPECT_NE(token.error().message().find("/nonexistent/token"), std::string::npos);
}

TEST(InClusterConfigTest, ReadsServiceAccount) {
  TempDir dir;
  dir.Write("token", "sa-token-1");
  dir.Write("ca.crt", "CLUSTER CA");
  dir.Write("namespace", "gpu-system\n");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  FakeClock clock;
  auto cfg = LoadInClusterConfig(clock, dir.path());
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->ca_pem, "CLUSTER CA");
  EXPECT_EQ(cfg->default_namespace, "gpu-system");
  EXPECT_EQ(cfg->context_name, "in-cluster");
  ASSERT_NE(cfg->token_source, nullptr);
  EXPECT_EQ(*cfg->token_source->Token(), "sa-token-1");
  // The kubelet rotates the projected token; the next read after a minute sees it.
  dir.Write("token", "sa-token-2");
  clock.Step(61s);
  EXPECT_EQ(*cfg->token_source->Token(), "sa-token-2");
}

TEST(InClusterConfigTest, BracketsIpv6Hosts) {
  TempDir dir;
  dir.Write("token", "t");
  dir.Write("ca.crt", "CA");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  auto cfg = LoadInClusterConfig(RealClock::Instance(), dir.path());
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->server, "https://[fd00:10:96::1]:6443");
  EXPECT_EQ(cfg->default_namespace, "default");  // no namespace file
}

TEST(InClusterConfigTest, Errors) {
  TempDir dir;
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    auto cfg = LoadInClusterConfig(RealClock::Instance(), dir.path());
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  }
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto no_token = LoadInClusterConfig(RealClock::Instance(), dir.path());
  ASSERT_FALSE(no_token.ok());
  EXPECT_EQ(no_token.error().message(),
            "in-cluster config: " + dir.path() + "/token: No such file or directory");
  dir.Write("token", "t");
  auto no_ca = LoadInClusterConfig(RealClock::Instance(), dir.path());
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.error().message().find("ca.crt"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
