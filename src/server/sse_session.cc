// The Server-Sent Events session (docs/events.md, "Streams"): GET /v1/workspaces/{ws}/events,
// handed over by the HTTP session once the route, the token and the workspace were checked.
// It subscribes its inbox to the hub, waits until the state it starts from is durable, then
// answers `200 text/event-stream` with that state as the first `event: balance` record and
// streams whatever the hub pushes, with a keep-alive comment every --sse-keepalive-ms. The body
// ends with the connection (no Content-Length, Connection: close): a stream that is ended (the
// subscriber fell behind, the token was revoked, the server stops) is simply closed, and
// EventSource reconnects by itself.
//
// Shape as the HTTP session: do_x starts an operation, on_x handles its end, every wait has a
// timer (the durable wait: --reply-deadline-ms; each write: --idle-timeout-ms; the keep-alive
// period is itself a timer). At most one write is outstanding: records arriving meanwhile are
// appended to next_, which is bounded by --max-stream-queued-bytes like the inbox.

#include "server/server_impl.h"

#include <boost/asio/write.hpp>
#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include <unistd.h>

namespace genledger::server {

namespace {

// One record: `event: <name>\nid: <rev>\ndata: <json>\n\n` (the JSON encoders write no newline).
void AppendRecord(std::string& out, const StreamFrame& f) {
  out += "event: ";
  out += f.event;
  out += "\nid: ";
  AppendU64(out, f.id);
  out += "\ndata: ";
  out += f.json;
  out += "\n\n";
}

class SseSession final : public SessionBase, public std::enable_shared_from_this<SseSession> {
 public:
  SseSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, std::string authorization,
             std::string workspace, unsigned version, std::string cors_origin)
      : socket_(std::move(socket)), srv_(srv), idx_(idx), authorization_(std::move(authorization)),
        workspace_(std::move(workspace)), version_(version), cors_origin_(std::move(cors_origin)) {}

  ~SseSession() override {
    if (inbox_) srv_.hub.UnsubscribeAll(inbox_);
    if (parked_) srv_.parked.fetch_sub(1);
    srv_.registry[idx_].erase(this);
    srv_.metrics->ConnectionClosed();
  }

  void Run() {
    srv_.registry[idx_].insert(this);
    inbox_ = std::make_shared<StreamInbox>(
        srv_.opt.max_stream_queued_bytes, [weak = weak_from_this(), ex = socket_.get_executor()] {
          net::post(ex, [weak] {
            if (auto self = weak.lock()) self->OnStreamFrames();
          });
        });
    EventHub::Start start;
    if (WireError e = srv_.hub.Subscribe(inbox_, workspace_, &start); !e.ok()) return Fail(e);
    AppendRecord(first_, start.first);
    // The ticket after the read: the first record goes out only once the state it shows is
    // durable (later records come from the hub, which waits for the same).
    ticket_ = srv_.durability != nullptr ? srv_.durability->Ticket() : 0;
    if (ticket_ != 0 && !srv_.durability->IsDurable(ticket_)) return DoAwaitDurable();
    Begin();
  }

  std::shared_ptr<SessionBase> Lock() override { return weak_from_this().lock(); }

  // Server stop: what is queued is written, then the stream ends.
  void Shutdown() override {
    stopping_ = true;
    if (begun_) End();
  }

  void OnAuthReload() override {
    if (srv_.auth->Check(authorization_) < Role::kRead) Close();   // revoked: not one more record
  }

  void OnDurable() override {
    registered_ = false;
    if (!parked_) return;
    if (!srv_.durability->IsDurable(ticket_) && srv_.durability->status().ok()) return DoAwaitDurable();
    OnDurableDone(/*deadline=*/false);
  }

  void OnStreamFrames() override {
    if (closed_) return;
    frames_.clear();
    if (!inbox_->Take(frames_)) return Close();   // fell behind: the stream ends, the client reconnects
    std::string records;
    for (const StreamFrame& f : frames_) AppendRecord(records, f);
    Append(records);
  }

 private:
  // --- The wait for the first state to be durable.
  void DoAwaitDurable() {
    if (!parked_) {
      parked_ = true;
      srv_.parked.fetch_add(1);
      work_.emplace(net::make_work_guard(socket_.get_executor()));
      deadline_timer_.expires_after(Ms(srv_.opt.reply_deadline_ms));
      deadline_timer_.async_wait([weak = weak_from_this()](error_code ec) {
        if (auto self = weak.lock(); self && !ec) self->OnDurableDone(/*deadline=*/true);
      });
    }
    if (registered_) return srv_.durability->RequestDurable(ticket_);
    registered_ = true;
    srv_.AwaitDurable(idx_, shared_from_this(), ticket_);
  }

  void OnDurableDone(bool deadline) {
    if (!parked_) return;
    parked_ = false;
    srv_.parked.fetch_sub(1);
    work_.reset();
    if (!deadline) deadline_timer_.cancel();
    if (!srv_.durability->IsDurable(ticket_)) {
      Status st = srv_.durability->status();
      return Fail(WireError::Make(503, "unavailable", st.ok() ? kDeadlineMessage : std::string(st.message())));
    }
    Begin();
  }

  // --- The stream.
  void Begin() {
    begun_ = true;
    std::string head = version_ == 10 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n";
    head +=
        "Server: genledger\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n";
    if (!cors_origin_.empty()) head += "Access-Control-Allow-Origin: " + cors_origin_ + "\r\nVary: Origin\r\n";
    head += "\r\n";
    head += first_;
    first_.clear();
    head += next_;   // records that arrived during the durable wait (all newer)
    next_ = std::move(head);
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    DoWrite();
    DoReadPeer();
    DoKeepAlive();
    if (stopping_) End();
  }

  // Queues `records` behind what is being written; more than the bound waiting ends the stream.
  void Append(std::string_view records) {
    if (closed_ || ending_ || records.empty()) return;
    if (writing_.size() + next_.size() + records.size() > srv_.opt.max_stream_queued_bytes) return Close();
    next_ += records;
    if (begun_ && writing_.empty()) DoWrite();
  }

  void DoWrite() {
    if (closed_ || next_.empty()) return;
    writing_.swap(next_);
    write_timer_.expires_after(Ms(srv_.opt.idle_timeout_ms));
    write_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->Close();   // the peer stopped reading
    });
    net::async_write(socket_, net::buffer(writing_),
                     beast::bind_front_handler(&SseSession::OnWrite, shared_from_this()));
  }

  void OnWrite(error_code ec, size_t) {
    write_timer_.cancel();
    writing_.clear();
    if (ec) return Close();
    if (!next_.empty()) return DoWrite();
    if (ending_) Close();
  }

  // The client sends nothing after its request; reading only notices that it went away.
  void DoReadPeer() {
    socket_.async_read_some(net::buffer(peer_buf_),
                            beast::bind_front_handler(&SseSession::OnReadPeer, shared_from_this()));
  }
  void OnReadPeer(error_code ec, size_t) {
    if (ec) return Close();
    DoReadPeer();
  }

  void DoKeepAlive() {
    keepalive_timer_.expires_after(Ms(std::max<uint64_t>(1, srv_.opt.sse_keepalive_ms)));
    keepalive_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->OnKeepAlive();
    });
  }
  void OnKeepAlive() {
    if (closed_ || ending_) return;
    Append(": keep-alive\n\n");
    DoKeepAlive();
  }

  // Ends the stream after what is queued (server stop).
  void End() {
    if (ending_ || closed_) return;
    ending_ = true;
    keepalive_timer_.cancel();
    srv_.hub.UnsubscribeAll(inbox_);
    if (writing_.empty() && next_.empty()) Close();
  }

  // Ends the stream now.
  void Close() {
    if (closed_) return;
    closed_ = true;
    if (inbox_) srv_.hub.UnsubscribeAll(inbox_);
    keepalive_timer_.cancel();
    write_timer_.cancel();
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // Before the stream began: a plain HTTP error answer, then the connection closes.
  void Fail(const WireError& e) {
    std::string body = ErrorBody(e);
    std::string res = version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    res += std::to_string(e.http);
    res += ' ';
    res += std::string(http::obsolete_reason(http::status(unsigned(e.http))));
    res += "\r\nServer: genledger\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ";
    res += std::to_string(body.size());
    res += "\r\n\r\n";
    res += body;
    srv_.hub.UnsubscribeAll(inbox_);
    begun_ = true;
    ending_ = true;
    next_ = std::move(res);
    DoWrite();
  }

  tcp::socket socket_;
  Server::Impl& srv_;
  size_t idx_;
  std::string authorization_;
  std::string workspace_;
  unsigned version_;
  std::string cors_origin_;   // an --allow-origin origin the stream answers to, or empty
  std::shared_ptr<StreamInbox> inbox_;
  std::vector<StreamFrame> frames_;   // OnStreamFrames' buffer, capacity reused
  std::string first_;                 // the first record, until the stream begins
  std::string writing_, next_;        // the write in flight; what follows it
  std::array<char, 512> peer_buf_{};
  uint64_t ticket_ = 0;
  bool parked_ = false;       // waiting for the first state to be durable
  bool registered_ = false;   // in durable_waiters
  bool begun_ = false;        // the response head was queued
  bool ending_ = false;       // close after the queued bytes
  bool closed_ = false;
  bool stopping_ = false;
  net::steady_timer deadline_timer_{socket_.get_executor()};
  net::steady_timer write_timer_{socket_.get_executor()};
  net::steady_timer keepalive_timer_{socket_.get_executor()};
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
};

}  // namespace

void StartSseSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, std::string authorization,
                     std::string workspace, unsigned http_version, std::string cors_origin) {
  const size_t to = srv.StreamCtx(idx);
  if (to == idx) {
    auto s = std::make_shared<SseSession>(std::move(socket), srv, idx, std::move(authorization),
                                          std::move(workspace), http_version, std::move(cors_origin));
    return s->Run();
  }
  // The descriptor moves to the stream thread's context; the socket object is made there, so
  // that context's reactor registers it on its own thread. The HTTP session had no operation
  // pending on it (it hands over from its read handler).
  error_code ec;
  const tcp protocol = socket.local_endpoint(ec).protocol();
  const tcp::socket::native_handle_type fd = ec ? -1 : socket.release(ec);
  if (ec) {
    srv.metrics->ConnectionClosed();
    return;   // the peer is gone already (or release failed and ~socket closes it)
  }
  // Closes the descriptor when the post never runs (the context stopped first).
  struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  };
  net::post(*srv.ctxs[to], [&srv, to, protocol, fd = Fd(fd), authorization = std::move(authorization),
                            workspace = std::move(workspace), http_version,
                            cors_origin = std::move(cors_origin)]() mutable {
    error_code ec2;
    tcp::socket moved(*srv.ctxs[to]);
    moved.assign(protocol, fd.fd, ec2);
    if (ec2) {
      srv.metrics->ConnectionClosed();
      return;   // ~Fd closes it
    }
    fd.fd = -1;
    auto s = std::make_shared<SseSession>(std::move(moved), srv, to, std::move(authorization), std::move(workspace),
                                          http_version, std::move(cors_origin));
    s->Run();
    if (srv.stopping) s->Shutdown();   // Stop() already went through this context's sessions
  });
}

}  // namespace genledger::server
