// File: src/net/tls_policy.h
//
// The one TLS policy every gpu-autoscaler server applies (the embedded HTTP
// server, the admission webhook, the scheduler extender, metrics): TLS 1.2 at
// least; for TLS 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM or
// ChaCha20-Poly1305: what HTTP/2, RFC 7540 9.2.2, and Mozilla's "intermediate"
// profile allow); TLS 1.3 keeps OpenSSL's suites, all of which are AEAD; no
// compression, no renegotiation, the server's cipher preference.
//
//   GPU_RETURN_IF_ERROR(ApplyServerTlsPolicy(ctx));
//
// Thread-safety: call on a context before it serves connections.
#pragma once

#include <openssl/ssl.h>

#include "common/status.h"

namespace gpu_autoscaler::net {

inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

inline Status ApplyServerTlsPolicy(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return InternalError("TLS: cannot set the minimum version to TLS 1.2");
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return InternalError("TLS: cannot set the TLS 1.2 cipher list");
  }
  return Status::Ok();
}

}  // namespace gpu_autoscaler::net
