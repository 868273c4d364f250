// File: webhooks/tls_context.h
//
// The admission server's TLS policy, applied to an OpenSSL SSL_CTX: TLS 1.2
// and newer only, ALPN offering "h2" then "http/1.1" (a client without ALPN,
// or with no overlap, gets HTTP/1.1), and the certificate chosen per
// handshake from a CertificateSource, which is what makes rotation work
// without a restart.
//
//   boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
//   GPU_RETURN_IF_ERROR(ConfigureServerTls(ctx.native_handle(), certs.get(), {}));
//   ... after the handshake:
//   if (NegotiatedProtocol(ssl) == ApplicationProtocol::kHttp2) ...
//
// Thread-safety: configure before serving; the callbacks it installs are
// safe on many threads (CertificateSource::Current() is).
#pragma once

#include <openssl/types.h>

#include "common/status.h"
#include "webhooks/cert_source.h"

namespace gpu_autoscaler::webhooks {

struct TlsPolicy {
  bool offer_h2 = true;
};

enum class ApplicationProtocol { kHttp11, kHttp2 };

// `certs` must outlive `ctx`.
Status ConfigureServerTls(SSL_CTX* ctx, CertificateSource* certs, const TlsPolicy& policy);

// The protocol ALPN selected on an established connection.
ApplicationProtocol NegotiatedProtocol(const SSL* ssl);

}  // namespace gpu_autoscaler::webhooks
