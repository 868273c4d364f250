#include "webhooks/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

#include "net/tls_policy.h"

namespace gpu_autoscaler::webhooks {
namespace {

// ALPN wire format: length-prefixed protocol names, in order of preference.
constexpr unsigned char kAlpnH2AndHttp11[] = "\x02h2\x08http/1.1";
constexpr unsigned char kAlpnHttp11[] = "\x08http/1.1";

int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
               const unsigned char* client, unsigned int client_len, void* arg) {
  const bool offer_h2 = arg != nullptr;
  const unsigned char* server = offer_h2 ? kAlpnH2AndHttp11 : kAlpnHttp11;
  unsigned int server_len =
      offer_h2 ? sizeof(kAlpnH2AndHttp11) - 1 : static_cast<unsigned int>(sizeof(kAlpnHttp11) - 1);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, server, server_len, client, client_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no overlap: carry on without ALPN (HTTP/1.1)
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Runs during every handshake, before the certificate is sent.
int SelectCertificate(SSL* ssl, void* arg) {
  auto pair = static_cast<CertificateSource*>(arg)->Current();
  if (!pair) return 0;
  if (SSL_use_certificate(ssl, pair->cert()) != 1 || SSL_use_PrivateKey(ssl, pair->key()) != 1) {
    return 0;
  }
  SSL_clear_chain_certs(ssl);
  for (X509* intermediate : pair->chain()) {
    if (SSL_add1_chain_cert(ssl, intermediate) != 1) return 0;
  }
  return 1;
}

}  // namespace

Status ConfigureServerTls(SSL_CTX* ctx, CertificateSource* certs, const TlsPolicy& policy) {
  if (ctx == nullptr || certs == nullptr) return InvalidArgumentError("TLS: no context or source");
  // HTTP/2 forbids TLS 1.2 ciphers without forward secrecy or AEAD (RFC 7540 9.2.2).
  if (Status s = net::ApplyServerTlsPolicy(ctx); !s.ok()) {
    ERR_clear_error();
    return s;
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_cert_cb(ctx, SelectCertificate, certs);
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, policy.offer_h2 ? ctx : nullptr);
  return Status::Ok();
}

ApplicationProtocol NegotiatedProtocol(const SSL* ssl) {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  if (len == 2 && std::memcmp(proto, "h2", 2) == 0) return ApplicationProtocol::kHttp2;
  return ApplicationProtocol::kHttp11;
}

}  // namespace gpu_autoscaler::webhooks
