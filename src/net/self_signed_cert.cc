#include "net/self_signed_cert.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>

namespace gpu_autoscaler::net {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;

Status OpenSslError(std::string_view what) {
  unsigned long code = ERR_get_error();
  char buf[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return InternalError(std::string(what) + ": " + buf);
}

Result<UniquePkey> NewEcKey() {
  UniquePkey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generate P-256 key");
  return key;
}

// A fresh certificate with a random positive 127-bit serial and the validity window.
Result<UniqueX509> NewCertificate(EVP_PKEY* public_key, const std::string& common_name,
                                  const SelfSignedRequest& req) {
  UniqueX509 cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return OpenSslError("RAND_bytes");
  serial_bytes[0] &= 0x7f;
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr);
  if (serial == nullptr ||
      BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())) == nullptr) {
    BN_free(serial);
    return OpenSslError("serial number");
  }
  BN_free(serial);
  auto not_before = std::chrono::system_clock::to_time_t(req.not_before - std::chrono::hours(1));
  auto not_after = std::chrono::system_clock::to_time_t(req.not_before + req.validity);
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) == nullptr) {
    return OpenSslError("validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  if (X509_set_pubkey(cert.get(), public_key) != 1) return OpenSslError("X509_set_pubkey");
  return cert;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslError(std::string("extension ") + OBJ_nid2sn(nid));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return OpenSslError("X509_add_ext");
  return Status::Ok();
}

Result<std::string> CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_X509(bio, cert) != 1) {
    BIO_free(bio);
    return OpenSslError("PEM_write_bio_X509");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

Status CheckRequest(const SelfSignedRequest& req) {
  if (req.dns_names.empty() && req.ip_addresses.empty()) {
    return InvalidArgumentError("self-signed certificate: no DNS name or IP address to certify");
  }
  for (const auto& name : req.dns_names) {
    if (name.empty() || name.find_first_of(", \t\n") != std::string::npos) {
      return InvalidArgumentError("self-signed certificate: invalid DNS name \"" + name + "\"");
    }
  }
  for (const auto& ip : req.ip_addresses) {
    if (ip.empty() || ip.find_first_of(", \t\n") != std::string::npos) {
      return InvalidArgumentError("self-signed certificate: invalid IP address \"" + ip + "\"");
    }
  }
  return Status::Ok();
}

// The serving certificate for `req`, signed by `ca`.
Result<ServingPair> IssueServing(X509* ca, EVP_PKEY* ca_key, const SelfSignedRequest& req) {
  GPU_ASSIGN_OR_RETURN(UniquePkey key, NewEcKey());
  std::string common_name = req.dns_names.empty() ? req.ip_addresses[0] : req.dns_names[0];
  GPU_ASSIGN_OR_RETURN(UniqueX509 leaf, NewCertificate(key.get(), common_name, req));
  X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca));
  std::string sans;
  for (const auto& name : req.dns_names)
    sans += (sans.empty() ? "DNS:" : ",DNS:") + name;
  for (const auto& ip : req.ip_addresses)
    sans += (sans.empty() ? "IP:" : ",IP:") + ip;
  GPU_RETURN_IF_ERROR(AddExtension(leaf.get(), ca, NID_basic_constraints, "critical,CA:FALSE"));
  GPU_RETURN_IF_ERROR(
      AddExtension(leaf.get(), ca, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  GPU_RETURN_IF_ERROR(AddExtension(leaf.get(), ca, NID_ext_key_usage, "serverAuth"));
  GPU_RETURN_IF_ERROR(AddExtension(leaf.get(), ca, NID_subject_alt_name, sans));
  GPU_RETURN_IF_ERROR(AddExtension(leaf.get(), ca, NID_authority_key_identifier, "keyid"));
  if (X509_sign(leaf.get(), ca_key, EVP_sha256()) == 0) {
    return OpenSslError("sign serving certificate");
  }

  ServingPair out;
  GPU_ASSIGN_OR_RETURN(out.cert_pem, CertPem(leaf.get()));
  GPU_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  return out;
}

}  // namespace

std::vector<std::string> ServiceDnsNames(const std::string& service, const std::string& ns) {
  return {service, service + "." + ns, service + "." + ns + ".svc",
          service + "." + ns + ".svc.cluster.local"};
}

Result<SelfSignedCertificates> GenerateSelfSignedCertificates(const SelfSignedRequest& req) {
  GPU_RETURN_IF_ERROR(CheckRequest(req));
  GPU_ASSIGN_OR_RETURN(UniquePkey ca_key, NewEcKey());
  GPU_ASSIGN_OR_RETURN(UniqueX509 ca, NewCertificate(ca_key.get(), req.ca_common_name, req));
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  GPU_RETURN_IF_ERROR(AddExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE"));
  GPU_RETURN_IF_ERROR(
      AddExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  GPU_RETURN_IF_ERROR(AddExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0) return OpenSslError("sign CA");

  SelfSignedCertificates out;
  GPU_ASSIGN_OR_RETURN(out.ca_cert_pem, CertPem(ca.get()));
  GPU_ASSIGN_OR_RETURN(out.ca_key_pem, KeyPem(ca_key.get()));
  GPU_ASSIGN_OR_RETURN(ServingPair serving, IssueServing(ca.get(), ca_key.get(), req));
  out.serving_cert_pem = std::move(serving.cert_pem);
  out.serving_key_pem = std::move(serving.key_pem);
  return out;
}
Result<ClientCertificate> IssueClientCertificate(const std::string& ca_cert_pem,
                                                 const std::string& ca_key_pem,
                                                 const std::string& common_name,
                                                 const std::vector<std::string>& organizations) {
  if (common_name.empty()) return InvalidArgumentError("client certificate: empty common name");
  BIO* cert_bio = BIO_new_mem_buf(ca_cert_pem.data(), static_cast<int>(ca_cert_pem.size()));
  UniqueX509 ca(PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr));
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(ca_key_pem.data(), static_cast<int>(ca_key_pem.size()));
  UniquePkey ca_key(PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr));
  BIO_free(key_bio);
  if (!ca || !ca_key) return OpenSslError("client certificate: read the CA");
  GPU_ASSIGN_OR_RETURN(UniquePkey key, NewEcKey());
  GPU_ASSIGN_OR_RETURN(UniqueX509 leaf, NewCertificate(key.get(), common_name, {}));
  X509_NAME* name = X509_get_subject_name(leaf.get());
  for (const std::string& o : organizations) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca.get()));
  GPU_RETURN_IF_ERROR(
      AddExtension(leaf.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  GPU_RETURN_IF_ERROR(
      AddExtension(leaf.get(), ca.get(), NID_key_usage, "critical,digitalSignature"));
  GPU_RETURN_IF_ERROR(AddExtension(leaf.get(), ca.get(), NID_ext_key_usage, "clientAuth"));
  if (X509_sign(leaf.get(), ca_key.get(), EVP_sha256()) == 0) {
    return OpenSslError("sign client certificate");
  }
  ClientCertificate out;
  GPU_ASSIGN_OR_RETURN(out.cert_pem, CertPem(leaf.get()));
  GPU_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  return out;
}

Result<ServingPair> IssueServingCertificate(const std::string& ca_cert_pem,
                                            const std::string& ca_key_pem,
                                            const SelfSignedRequest& request) {
  GPU_RETURN_IF_ERROR(CheckRequest(request));
  BIO* cert_bio = BIO_new_mem_buf(ca_cert_pem.data(), static_cast<int>(ca_cert_pem.size()));
  UniqueX509 ca(PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr));
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(ca_key_pem.data(), static_cast<int>(ca_key_pem.size()));
  UniquePkey ca_key(PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr));
  BIO_free(key_bio);
  if (!ca || !ca_key) return OpenSslError("serving certificate: read the CA");
  return IssueServing(ca.get(), ca_key.get(), request);
}

Result<TemporaryServingPair> WriteTemporaryServingPair(const SelfSignedRequest& request,
                                                       const std::string& prefix) {
  GPU_ASSIGN_OR_RETURN(SelfSignedCertificates certs, GenerateSelfSignedCertificates(request));
  std::string dir = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(dir.data()) == nullptr) {
    return InternalError("cannot create a directory for the " + prefix + " certificate");
  }
  TemporaryServingPair pair{.dir = dir,
                            .cert_file = dir + "/tls.crt",
                            .key_file = dir + "/tls.key",
                            .ca_cert_pem = std::move(certs.ca_cert_pem)};
  std::ofstream(pair.cert_file) << certs.serving_cert_pem;
  std::ofstream(pair.key_file) << certs.serving_key_pem;
  return pair;
}

}  // namespace gpu_autoscaler::net
