// File: src/net/self_signed_cert.h
//
// Self-signed serving certificates (the webhook's --self-signed mode, the
// manager's secure metrics without a certificate): a throwaway CA and a serving certificate signed
// by it, both ECDSA P-256, with the Service DNS names kube-apiserver dials
// ("<svc>.<ns>.svc") as subjectAltNames. The CA certificate becomes the
// caBundle of the webhook configurations (cert_bundle_patcher.h).
//
//   SelfSignedRequest req;
//   req.dns_names = ServiceDnsNames("gpu-autoscaler-webhook", "gpu-autoscaler");
//   GPU_ASSIGN_OR_RETURN(SelfSignedCertificates certs, GenerateSelfSignedCertificates(req));
//   ParseCertifiedKey(certs.serving_cert_pem, certs.serving_key_pem);
//
// Thread-safety: a pure function (OpenSSL 3 is thread-safe).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::net {

struct SelfSignedRequest {
  std::vector<std::string> dns_names{};     // subjectAltName DNS entries; the first is the CN
  std::vector<std::string> ip_addresses{};  // subjectAltName IP entries ("127.0.0.1")
  std::chrono::system_clock::time_point not_before = std::chrono::system_clock::now();
  std::chrono::hours validity{24 * 365};
  std::string ca_common_name = "gpu-autoscaler-webhook-ca";
};

struct SelfSignedCertificates {
  std::string ca_cert_pem;
  std::string ca_key_pem;  // to issue more certificates (IssueClientCertificate)
  std::string serving_cert_pem;
  std::string serving_key_pem;
};

// "svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local".
std::vector<std::string> ServiceDnsNames(const std::string& service, const std::string& ns);

Result<SelfSignedCertificates> GenerateSelfSignedCertificates(const SelfSignedRequest& request);

// A new serving certificate and key for `request` signed by an existing CA
// (renewing the leaf while the CA, hence the caBundle, stays the same).
struct ServingPair {
  std::string cert_pem;
  std::string key_pem;
};
Result<ServingPair> IssueServingCertificate(const std::string& ca_cert_pem,
                                            const std::string& ca_key_pem,
                                            const SelfSignedRequest& request);

// A client certificate (extendedKeyUsage clientAuth; subject CN
// `common_name`, O `organizations`, which x509 client authentication reads
// as the user and groups) signed by a CA from GenerateSelfSignedCertificates:
// a front-proxy or kubelet-style client in tests and tools.
struct ClientCertificate {
  std::string cert_pem;
  std::string key_pem;
};
Result<ClientCertificate> IssueClientCertificate(
    const std::string& ca_cert_pem, const std::string& ca_key_pem, const std::string& common_name,
    const std::vector<std::string>& organizations = {});

// A generated pair written as tls.crt/tls.key into a fresh private directory
// under the temp directory ("<prefix>-XXXXXX"), for servers that generate
// their certificate when given none (controller-runtime's habit). The caller
// removes `dir` when done.
struct TemporaryServingPair {
  std::string dir;
  std::string cert_file;
  std::string key_file;
  std::string ca_cert_pem;
};
Result<TemporaryServingPair> WriteTemporaryServingPair(const SelfSignedRequest& request,
                                                       const std::string& prefix);

}  // namespace gpu_autoscaler::net
