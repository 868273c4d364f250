// The admission server in-process on 127.0.0.1, driven over real HTTPS
// (libcurl for HTTP/2 and HTTP/1.1, raw OpenSSL for handshake checks) with
// the real AdmissionService and the recorded AdmissionReview bodies.
#include "webhooks/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <functional>
#include <map>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "webhooks/admission_service.h"
#include "webhooks/cert_source.h"
#include "webhooks/webhook_integration_client.h"

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
namespace wt = gpu_autoscaler::webhooks::testing;

constexpr char kTimeSlicingPolicy[] = R"({
  "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUSharingPolicy",
  "metadata": {"name": "share-everything", "generation": 1},
  "spec": {"priority": 10, "strategy": {"type": "timeSlicing", "timeSlicing": {"replicas": 4}}}
})";

// A hand-driven HTTP/2 client (nghttp2) on a raw TLS connection. Unlike
// libcurl it can hold a request body half sent, which is what a client that
// tries to pin server memory does.
class RawHttp2Client {
 public:
  struct Response {
    int status = 0;
    std::string body;
    bool complete = false;  // END_STREAM received
  };

  explicit RawHttp2Client(int port) : tls_(port, TLS1_2_VERSION, TLS1_3_VERSION, "\x02h2") {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_send_callback(callbacks, &Send);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrame);
    nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~RawHttp2Client() { nghttp2_session_del(session_); }
  RawHttp2Client(const RawHttp2Client&) = delete;
  RawHttp2Client& operator=(const RawHttp2Client&) = delete;

  bool connected() const { return tls_.handshake_ok() && tls_.alpn() == "h2"; }

  // POSTs `body` (its full size is the declared content-length) but sends
  // only its first `send_now` bytes until Release().
  int32_t StartPost(const std::string& path, std::string body, size_t send_now) {
    auto upload = std::make_unique<Upload>();
    upload->length = std::to_string(body.size());
    upload->body = std::move(body);
    upload->allowed = std::min(send_now, upload->body.size());
    auto nv = [](std::string_view name, std::string_view value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    nghttp2_nv headers[] = {nv(":method", "POST"),
                            nv(":scheme", "https"),
                            nv(":authority", "127.0.0.1"),
                            nv(":path", path),
                            nv("content-type", "application/json"),
                            nv("content-length", upload->length)};
    nghttp2_data_provider provider{};
    provider.source.ptr = upload.get();
    provider.read_callback = &ReadUpload;
    int32_t id =
        nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &provider, nullptr);
    uploads_[id] = std::move(upload);
    return id;
  }

  // Lets the rest of a held body go out.
  void Release(int32_t id) {
    uploads_.at(id)->allowed = uploads_.at(id)->body.size();
    nghttp2_session_resume_data(session_, id);
  }

  size_t bytes_sent(int32_t id) const { return uploads_.at(id)->offset; }
  const Response& response(int32_t id) { return responses_[id]; }
  bool complete(int32_t id) { return responses_[id].complete; }

  // Exchanges frames until `done` holds; false when it does not within 30 s
  // or the server closes the connection first.
  bool PumpUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (nghttp2_session_send(session_) != 0) return false;
      if (done()) return true;
      std::optional<std::string> in = tls_.ReadSome(50ms);
      if (!in) return done();
      if (!in->empty() &&
          nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in->data()),
                                   in->size()) < 0) {
        return false;
      }
    }
    return false;
  }

 private:
  struct Upload {
    std::string body, length;
    size_t offset = 0, allowed = 0;
  };

  static ssize_t Send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user) {
    auto* self = static_cast<RawHttp2Client*>(user);
    std::string_view bytes(reinterpret_cast<const char*>(data), length);
    if (!self->tls_.Write(bytes)) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return static_cast<ssize_t>(length);
  }
  static ssize_t ReadUpload(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                            nghttp2_data_source* source, void*) {
    auto* upload = static_cast<Upload*>(source->ptr);
    size_t n = std::min(length, upload->allowed - upload->offset);
    if (n == 0 && upload->offset < upload->body.size()) return NGHTTP2_ERR_DEFERRED;
    std::memcpy(buf, upload->body.data() + upload->offset, n);
    upload->offset += n;
    if (upload->offset == upload->body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* user) {
    auto* self = static_cast<RawHttp2Client*>(user);
    if (std::string_view(reinterpret_cast<const char*>(name), name_len) == ":status") {
      self->responses_[frame->hd.stream_id].status =
          std::stoi(std::string(reinterpret_cast<const char*>(value), value_len));
    }
    return 0;
  }
  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    static_cast<RawHttp2Client*>(user)->responses_[id].body.append(
        reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      static_cast<RawHttp2Client*>(user)->responses_[frame->hd.stream_id].complete = true;
    }
    return 0;
  }

  wt::TlsClient tls_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<Upload>> uploads_;
  std::map<int32_t, Response> responses_;
};

class AdmissionServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = wt::WriteServingCertificate(dir_, "tls.crt", "tls.key");
    auto certs = FileCertificateSource::Open(files_.cert_file, files_.key_file, clock_, 10s);
    ASSERT_TRUE(certs.ok()) << certs.error().ToString();
    certs_ = std::move(certs).value();
    auto policy = AdmissionService::ParsePolicy(kTimeSlicingPolicy);
    ASSERT_TRUE(policy.ok()) << policy.error().ToString();
    service_.SetPolicies({*policy});
  }

  static AdmissionServerOptions LoopbackOptions() {
    AdmissionServerOptions opts;
    opts.bind_address = "127.0.0.1";
    opts.port = 0;
    return opts;
  }

  void StartServer(AdmissionServerOptions opts = LoopbackOptions()) {
    if (!opts.metrics) opts.metrics = metrics_;
    auto server = AdmissionServer::Start(
        std::move(opts), certs_,
        [this](AdmissionEndpoint e, std::string_view body) { return service_.Review(e, body); });
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
    url_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }

  wt::HttpsResult Post(const std::string& path, const std::string& body,
                       long version = CURL_HTTP_VERSION_2TLS) {
    return wt::Https(url_ + path, "POST", body, files_.ca_pem, {.http_version = version});
  }
  wt::HttpsResult Get(const std::string& path, long version = CURL_HTTP_VERSION_2TLS) {
    return wt::Https(url_ + path, "GET", "", files_.ca_pem, {.http_version = version});
  }
  // The server's registry as Prometheus text: the program serves it on its
  // own metrics port, not on the admission port.
  std::string Metrics() const {
    return prometheus::TextSerializer().Serialize(metrics_->Collect());
  }

  // A good review still gets a good answer.
  void ExpectStillServing(long version) {
    auto r = Post("/mutate-pods?timeout=5s", wt::GoldenReview(2), version);
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.status, 200) << r.body;
    auto json = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << r.body;
    EXPECT_EQ(json["response"]["uid"], wt::GoldenUid(2));
  }

  wt::TempDir dir_;
  wt::ServingFiles files_;
  FakeClock clock_;
  std::shared_ptr<FileCertificateSource> certs_;
  AdmissionService service_{AdmissionConfig{}};
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<AdmissionServer> server_;
  std::string url_;
};

TEST_F(AdmissionServerTest, RecordedReviewsOverHttp2AreAnsweredWithTheirUid) {
  StartServer();
  for (int n : {1, 2}) {
    auto r = Post("/mutate-pods?timeout=5s", wt::GoldenReview(n));
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.http_version, CURL_HTTP_VERSION_2_0);
    ASSERT_EQ(r.status, 200) << r.body;
    auto json = nlohmann::json::parse(r.body);
    EXPECT_EQ(json["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(json["kind"], "AdmissionReview");
    EXPECT_EQ(json["response"]["uid"], wt::GoldenUid(n));
    EXPECT_EQ(json["response"]["allowed"], true);
  }
  // The non-dry-run pod asks for nvidia.com/gpu and the policy time-slices it.
  auto r = Post("/mutate-pods", wt::GoldenReview(2));
  auto json = nlohmann::json::parse(r.body);
  EXPECT_EQ(json["response"]["patchType"], "JSONPatch") << r.body;
  EXPECT_GE(server_->stats().http2_connections, 1);
}

// The program prints listen_address() as "listening on ...": it must be the
// socket really bound, with IPv6 in brackets so the port can be split off.
TEST_F(AdmissionServerTest, ListenAddressIsTheBoundSocket) {
  StartServer();
  EXPECT_EQ(server_->listen_address(), "127.0.0.1:" + std::to_string(server_->port()));
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);
  server_->Stop();

  AdmissionServerOptions every_interface = LoopbackOptions();
  every_interface.bind_address = "0.0.0.0";
  StartServer(every_interface);
  EXPECT_EQ(server_->listen_address(), "0.0.0.0:" + std::to_string(server_->port()));
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);  // through 127.0.0.1
  server_->Stop();

  AdmissionServerOptions v6 = LoopbackOptions();
  v6.bind_address = "::1";
  auto server = AdmissionServer::Start(v6, certs_, [this](AdmissionEndpoint e, std::string_view b) {
    return service_.Review(e, b);
  });
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback: " << server.error().ToString();
  EXPECT_EQ((*server)->listen_address(), "[::1]:" + std::to_string((*server)->port()));
}

TEST_F(AdmissionServerTest, Http11IsServedWhenTheClientDoesNotOfferH2) {
  StartServer();
  auto r = Post("/validate-pods", wt::GoldenReview(2), CURL_HTTP_VERSION_1_1);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.http_version, CURL_HTTP_VERSION_1_1);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["response"]["uid"], wt::GoldenUid(2));
}

TEST_F(AdmissionServerTest, MalformedReviewsGet400WithAReasonAndTheServerKeepsServing) {
  StartServer();
  std::string good = wt::GoldenReview(2);
  auto wrong_kind = nlohmann::json::parse(good);
  wrong_kind["kind"] = "Pod";
  auto no_uid = nlohmann::json::parse(good);
  no_uid["request"].erase("uid");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated JSON", good.substr(0, good.size() / 2)},
      {"wrong kind", wrong_kind.dump()},
      {"missing uid", no_uid.dump()},
  };
  for (long version : {CURL_HTTP_VERSION_2TLS, CURL_HTTP_VERSION_1_1}) {
    for (const auto& [name, body] : cases) {
      SCOPED_TRACE(name + (version == CURL_HTTP_VERSION_1_1 ? " over HTTP/1.1" : " over h2"));
      auto r = Post("/mutate-pods", body, version);
      ASSERT_EQ(r.error, "");
      EXPECT_EQ(r.status, 400);
      EXPECT_GT(r.body.size(), 5u) << "a 400 must say why";
      ExpectStillServing(version);
    }
  }
}

TEST_F(AdmissionServerTest, TenMebibyteBodyGets413AndTheServerKeepsServing) {
  StartServer();
  std::string huge(10 * 1024 * 1024, ' ');
  huge.front() = '{';
  huge.back() = '}';
  for (long version : {CURL_HTTP_VERSION_2TLS, CURL_HTTP_VERSION_1_1}) {
    SCOPED_TRACE(version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1" : "h2");
    auto r = Post("/mutate-pods", huge, version);
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("3145728-byte limit"), std::string::npos) << r.body;
    ExpectStillServing(version);
  }
}

TEST_F(AdmissionServerTest, RoutingErrorsNameTheProblem) {
  bool ready = false;
  auto opts = LoopbackOptions();
  opts.ready = [&ready] { return ready; };
  StartServer(opts);
  EXPECT_EQ(Get("/healthz").status, 200);
  auto not_ready = Get("/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_NE(not_ready.body.find("not ready"), std::string::npos);
  ready = true;
  EXPECT_EQ(Get("/readyz").status, 200);

  auto unknown = Get("/mutate-nodes");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("/mutate-pods"), std::string::npos) << unknown.body;
  auto get_review = Get("/mutate-pods");
  EXPECT_EQ(get_review.status, 405);
  auto wrong_type = wt::Https(url_ + "/validate-pods", "POST", wt::GoldenReview(2), files_.ca_pem,
                              {.content_type = "text/yaml"});
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_NE(wrong_type.body.find("text/yaml"), std::string::npos);
}

TEST_F(AdmissionServerTest, Tls11IsRefusedAndTls12And13AreAccepted) {
  StartServer();
  wt::TlsClient tls11(server_->port(), TLS1_1_VERSION, TLS1_1_VERSION);
  EXPECT_FALSE(tls11.handshake_ok()) << "negotiated " << tls11.version();
  wt::TlsClient tls12(server_->port(), TLS1_2_VERSION, TLS1_2_VERSION);
  EXPECT_TRUE(tls12.handshake_ok()) << tls12.error();
  EXPECT_EQ(tls12.version(), "TLSv1.2");
  wt::TlsClient tls13(server_->port(), TLS1_3_VERSION, TLS1_3_VERSION);
  EXPECT_TRUE(tls13.handshake_ok()) << tls13.error();
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);
}

TEST_F(AdmissionServerTest, RotatedCertificateIsServedOnTheNextHandshake) {
  StartServer();
  const std::string first = certs_->Current()->serial_hex();
  EXPECT_EQ(wt::ServedSerial(server_->port()), first);

  // New files (renamed into place, as kubelet does). Until the check
  // interval passes the old pair is still served.
  wt::ServingFiles second_files = wt::WriteServingCertificate(dir_, "tls.crt", "tls.key");
  EXPECT_EQ(wt::ServedSerial(server_->port()), first);
  clock_.Step(10s);
  const std::string second = wt::ServedSerial(server_->port());
  EXPECT_NE(second, first);
  EXPECT_EQ(certs_->reloads(), 1);
  // Clients that trust only the new CA now verify the server.
  files_.ca_pem = second_files.ca_pem;
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);

  // A key that does not match the certificate keeps the previous pair.
  wt::ServingFiles third = wt::WriteServingCertificate(dir_, "tls3.crt", "tls3.key");
  wt::ServingFiles fourth = wt::WriteServingCertificate(dir_, "tls4.crt", "tls4.key");
  wt::WriteFile(second_files.cert_file, gpu_autoscaler::testing::ReadFileOrDie(third.cert_file));
  wt::WriteFile(second_files.key_file, gpu_autoscaler::testing::ReadFileOrDie(fourth.key_file));
  clock_.Step(10s);
  EXPECT_EQ(wt::ServedSerial(server_->port()), second);
  EXPECT_NE(certs_->last_error().message().find("does not match"), std::string::npos)
      << certs_->last_error().ToString();
}

TEST_F(AdmissionServerTest, SlowClientsAreCutOffWithoutBlockingOthers) {
  auto opts = LoopbackOptions();
  opts.header_timeout = 300ms;
  opts.request_timeout = 600ms;
  StartServer(opts);

  // 1: TCP only, never starts TLS.
  int silent = wt::ConnectLoopback(server_->port());
  ASSERT_GE(silent, 0);
  // 2: TLS, then half a request line and headers, forever.
  wt::TlsClient slow_headers(server_->port(), TLS1_2_VERSION, TLS1_3_VERSION);
  ASSERT_TRUE(slow_headers.handshake_ok());
  ASSERT_TRUE(slow_headers.Write("POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Ty"));
  // 3: complete headers, then a fraction of the promised body.
  wt::TlsClient slow_body(server_->port(), TLS1_2_VERSION, TLS1_3_VERSION);
  ASSERT_TRUE(slow_body.handshake_ok());
  ASSERT_TRUE(
      slow_body.Write("POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 4000\r\n\r\n{\"apiVersion\":"));

  // Others are served while those connections hang.
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);
  ExpectStillServing(CURL_HTTP_VERSION_1_1);

  EXPECT_TRUE(wt::WaitForPeerClose(silent)) << "TCP-only connection was never closed";
  EXPECT_TRUE(wt::WaitForPeerClose(slow_headers.fd())) << "slow headers were never cut off";
  EXPECT_TRUE(wt::WaitForPeerClose(slow_body.fd())) << "slow body was never cut off";
  ::close(silent);
  // The socket closes as the deadline fires; the count follows on the loop.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (server_->stats().timed_out_connections < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(server_->stats().timed_out_connections, 3);
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);
}

TEST_F(AdmissionServerTest, ConnectionsBeyondTheLimitAreClosedAtAccept) {
  auto opts = LoopbackOptions();
  opts.max_connections = 3;
  opts.header_timeout = 60s;
  StartServer(opts);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(wt::ConnectLoopback(server_->port()));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (server_->stats().open_connections < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(server_->stats().open_connections, 3);
  int extra = wt::ConnectLoopback(server_->port());
  ASSERT_GE(extra, 0);
  EXPECT_TRUE(wt::WaitForPeerClose(extra));
  EXPECT_GE(server_->stats().rejected_connections, 1);
  ::close(extra);
  for (int fd : held)
    ::close(fd);
  deadline = std::chrono::steady_clock::now() + 30s;
  while (server_->stats().open_connections > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ExpectStillServing(CURL_HTTP_VERSION_2TLS);
}

TEST_F(AdmissionServerTest, Http2ConnectionCapsTheRequestBodiesItBuffersAcrossStreams) {
  auto opts = LoopbackOptions();
  opts.max_connection_body_bytes = 256 * 1024;
  StartServer(opts);
  RawHttp2Client client(server_->port());
  ASSERT_TRUE(client.connected());

  // Two 200 KiB uploads, each held after 150 KiB: the second pushes the
  // connection past 256 KiB of unfinished bodies and is refused; the first,
  // within budget, is still being received.
  const std::string junk(200 * 1024, 'x');
  int32_t first = client.StartPost("/mutate-pods", junk, 150 * 1024);
  ASSERT_TRUE(client.PumpUntil([&] { return client.bytes_sent(first) == 150 * 1024; }));
  int32_t second = client.StartPost("/mutate-pods", junk, 150 * 1024);
  ASSERT_TRUE(client.PumpUntil([&] { return client.complete(second); }));
  EXPECT_EQ(client.response(second).status, 503);
  EXPECT_THAT(client.response(second).body,
              ::testing::HasSubstr("bytes of unfinished request bodies (limit 262144)"));
  EXPECT_EQ(client.response(first).status, 0);

  // The refused stream's bytes went back to the budget: a whole review on
  // the same connection is answered.
  int32_t third = client.StartPost("/mutate-pods", wt::GoldenReview(2), SIZE_MAX);
  ASSERT_TRUE(client.PumpUntil([&] { return client.complete(third); }));
  EXPECT_EQ(client.response(third).status, 200) << client.response(third).body;
  EXPECT_EQ(nlohmann::json::parse(client.response(third).body)["response"]["uid"],
            wt::GoldenUid(2));

  // The held upload completes normally (it is not a review: 400).
  client.Release(first);
  ASSERT_TRUE(client.PumpUntil([&] { return client.complete(first); }));
  EXPECT_EQ(client.response(first).status, 400) << client.response(first).body;

  const std::string metrics = Metrics();
  EXPECT_EQ(
      wt::MetricValue(
          metrics,
          R"(gpu_autoscaler_webhook_rejected_requests_total{reason="connection_buffer_full"})"),
      1)
      << metrics;
}

TEST_F(AdmissionServerTest, MetricsCountVerdictsAndLatencyPerEndpoint) {
  StartServer();
  const std::string patched =
      R"(gpu_autoscaler_webhook_reviews_total{endpoint="mutate-pods",verdict="patched"})";
  const std::string bad =
      R"(gpu_autoscaler_webhook_reviews_total{endpoint="mutate-pods",verdict="bad_request"})";
  const std::string latency_count =
      R"(gpu_autoscaler_webhook_review_duration_seconds_count{endpoint="mutate-pods"})";
  const std::string before = Metrics();
  EXPECT_EQ(wt::MetricValue(before, patched), 0) << before;

  ASSERT_EQ(Post("/mutate-pods", wt::GoldenReview(2)).status, 200);
  ASSERT_EQ(Post("/mutate-pods", wt::GoldenReview(2)).status, 200);
  ASSERT_EQ(Post("/mutate-pods", "{").status, 400);

  const std::string after = Metrics();
  EXPECT_EQ(wt::MetricValue(after, patched), 2) << after;
  EXPECT_EQ(wt::MetricValue(after, bad), 1);
  EXPECT_EQ(wt::MetricValue(after, latency_count), 3);
}

// The admission port serves admission and probes only: /metrics is on the
// program's own port, where each scrape is authorised.
TEST_F(AdmissionServerTest, AdmissionPortDoesNotServeMetrics) {
  StartServer();
  for (long version : {CURL_HTTP_VERSION_2TLS, CURL_HTTP_VERSION_1_1}) {
    auto r = Get("/metrics", version);
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(r.body.find("# TYPE"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Get("/healthz").status, 200);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
