#include "webhooks/cert_source.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gpu_autoscaler::webhooks {
namespace {

std::string OpenSslErrorText() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError(path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CertifiedKey::~CertifiedKey() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
  for (X509* c : chain_)
    X509_free(c);
}

Result<std::shared_ptr<const CertifiedKey>> ParseCertifiedKey(std::string_view cert_pem,
                                                              std::string_view key_pem) {
  auto pair = std::make_shared<CertifiedKey>();
  {
    BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    if (bio == nullptr) return InternalError("BIO_new_mem_buf failed");
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      if (pair->cert_ == nullptr) {
        pair->cert_ = cert;
      } else {
        pair->chain_.push_back(cert);
      }
    }
    ERR_clear_error();  // the loop ends on "no start line"
    BIO_free(bio);
  }
  if (pair->cert_ == nullptr) {
    return InvalidArgumentError("certificate: no PEM CERTIFICATE block found");
  }
  {
    BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    if (bio == nullptr) return InternalError("BIO_new_mem_buf failed");
    pair->key_ = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  if (pair->key_ == nullptr) {
    return InvalidArgumentError("private key: " + OpenSslErrorText());
  }
  if (X509_check_private_key(pair->cert_, pair->key_) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("private key does not match the certificate");
  }
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(pair->cert_), nullptr);
  if (serial != nullptr) {
    char* hex = BN_bn2hex(serial);
    if (hex != nullptr) pair->serial_hex_ = hex;
    OPENSSL_free(hex);
    BN_free(serial);
  }
  return std::shared_ptr<const CertifiedKey>(std::move(pair));
}

FileCertificateSource::FileCertificateSource(std::string cert_path, std::string key_path,
                                             Clock& clock, Clock::Duration check_interval)
    : cert_path_(std::move(cert_path)),
      key_path_(std::move(key_path)),
      clock_(clock),
      check_interval_(check_interval) {}

Result<std::unique_ptr<FileCertificateSource>> FileCertificateSource::Open(
    std::string cert_path, std::string key_path, Clock& clock, Clock::Duration check_interval) {
  std::unique_ptr<FileCertificateSource> source(
      new FileCertificateSource(std::move(cert_path), std::move(key_path), clock, check_interval));
  GPU_ASSIGN_OR_RETURN(Stamps stamps, source->StatFiles());
  std::lock_guard<std::mutex> lock(source->mu_);
  GPU_RETURN_IF_ERROR(source->Load(stamps));
  source->next_check_ = clock.Now() + check_interval;
  return source;
}

Result<FileCertificateSource::Stamps> FileCertificateSource::StatFiles() const {
  auto stamp = [](const std::string& path) -> Result<FileStamp> {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return InvalidArgumentError(path + ": " + std::strerror(errno));
    }
    FileStamp s;
    s.device = st.st_dev;
    s.inode = st.st_ino;
    s.size = static_cast<uint64_t>(st.st_size);
    s.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    return s;
  };
  GPU_ASSIGN_OR_RETURN(FileStamp cert, stamp(cert_path_));
  GPU_ASSIGN_OR_RETURN(FileStamp key, stamp(key_path_));
  return Stamps{cert, key};
}

Status FileCertificateSource::Load(const Stamps& stamps) {
  GPU_ASSIGN_OR_RETURN(std::string cert_pem, ReadWholeFile(cert_path_));
  GPU_ASSIGN_OR_RETURN(std::string key_pem, ReadWholeFile(key_path_));
  auto pair = ParseCertifiedKey(cert_pem, key_pem);
  if (!pair.ok()) return pair.error().WithContext(cert_path_ + " + " + key_path_);
  pair_ = std::move(pair).value();
  stamps_ = stamps;
  return Status::Ok();
}

std::shared_ptr<const CertifiedKey> FileCertificateSource::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::TimePoint now = clock_.Now();
  if (now < next_check_) return pair_;
  next_check_ = now + check_interval_;
  auto stamps = StatFiles();
  if (!stamps.ok()) {
    last_error_ = stamps.error();
    return pair_;
  }
  if (*stamps == stamps_) return pair_;
  Status loaded = Load(*stamps);
  if (loaded.ok()) {
    ++reloads_;
    last_error_ = Status::Ok();
  } else {
    last_error_ = loaded;  // keep serving the previous pair; retried at the next check
  }
  return pair_;
}

int64_t FileCertificateSource::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

Status FileCertificateSource::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace gpu_autoscaler::webhooks
