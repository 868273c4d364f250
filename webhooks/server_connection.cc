// One admission connection: HTTP/1.1 (Beast) or HTTP/2 (an nghttp2 server
// session fed by hand) over an OpenSSL stream, depending on what ALPN chose,
// with the header, request and idle timeouts and the body limits of
// AdmissionServerOptions (server.h).
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "webhooks/server_core.h"
#include "webhooks/tls_context.h"

namespace gpu_autoscaler::webhooks::server_internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = ssl::stream<beast::tcp_stream>;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16 * 1024;
constexpr uint64_t kBodyReserveCap = 64 * 1024;
constexpr auto kCloseGrace = std::chrono::seconds(2);

std::string_view ToStd(beast::string_view s) {
  return {s.data(), s.size()};
}

// One TLS connection. Lives on exactly one single-threaded io_context, so
// its handlers never run concurrently and need no locks.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& core, tcp::socket socket)
      : core_(core),
        options_(core.options()),
        stream_(beast::tcp_stream(std::move(socket)), core.ssl_context()),
        timer_(stream_.get_executor()) {}

  ~Connection() {
    if (h2_ != nullptr) nghttp2_session_del(h2_);
    core_.CloseConnection();
  }

  void Start() {
    beast::get_lowest_layer(stream_).expires_after(options_.header_timeout);
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

 private:
  void OnHandshake(beast::error_code ec) {
    if (ec) return Abort(ec);
    ApplicationProtocol protocol = NegotiatedProtocol(stream_.native_handle());
    core_.CountProtocol(protocol);
    if (protocol == ApplicationProtocol::kHttp2) return StartHttp2();
    ReadHttp1Request(/*first=*/true);
  }

  // A failed read or write: the peer left, or a deadline closed the socket.
  void Abort(beast::error_code ec) {
    if (ec == beast::error::timeout) core_.CountTimeout();
    closed_ = true;
    timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

  // ---------------------------------------------------------------- HTTP/1.1

  void ReadHttp1Request(bool first) {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    // Beast would fail the header read for a large Content-Length; let it
    // through so the client gets a 413 naming the size (the limit is set
    // before the body is read).
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    if (!first && buffer_.size() == 0) {
      // Keep-alive: wait up to idle_timeout for the next request to begin.
      beast::get_lowest_layer(stream_).expires_after(options_.idle_timeout);
      stream_.async_read_some(buffer_.prepare(kReadChunk),
                              [self = shared_from_this()](beast::error_code ec, size_t n) {
                                if (ec) return self->Abort(ec);
                                self->buffer_.commit(n);
                                self->ReadHttp1Header();
                              });
      return;
    }
    ReadHttp1Header();
  }

  void ReadHttp1Header() {
    request_start_ = SteadyClock::now();
    beast::get_lowest_layer(stream_).expires_after(options_.header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHttp1Header(ec); });
  }

  void OnHttp1Header(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      return WriteHttp1(TextReply(431, "request headers exceed " +
                                           std::to_string(options_.max_header_bytes) + " bytes"),
                        /*close=*/true, /*drain=*/false);
    }
    if (ec) return Abort(ec);
    auto length = parser_->content_length();
    if (length && *length > options_.max_body_bytes) {
      return WriteHttp1(TooLarge(*length), /*close=*/true, /*drain=*/true);
    }
    parser_->body_limit(options_.max_body_bytes);  // chunked bodies
    if (parser_->is_done()) return DispatchHttp1();
    auto expect = parser_->get().find(http::field::expect);
    if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue")) {
      // curl asks before sending large bodies; answer rather than make it wait.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::get_lowest_layer(stream_).expires_after(options_.request_timeout);
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Abort(ec);
                          self->ReadHttp1Body();
                        });
      return;
    }
    ReadHttp1Body();
  }

  void ReadHttp1Body() {
    auto left = options_.request_timeout - (SteadyClock::now() - request_start_);
    beast::get_lowest_layer(stream_).expires_after(
        std::max<SteadyClock::duration>(left, std::chrono::milliseconds(1)));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec == http::error::body_limit) {
                         return self->WriteHttp1(self->TooLarge(0), true, true);
                       }
                       if (ec) return self->Abort(ec);
                       self->DispatchHttp1();
                     });
  }

  Reply TooLarge(uint64_t declared) {
    std::string reason = "request body ";
    if (declared > 0) reason += "of " + std::to_string(declared) + " bytes ";
    reason += "exceeds the " + std::to_string(options_.max_body_bytes) + "-byte limit";
    return core_.Reject(Rejection::kBodyTooLarge, 413, std::move(reason));
  }

  void DispatchHttp1() {
    auto& req = parser_->get();
    auto type = req.find(http::field::content_type);
    Reply reply =
        core_.Handle(ToStd(req.method_string()), ToStd(req.target()),
                     type == req.end() ? std::string_view() : ToStd(type->value()), req.body());
    WriteHttp1(std::move(reply), !req.keep_alive(), /*drain=*/false);
  }

  void WriteHttp1(Reply reply, bool close, bool drain) {
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    response_.emplace(static_cast<http::status>(reply.status), version);
    response_->set(http::field::content_type,
                   beast::string_view(reply.content_type.data(), reply.content_type.size()));
    response_->body() = std::move(reply.body);
    response_->keep_alive(!close);
    response_->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(options_.request_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), close, drain](beast::error_code ec, size_t) {
                        if (ec) return self->Abort(ec);
                        self->response_.reset();
                        if (drain) return self->DrainThenClose();
                        if (close) return self->ShutdownTls();
                        self->parser_.reset();
                        self->ReadHttp1Request(/*first=*/false);
                      });
  }

  // After an early 413 the client may still be sending: read and discard for
  // a moment so the kernel does not reset the connection (and the reply)
  // under the client's feet.
  void DrainThenClose() {
    drain_buffer_.resize(kReadChunk);
    beast::get_lowest_layer(stream_).expires_after(kCloseGrace);
    DrainSome();
  }
  void DrainSome() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Abort({});
                              self->DrainSome();
                            });
  }

  void ShutdownTls() {
    beast::get_lowest_layer(stream_).expires_after(kCloseGrace);
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Abort({}); });
  }

  // ------------------------------------------------------------------ HTTP/2

  struct H2Stream {
    std::string method, path, content_type;
    std::string body;
    uint64_t declared_length = 0;
    SteadyClock::time_point started;
    bool responded = false;
    // Answered before the request was complete (413, 408): the rest of the
    // upload is discarded, within limits.
    bool early = false;
    bool reset_sent = false;
    uint64_t discarded = 0;
    SteadyClock::time_point responded_at;
    std::string response_body;
    size_t response_offset = 0;
  };

  void StartHttp2() {
    beast::get_lowest_layer(stream_).expires_never();
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
    int rv = nghttp2_session_server_new(&h2_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) return Abort({});
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(options_.max_header_bytes)}};
    nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(h2_, NGHTTP2_FLAG_NONE, 0, 4 << 20);
    read_buffer_.resize(kReadChunk);
    h2_started_ = last_activity_ = SteadyClock::now();
    ArmH2Timer();
    FlushHttp2();
    ReadHttp2();
  }

  void ReadHttp2() {
    stream_.async_read_some(
        asio::buffer(read_buffer_),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnHttp2Read(ec, n); });
  }

  void OnHttp2Read(beast::error_code ec, size_t n) {
    if (closed_) return;
    if (ec) return Abort(ec);
    last_activity_ = SteadyClock::now();
    ssize_t used = nghttp2_session_mem_recv(h2_, read_buffer_.data(), n);
    if (used < 0) return Abort({});  // protocol error; nghttp2 has queued GOAWAY
    FlushHttp2();
    if (closed_) return;
    if (nghttp2_session_want_read(h2_) == 0 && nghttp2_session_want_write(h2_) == 0) {
      return Abort({});
    }
    ReadHttp2();
  }

  // Serialises everything nghttp2 has queued and writes it; one write at a time.
  void FlushHttp2() {
    if (writing_ || closed_) return;
    write_buffer_.clear();
    while (write_buffer_.size() < 64 * 1024) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(h2_, &data);
      if (n < 0) return Abort({});
      if (n == 0) break;
      write_buffer_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (write_buffer_.empty()) {
      if (nghttp2_session_want_read(h2_) == 0 && nghttp2_session_want_write(h2_) == 0) Abort({});
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(write_buffer_),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) return self->Abort(ec);
                        self->FlushHttp2();
                      });
  }

  // Checks request deadlines and idleness a few times per shortest timeout.
  void ArmH2Timer() {
    auto shortest =
        std::min({options_.header_timeout, options_.request_timeout, options_.idle_timeout});
    auto tick = std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10),
                                                      std::chrono::milliseconds(1000));
    timer_.expires_after(tick);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->OnH2Tick();
    });
  }

  void OnH2Tick() {
    auto now = SteadyClock::now();
    bool expired_any = false;
    for (auto& [id, stream] : h2_streams_) {
      if (stream->responded) {
        // An early answer's upload gets request_timeout to finish.
        if (stream->early && now - stream->responded_at >= options_.request_timeout) {
          ResetStream(id, *stream);
          expired_any = true;
        }
        continue;
      }
      if (now - stream->started < options_.request_timeout) continue;
      expired_any = true;
      core_.CountTimeout();
      RespondHttp2(id, *stream,
                   core_.Reject(Rejection::kTimeout, 408,
                                "request not received within " +
                                    std::to_string(options_.request_timeout.count()) + " ms"),
                   /*early=*/true);
    }
    bool never_spoke = !h2_saw_stream_ && now - h2_started_ >= options_.header_timeout;
    bool idle = h2_streams_.empty() && now - last_activity_ >= options_.idle_timeout;
    if (never_spoke || idle) {
      if (never_spoke) core_.CountTimeout();
      nghttp2_session_terminate_session(h2_, NGHTTP2_NO_ERROR);
      h2_closing_ = true;
    }
    if (expired_any || h2_closing_) FlushHttp2();
    if (closed_) return;
    if (h2_closing_ && !writing_) return Abort({});
    ArmH2Timer();
  }

  void RespondHttp2(int32_t stream_id, H2Stream& stream, Reply reply, bool early) {
    stream.responded = true;
    stream.early = early;
    stream.responded_at = SteadyClock::now();
    stream.response_body = std::move(reply.body);
    std::string status = std::to_string(reply.status);
    std::string length = std::to_string(stream.response_body.size());
    auto nv = [](std::string_view name, std::string_view value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    nghttp2_nv headers[] = {nv(":status", status), nv("content-type", reply.content_type),
                            nv("content-length", length)};
    nghttp2_data_provider provider{};
    provider.source.ptr = &stream;
    provider.read_callback = &ReadResponseBody;
    nghttp2_submit_response(h2_, stream_id, headers, std::size(headers),
                            stream.response_body.empty() ? nullptr : &provider);
  }

  // RST_STREAM(NO_ERROR): "stop sending, the response is complete" (RFC 9113 8.1).
  void ResetStream(int32_t stream_id, H2Stream& stream) {
    if (stream.reset_sent) return;
    stream.reset_sent = true;
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
  }

  H2Stream* FindStream(int32_t id) {
    auto it = h2_streams_.find(id);
    return it == h2_streams_.end() ? nullptr : it->second.get();
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto stream = std::make_unique<H2Stream>();
    stream->started = SteadyClock::now();
    self->h2_saw_stream_ = true;
    self->h2_streams_[frame->hd.stream_id] = std::move(stream);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* user) {
    auto* self = static_cast<Connection*>(user);
    H2Stream* stream = self->FindStream(frame->hd.stream_id);
    if (stream == nullptr) return 0;
    std::string_view key(reinterpret_cast<const char*>(name), name_len);
    std::string_view val(reinterpret_cast<const char*>(value), value_len);
    if (key == ":method") {
      stream->method = val;
    } else if (key == ":path") {
      stream->path = val;
    } else if (key == "content-type") {
      stream->content_type = val;
    } else if (key == "content-length") {
      stream->declared_length = std::strtoull(std::string(val).c_str(), nullptr, 10);
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user) {
    auto* self = static_cast<Connection*>(user);
    H2Stream* stream = self->FindStream(stream_id);
    if (stream == nullptr) return 0;
    if (stream->responded) {
      // Answered early. Clients may finish the upload (curl insists), but
      // not forever: past four times the limit the stream is reset.
      stream->discarded += len;
      if (stream->discarded > 4 * self->options_.max_body_bytes)
        self->ResetStream(stream_id, *stream);
      return 0;
    }
    if (stream->body.size() + len > self->options_.max_body_bytes) {
      self->RespondHttp2(stream_id, *stream, self->TooLarge(0), /*early=*/true);
      self->ReleaseBody(*stream);
      return 0;
    }
    if (self->h2_buffered_bytes_ + len > self->options_.max_connection_body_bytes) {
      self->RespondHttp2(stream_id, *stream, self->ConnectionBufferFull(), /*early=*/true);
      self->ReleaseBody(*stream);
      return 0;
    }
    stream->body.append(reinterpret_cast<const char*>(data), len);
    self->h2_buffered_bytes_ += len;
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    int32_t id = frame->hd.stream_id;
    H2Stream* stream = self->FindStream(id);
    if (stream == nullptr || stream->responded) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS &&
        stream->declared_length > self->options_.max_body_bytes) {
      self->RespondHttp2(id, *stream, self->TooLarge(stream->declared_length), true);
      return 0;
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      // A declared length is only a hint: reserving it outright would let a
      // client pin max_body_bytes per stream without sending a byte.
      if (frame->hd.type == NGHTTP2_HEADERS)
        stream->body.reserve(std::min<uint64_t>(stream->declared_length, kBodyReserveCap));
      return 0;
    }
    Reply reply =
        self->core_.Handle(stream->method, stream->path, stream->content_type, stream->body);
    self->ReleaseBody(*stream);
    self->RespondHttp2(id, *stream, std::move(reply), /*early=*/false);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (H2Stream* stream = self->FindStream(stream_id)) self->ReleaseBody(*stream);
    self->h2_streams_.erase(stream_id);
    return 0;
  }

  // Frees a stream's request body and returns its bytes to the connection's budget.
  void ReleaseBody(H2Stream& stream) {
    h2_buffered_bytes_ -= std::min(h2_buffered_bytes_, stream.body.size());
    std::string().swap(stream.body);
  }

  Reply ConnectionBufferFull() {
    return core_.Reject(Rejection::kConnectionBufferFull, 503,
                        "this connection is already receiving " +
                            std::to_string(h2_buffered_bytes_) +
                            " bytes of unfinished request bodies (limit " +
                            std::to_string(options_.max_connection_body_bytes) +
                            "); retry the request, or on another connection");
  }

  static ssize_t ReadResponseBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                  uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* stream = static_cast<H2Stream*>(source->ptr);
    size_t n = std::min(length, stream->response_body.size() - stream->response_offset);
    std::memcpy(buf, stream->response_body.data() + stream->response_offset, n);
    stream->response_offset += n;
    if (stream->response_offset == stream->response_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  ServerCore& core_;
  const AdmissionServerOptions& options_;
  TlsStream stream_;
  asio::steady_timer timer_;
  bool closed_ = false;

  // HTTP/1.1
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::vector<char> drain_buffer_;
  SteadyClock::time_point request_start_;

  // HTTP/2
  nghttp2_session* h2_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<H2Stream>> h2_streams_;
  std::vector<uint8_t> read_buffer_;
  std::string write_buffer_;
  bool writing_ = false;
  bool h2_saw_stream_ = false;
  bool h2_closing_ = false;
  size_t h2_buffered_bytes_ = 0;  // sum of h2_streams_[*].body.size()
  SteadyClock::time_point h2_started_, last_activity_;
};

}  // namespace

void ServeConnection(ServerCore& core, tcp::socket socket) {
  auto executor = socket.get_executor();
  auto connection = std::make_shared<Connection>(core, std::move(socket));
  asio::post(executor, [connection] { connection->Start(); });
}

}  // namespace gpu_autoscaler::webhooks::server_internal
