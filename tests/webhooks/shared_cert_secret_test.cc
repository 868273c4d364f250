// The pure part of the --self-signed-secret mode: what to do with a shared
// Secret's certificates at a given time, and what gets written.
#include "webhooks/shared_cert_secret.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "net/self_signed_cert.h"
#include "webhooks/cert_source.h"

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using SystemTime = std::chrono::system_clock::time_point;

// A fixed start, whole seconds (certificates have second resolution).
const SystemTime kT0 = std::chrono::system_clock::from_time_t(1'780'000'000);
constexpr hours kDay{24};

CertPolicy Policy() {
  return CertPolicy{.dns_names = net::ServiceDnsNames("gpa-webhook", "gpa-system"),
                    .ip_addresses = {"127.0.0.1"}};
}

net::SelfSignedRequest Request(SystemTime not_before, hours validity) {
  net::SelfSignedRequest r;
  r.dns_names = Policy().dns_names;
  r.ip_addresses = Policy().ip_addresses;
  r.not_before = not_before;
  r.validity = validity;
  return r;
}

// CA valid 10 years from kT0 (notBefore is 1h earlier), leaf from `leaf_not_before`.
SecretCertificates Certs(SystemTime leaf_not_before, hours leaf_validity) {
  auto ca = net::GenerateSelfSignedCertificates(Request(kT0, 3650 * kDay));
  EXPECT_TRUE(ca.ok());
  auto leaf = net::IssueServingCertificate(ca->ca_cert_pem, ca->ca_key_pem,
                                           Request(leaf_not_before, leaf_validity));
  EXPECT_TRUE(leaf.ok());
  return {ca->ca_cert_pem, ca->ca_key_pem, leaf->cert_pem, leaf->key_pem};
}

TEST(DecideSecretCertificates, NoSecretMeansGenerateEverything) {
  SecretDecision d = DecideSecretCertificates(std::nullopt, kT0, Policy());
  EXPECT_EQ(d.action, SecretAction::kRegenerate);
}

TEST(DecideSecretCertificates, UsesAFreshSecret) {
  // Leaf lifetime 30d + 1h; a third is 240h20m; 29d + 1h left after one day.
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  SecretDecision d = DecideSecretCertificates(certs, kT0 + kDay, Policy());
  EXPECT_EQ(d.action, SecretAction::kUse) << d.reason;
}

TEST(DecideSecretCertificates, RenewsTheLeafWithLessThanAThirdLeft) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  // 20 days in: 10 days = 240h left < 240h20m.
  SecretDecision d = DecideSecretCertificates(certs, kT0 + 20 * kDay, Policy());
  EXPECT_EQ(d.action, SecretAction::kRenewLeaf);
  EXPECT_NE(d.reason.find("tls.crt expires at"), std::string::npos) << d.reason;
  // 19 days in: 11 days left, still fine.
  EXPECT_EQ(DecideSecretCertificates(certs, kT0 + 19 * kDay, Policy()).action, SecretAction::kUse);
}

TEST(DecideSecretCertificates, RotateBeforeOverridesTheThird) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  CertPolicy policy = Policy();
  policy.rotate_before = hours(1);
  EXPECT_EQ(DecideSecretCertificates(certs, kT0 + 25 * kDay, policy).action, SecretAction::kUse);
  policy.rotate_before = 6 * kDay;  // 5 days left
  EXPECT_EQ(DecideSecretCertificates(certs, kT0 + 25 * kDay, policy).action,
            SecretAction::kRenewLeaf);
}

TEST(DecideSecretCertificates, RegeneratesWhenTheCaIsNearExpiryOrExpired) {
  auto ca = net::GenerateSelfSignedCertificates(Request(kT0, 30 * kDay));
  ASSERT_TRUE(ca.ok());
  SecretCertificates certs{ca->ca_cert_pem, ca->ca_key_pem, ca->serving_cert_pem,
                           ca->serving_key_pem};
  SecretDecision near = DecideSecretCertificates(certs, kT0 + 25 * kDay, Policy());
  EXPECT_EQ(near.action, SecretAction::kRegenerate);
  EXPECT_NE(near.reason.find("the CA expires at"), std::string::npos) << near.reason;
  SecretDecision expired = DecideSecretCertificates(certs, kT0 + 31 * kDay, Policy());
  EXPECT_EQ(expired.action, SecretAction::kRegenerate);
  EXPECT_NE(expired.reason.find("the CA expired at"), std::string::npos) << expired.reason;
  SecretDecision early = DecideSecretCertificates(certs, kT0 - 2h, Policy());
  EXPECT_NE(early.reason.find("not valid before"), std::string::npos) << early.reason;
}

TEST(DecideSecretCertificates, GarbageIsReplacedWithAReason) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  SecretCertificates bad = certs;
  bad.ca_bundle_pem = "garbage";
  EXPECT_EQ(DecideSecretCertificates(bad, kT0, Policy()).reason, "ca.crt holds no PEM certificate");
  bad = certs;
  bad.ca_key_pem = "garbage";
  EXPECT_EQ(DecideSecretCertificates(bad, kT0, Policy()).reason, "ca.key holds no PEM private key");
  bad = certs;
  bad.ca_key_pem = certs.key_pem;  // the leaf's key
  EXPECT_EQ(DecideSecretCertificates(bad, kT0, Policy()).action, SecretAction::kRegenerate);
  bad = certs;
  bad.cert_pem = "garbage";
  SecretDecision d = DecideSecretCertificates(bad, kT0, Policy());
  EXPECT_EQ(d.action, SecretAction::kRenewLeaf);
  EXPECT_EQ(d.reason, "tls.crt holds no PEM certificate");
  bad = certs;
  bad.key_pem = Certs(kT0, kDay).key_pem;
  EXPECT_EQ(DecideSecretCertificates(bad, kT0, Policy()).reason, "tls.key does not match tls.crt");
}

TEST(DecideSecretCertificates, RenewsALeafFromAnotherCaOrForOtherNames) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  SecretCertificates other = Certs(kT0, 30 * kDay);
  SecretCertificates mixed = certs;
  mixed.cert_pem = other.cert_pem;
  mixed.key_pem = other.key_pem;
  SecretDecision d = DecideSecretCertificates(mixed, kT0, Policy());
  EXPECT_EQ(d.action, SecretAction::kRenewLeaf);
  EXPECT_EQ(d.reason, "tls.crt is not signed by the CA in ca.crt");

  CertPolicy renamed = Policy();
  renamed.dns_names.push_back("gpa-webhook.other.svc");
  d = DecideSecretCertificates(certs, kT0, renamed);
  EXPECT_EQ(d.action, SecretAction::kRenewLeaf);
  EXPECT_EQ(d.reason, "tls.crt does not certify gpa-webhook.other.svc");
  CertPolicy new_ip = Policy();
  new_ip.ip_addresses = {"10.0.0.7"};
  EXPECT_EQ(DecideSecretCertificates(certs, kT0, new_ip).reason,
            "tls.crt does not certify 10.0.0.7");
}

// `cert_pem` with its notAfter set to `not_after` (ASN.1 text), re-signed by `key_pem`.
std::string WithNotAfter(const std::string& cert_pem, const std::string& key_pem,
                         const char* not_after) {
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  std::string out;
  if (cert != nullptr && key != nullptr &&
      ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), not_after) == 1 &&
      X509_sign(cert, key, EVP_sha256()) > 0) {
    BIO* mem = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(mem, cert);
    char* data = nullptr;
    const long size = BIO_get_mem_data(mem, &data);
    out.assign(data, static_cast<size_t>(size));
    BIO_free(mem);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// RFC 5280's "no expiry" (99991231235959Z) is past what the nanosecond clock
// holds; it read as a time before 1970 (an overflow, UBSan), so a CA and leaf
// that never expire were regenerated as "expired" on every start.
TEST(DecideSecretCertificates, CertificatesThatNeverExpireAreUsed) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  certs.ca_bundle_pem = WithNotAfter(certs.ca_bundle_pem, certs.ca_key_pem, "99991231235959Z");
  certs.cert_pem = WithNotAfter(certs.cert_pem, certs.ca_key_pem, "99991231235959Z");
  ASSERT_FALSE(certs.ca_bundle_pem.empty());
  ASSERT_FALSE(certs.cert_pem.empty());
  SecretDecision d = DecideSecretCertificates(certs, kT0 + 400 * kDay, Policy());
  EXPECT_EQ(d.action, SecretAction::kUse) << d.reason;
}

TEST(BuildSecretCertificates, LeafRenewalKeepsTheCa) {
  SecretCertificates certs = Certs(kT0, 30 * kDay);
  SystemTime now = kT0 + 25 * kDay;
  SecretDecision d = DecideSecretCertificates(certs, now, Policy());
  ASSERT_EQ(d.action, SecretAction::kRenewLeaf);
  auto next = BuildSecretCertificates(d, certs, now, Policy());
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->ca_bundle_pem, certs.ca_bundle_pem);
  EXPECT_EQ(next->ca_key_pem, certs.ca_key_pem);
  EXPECT_NE(next->cert_pem, certs.cert_pem);
  EXPECT_EQ(DecideSecretCertificates(*next, now, Policy()).action, SecretAction::kUse);
  EXPECT_TRUE(ParseCertifiedKey(next->cert_pem, next->key_pem).ok());
}

TEST(BuildSecretCertificates, ANewCaKeepsTheOldOneInTheBundleUntilItExpires) {
  auto old = net::GenerateSelfSignedCertificates(Request(kT0, 30 * kDay));
  ASSERT_TRUE(old.ok());
  SecretCertificates certs{old->ca_cert_pem, old->ca_key_pem, old->serving_cert_pem,
                           old->serving_key_pem};
  SystemTime now = kT0 + 25 * kDay;
  SecretDecision d = DecideSecretCertificates(certs, now, Policy());
  ASSERT_EQ(d.action, SecretAction::kRegenerate);
  auto next = BuildSecretCertificates(d, certs, now, Policy());
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  // New CA first (it signs tls.crt), then the old one.
  ASSERT_GT(next->ca_bundle_pem.size(), old->ca_cert_pem.size());
  EXPECT_EQ(next->ca_bundle_pem.substr(next->ca_bundle_pem.size() - old->ca_cert_pem.size()),
            old->ca_cert_pem);
  EXPECT_NE(next->ca_bundle_pem.rfind(old->ca_cert_pem, 0), 0u);
  EXPECT_EQ(DecideSecretCertificates(*next, now, Policy()).action, SecretAction::kUse);

  // Once the old CA has expired it is not carried over.
  auto after = BuildSecretCertificates(d, certs, kT0 + 31 * kDay, Policy());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->ca_bundle_pem.find(old->ca_cert_pem), std::string::npos);
  // Garbage is not carried over either.
  SecretCertificates garbage{"garbage", "x", "y", "z"};
  auto fresh = BuildSecretCertificates({SecretAction::kRegenerate, ""}, garbage, now, Policy());
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->ca_bundle_pem.find("garbage"), std::string::npos);
  EXPECT_EQ(fresh->ca_bundle_pem.find("BEGIN CERTIFICATE"),
            fresh->ca_bundle_pem.rfind("BEGIN CERTIFICATE"));
}

TEST(DecodeSecretCertificates, NamesTheMissingOrUndecodableKey) {
  nlohmann::json secret = {{"data",
                            {{"ca.crt", Base64Encode("a")},
                             {"ca.key", Base64Encode("b")},
                             {"tls.crt", Base64Encode("c")},
                             {"tls.key", Base64Encode("d")}}}};
  auto ok = DecodeSecretCertificates(secret);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->ca_bundle_pem, "a");
  EXPECT_EQ(ok->key_pem, "d");
  secret["data"].erase("tls.key");
  EXPECT_EQ(DecodeSecretCertificates(secret).error().message(), "no tls.key");
  secret["data"]["tls.key"] = "!!!";
  EXPECT_EQ(DecodeSecretCertificates(secret).error().message(), "tls.key is not base64");
  EXPECT_EQ(DecodeSecretCertificates(nlohmann::json::object()).error().message(), "no data");
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
