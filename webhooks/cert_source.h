// File: webhooks/cert_source.h
//
// Where the admission server's serving certificate comes from. The TLS layer
// asks `Current()` on every handshake, so a rotated certificate is served by
// the next new connection without a restart; connections already open keep
// the certificate they negotiated.
//
//   GPU_ASSIGN_OR_RETURN(auto certs, FileCertificateSource::Open("tls.crt", "tls.key",
//                                                                RealClock::Instance()));
//   auto pair = certs->Current();   // never null once Open() succeeded
//   pair->serial_hex                // "3F0A..." of the leaf certificate
//
// FileCertificateSource re-stats both files at most once per `check_interval`
// (an injected Clock decides when) and reloads when the inode, size or mtime
// of either changed (kubelet swaps Secret volumes through a symlink, so the
// inode changes; `cp` over the file changes mtime). A reload that fails (a
// half-written pair, a key that does not match) keeps serving the previous
// pair and is retried at the next check.
//
// Thread-safety: Current() and the accessors are safe from any thread.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::webhooks {

// A leaf certificate, its intermediate chain and the matching private key.
class CertifiedKey {
 public:
  CertifiedKey() = default;
  ~CertifiedKey();
  CertifiedKey(const CertifiedKey&) = delete;
  CertifiedKey& operator=(const CertifiedKey&) = delete;

  X509* cert() const { return cert_; }
  EVP_PKEY* key() const { return key_; }
  // Certificates after the leaf in the PEM file, in order.
  const std::vector<X509*>& chain() const { return chain_; }
  // Upper-case hex of the leaf's serial number.
  const std::string& serial_hex() const { return serial_hex_; }

 private:
  friend Result<std::shared_ptr<const CertifiedKey>> ParseCertifiedKey(std::string_view,
                                                                       std::string_view);
  X509* cert_ = nullptr;
  EVP_PKEY* key_ = nullptr;
  std::vector<X509*> chain_;
  std::string serial_hex_;
};

// Parses a PEM certificate chain (leaf first) and a PEM private key, and
// checks that the key belongs to the leaf.
Result<std::shared_ptr<const CertifiedKey>> ParseCertifiedKey(std::string_view cert_pem,
                                                              std::string_view key_pem);

class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  // The pair to present on a new handshake.
  virtual std::shared_ptr<const CertifiedKey> Current() = 0;
};

// A fixed pair (the --self-signed mode keeps its generated pair in memory).
class StaticCertificateSource final : public CertificateSource {
 public:
  explicit StaticCertificateSource(std::shared_ptr<const CertifiedKey> pair)
      : pair_(std::move(pair)) {}
  std::shared_ptr<const CertifiedKey> Current() override { return pair_; }

 private:
  const std::shared_ptr<const CertifiedKey> pair_;
};

// A pair replaced at run time (the --self-signed-secret mode sets what the
// shared Secret holds).
class MemoryCertificateSource final : public CertificateSource {
 public:
  explicit MemoryCertificateSource(std::shared_ptr<const CertifiedKey> pair)
      : pair_(std::move(pair)) {}
  std::shared_ptr<const CertifiedKey> Current() override {
    std::lock_guard<std::mutex> lock(mu_);
    return pair_;
  }
  void Set(std::shared_ptr<const CertifiedKey> pair) {
    std::lock_guard<std::mutex> lock(mu_);
    pair_ = std::move(pair);
  }

 private:
  std::mutex mu_;
  std::shared_ptr<const CertifiedKey> pair_;  // guarded by mu_
};

class FileCertificateSource final : public CertificateSource {
 public:
  // Loads the pair once; an error when the files are missing or do not match.
  static Result<std::unique_ptr<FileCertificateSource>> Open(
      std::string cert_path, std::string key_path, Clock& clock,
      Clock::Duration check_interval = std::chrono::seconds(1));

  std::shared_ptr<const CertifiedKey> Current() override;

  // Number of successful reloads after the initial load.
  int64_t reloads() const;
  // The error of the most recent failed reload attempt, OK if none failed
  // since the last successful load.
  Status last_error() const;

 private:
  struct FileStamp {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct Stamps {
    FileStamp cert, key;
    bool operator==(const Stamps&) const = default;
  };

  FileCertificateSource(std::string cert_path, std::string key_path, Clock& clock,
                        Clock::Duration check_interval);
  Status Load(const Stamps& stamps);  // mu_ held
  Result<Stamps> StatFiles() const;

  const std::string cert_path_;
  const std::string key_path_;
  Clock& clock_;
  const Clock::Duration check_interval_;

  mutable std::mutex mu_;
  std::shared_ptr<const CertifiedKey> pair_;  // guarded by mu_
  Stamps stamps_;                             // guarded by mu_
  Clock::TimePoint next_check_;               // guarded by mu_
  int64_t reloads_ = 0;                       // guarded by mu_
  Status last_error_;                         // guarded by mu_
};

}  // namespace gpu_autoscaler::webhooks
