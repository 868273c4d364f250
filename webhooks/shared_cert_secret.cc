#include "webhooks/shared_cert_secret.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json_read.h"
#include "kube/meta_time.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "net/self_signed_cert.h"

namespace gpu_autoscaler::webhooks {
namespace {

using SystemTime = std::chrono::system_clock::time_point;

struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using UniqueX509 = std::unique_ptr<X509, X509Free>;
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Every certificate in a PEM text, in order.
std::vector<UniqueX509> ReadCertificates(const std::string& pem) {
  std::vector<UniqueX509> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
    out.emplace_back(cert);
  BIO_free(bio);
  ERR_clear_error();
  return out;
}

UniquePkey ReadKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  UniquePkey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  return key;
}

// X.509 times run to 9999 (RFC 5280's 99991231235959Z means "no expiry");
// clamped to the range the clock and differences of it hold (meta_time.h).
SystemTime ToTime(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  const int64_t secs =
      std::clamp<int64_t>(timegm(&tm), kube::kFirstSafeUnixSecond, kube::kEndSafeUnixSecond - 1);
  return std::chrono::system_clock::from_time_t(static_cast<std::time_t>(secs));
}

std::string FormatTime(SystemTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Empty when `cert` is valid at `now` with more than the rotation margin left.
std::string ExpiryProblem(X509* cert, const std::string& what, SystemTime now,
                          const CertPolicy& policy) {
  SystemTime not_before = ToTime(X509_get0_notBefore(cert));
  SystemTime not_after = ToTime(X509_get0_notAfter(cert));
  if (now < not_before) return what + " is not valid before " + FormatTime(not_before);
  if (now >= not_after) return what + " expired at " + FormatTime(not_after);
  auto margin =
      policy.rotate_before.count() > 0
          ? std::chrono::duration_cast<std::chrono::system_clock::duration>(policy.rotate_before)
          : (not_after - not_before) / 3;
  if (not_after - now < margin) return what + " expires at " + FormatTime(not_after);
  return "";
}

}  // namespace

SecretDecision DecideSecretCertificates(const std::optional<SecretCertificates>& current,
                                        SystemTime now, const CertPolicy& policy) {
  using enum SecretAction;
  if (!current) return {kRegenerate, "no certificates yet"};
  std::vector<UniqueX509> cas = ReadCertificates(current->ca_bundle_pem);
  if (cas.empty()) return {kRegenerate, "ca.crt holds no PEM certificate"};
  UniquePkey ca_key = ReadKey(current->ca_key_pem);
  if (!ca_key) return {kRegenerate, "ca.key holds no PEM private key"};
  if (X509_check_private_key(cas[0].get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return {kRegenerate, "ca.key does not match the first certificate of ca.crt"};
  }
  if (std::string problem = ExpiryProblem(cas[0].get(), "the CA", now, policy); !problem.empty()) {
    return {kRegenerate, problem};
  }
  std::vector<UniqueX509> leaves = ReadCertificates(current->cert_pem);
  if (leaves.empty()) return {kRenewLeaf, "tls.crt holds no PEM certificate"};
  X509* leaf = leaves[0].get();
  UniquePkey key = ReadKey(current->key_pem);
  if (!key) return {kRenewLeaf, "tls.key holds no PEM private key"};
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return {kRenewLeaf, "tls.key does not match tls.crt"};
  }
  if (X509_verify(leaf, X509_get0_pubkey(cas[0].get())) != 1) {
    ERR_clear_error();
    return {kRenewLeaf, "tls.crt is not signed by the CA in ca.crt"};
  }
  for (const std::string& name : policy.dns_names) {
    if (X509_check_host(leaf, name.c_str(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr) !=
        1) {
      return {kRenewLeaf, "tls.crt does not certify " + name};
    }
  }
  for (const std::string& ip : policy.ip_addresses) {
    if (X509_check_ip_asc(leaf, ip.c_str(), 0) != 1) {
      return {kRenewLeaf, "tls.crt does not certify " + ip};
    }
  }
  if (std::string problem = ExpiryProblem(leaf, "tls.crt", now, policy); !problem.empty()) {
    return {kRenewLeaf, problem};
  }
  return {kUse, ""};
}

Result<SecretCertificates> BuildSecretCertificates(const SecretDecision& decision,
                                                   const std::optional<SecretCertificates>& current,
                                                   SystemTime now, const CertPolicy& policy) {
  net::SelfSignedRequest request;
  request.dns_names = policy.dns_names;
  request.ip_addresses = policy.ip_addresses;
  request.not_before = now;
  request.validity = policy.validity;
  switch (decision.action) {
    case SecretAction::kUse:
      if (!current) return FailedPreconditionError("no certificates to use");
      return *current;
    case SecretAction::kRenewLeaf: {
      if (!current) return FailedPreconditionError("no CA to renew the certificate from");
      GPU_ASSIGN_OR_RETURN(
          net::ServingPair leaf,
          net::IssueServingCertificate(current->ca_bundle_pem, current->ca_key_pem, request));
      SecretCertificates out = *current;
      out.cert_pem = std::move(leaf.cert_pem);
      out.key_pem = std::move(leaf.key_pem);
      return out;
    }
    case SecretAction::kRegenerate: {
      GPU_ASSIGN_OR_RETURN(net::SelfSignedCertificates fresh,
                           net::GenerateSelfSignedCertificates(request));
      SecretCertificates out{.ca_bundle_pem = fresh.ca_cert_pem,
                             .ca_key_pem = fresh.ca_key_pem,
                             .cert_pem = fresh.serving_cert_pem,
                             .key_pem = fresh.serving_key_pem};
      // Servers still presenting the old CA's leaf stay trusted until they
      // pick up the new one: keep the previous signing CA if it has not expired.
      if (current) {
        std::vector<UniqueX509> old = ReadCertificates(current->ca_bundle_pem);
        if (!old.empty() && ToTime(X509_get0_notAfter(old[0].get())) > now) {
          BIO* bio = BIO_new(BIO_s_mem());
          PEM_write_bio_X509(bio, old[0].get());
          char* data = nullptr;
          long n = BIO_get_mem_data(bio, &data);
          out.ca_bundle_pem.append(data, static_cast<size_t>(n));
          BIO_free(bio);
        }
      }
      return out;
    }
  }
  return InternalError("unknown secret action");
}

Result<SecretCertificates> DecodeSecretCertificates(const nlohmann::json& secret) {
  auto data = secret.find("data");
  if (data == secret.end() || !data->is_object()) return InvalidArgumentError("no data");
  SecretCertificates out;
  for (auto [key, field] :
       {std::pair{"ca.crt", &out.ca_bundle_pem}, std::pair{"ca.key", &out.ca_key_pem},
        std::pair{"tls.crt", &out.cert_pem}, std::pair{"tls.key", &out.key_pem}}) {
    auto value = data->find(key);
    if (value == data->end() || !value->is_string()) {
      return InvalidArgumentError(std::string("no ") + key);
    }
    std::optional<std::string> decoded = Base64Decode(value->get<std::string>());
    if (!decoded) return InvalidArgumentError(std::string(key) + " is not base64");
    *field = std::move(*decoded);
  }
  return out;
}

SharedCertSecret::SharedCertSecret(kube::RestClient* client, std::string ns, std::string name,
                                   CertPolicy policy, Clock& clock)
    : client_(client),
      namespace_(std::move(ns)),
      name_(std::move(name)),
      policy_(std::move(policy)),
      clock_(clock) {}

Result<SharedCertSecret::Outcome> SharedCertSecret::Sync() {
  const kube::ObjectRef ref{kube::resources::kSecrets, namespace_, name_};
  const std::string what = "Secret " + namespace_ + "/" + name_;
  constexpr int kAttempts = 4;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = client_->Get(ref);
    if (!got.ok() && !kube::IsNotFound(got.error())) {
      return got.error().ToStatus().WithContext("get " + what);
    }
    const bool exists = got.ok();
    std::optional<SecretCertificates> current;
    std::string decode_problem;
    if (exists) {
      auto decoded = DecodeSecretCertificates(*got);
      if (decoded.ok()) {
        current = std::move(decoded).value();
      } else {
        decode_problem = decoded.error().message();
      }
    }
    const SystemTime now = clock_.WallNow();
    SecretDecision decision = DecideSecretCertificates(current, now, policy_);
    if (decision.action == SecretAction::kUse) return Outcome{*current, false, ""};
    if (!decode_problem.empty()) decision.reason = "data unusable: " + decode_problem;
    if (!exists) decision.reason = "absent";
    GPU_ASSIGN_OR_RETURN(SecretCertificates next,
                         BuildSecretCertificates(decision, current, now, policy_));
    nlohmann::json secret = {
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"type", "kubernetes.io/tls"},
        {"metadata",
         {{"name", name_},
          {"namespace", namespace_},
          {"labels", {{"app.kubernetes.io/managed-by", "gpu-autoscaler-webhook"}}}}},
        {"data",
         {{"ca.crt", Base64Encode(next.ca_bundle_pem)},
          {"ca.key", Base64Encode(next.ca_key_pem)},
          {"tls.crt", Base64Encode(next.cert_pem)},
          {"tls.key", Base64Encode(next.key_pem)}}}};
    if (exists) {
      const nlohmann::json& metadata = json_read::Object(*got, "metadata");
      secret["metadata"]["resourceVersion"] = json_read::String(metadata, "resourceVersion");
      secret["metadata"]["labels"].update(json_read::Object(metadata, "labels"));
      auto written = client_->Replace(ref, secret);
      if (written.ok()) return Outcome{std::move(next), true, decision.reason};
      if (!kube::IsConflict(written.error())) {
        return written.error().ToStatus().WithContext("update " + what);
      }
    } else {
      auto written = client_->Create({kube::resources::kSecrets, namespace_, ""}, secret);
      if (written.ok()) return Outcome{std::move(next), true, decision.reason};
      if (!kube::IsAlreadyExists(written.error())) {
        return written.error().ToStatus().WithContext("create " + what);
      }
    }
    // Another replica wrote first: read and use its certificates.
  }
  return AbortedError(what + ": still losing write races after " + std::to_string(kAttempts) +
                      " attempts");
}

}  // namespace gpu_autoscaler::webhooks
