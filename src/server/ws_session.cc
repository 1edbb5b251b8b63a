// The WebSocket session: frames in, ops through Api::HandleFrame, replies out in frame order
// through CoalescingStream, each held until what it observed is durable (see listener.cc for
// the threading model). The only translation unit that includes <boost/beast/websocket.hpp>.
//
// Live streams (docs/events.md, "Streams"): the session is the FrameStreams of its frames, so
// `subscribe` / `unsubscribe` ops add its inbox to the EventHub. Pushed frames (already durable:
// the hub waits) join the same reply queue with no ticket, so they keep the one-write-at-a-time
// rule and come after every reply queued before them. They do not count against the reading
// bounds (--max-ws-inflight, --max-ws-queued-bytes); their own bound, --max-stream-queued-bytes,
// covers the inbox, the pushed frames queued and the socket's backlog: past it the subscriber
// cannot keep up and is closed with 1008.

#include "server/server_impl.h"

#include "server/coalescing_stream.h"
#include "log/log.h"

#include <boost/beast/websocket.hpp>
#include <algorithm>
#include <deque>
#include <optional>

namespace genledger::server {

namespace websocket = beast::websocket;

namespace {

// WebSocket session.

class WsSession final : public SessionBase, public FrameStreams, public std::enable_shared_from_this<WsSession> {
 public:
  // `authorization` is kept to re-check the token when the auth file is reloaded.
  WsSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, std::string authorization, Grant grant)
      : ws_(std::move(socket)), srv_(srv), idx_(idx), authorization_(std::move(authorization)),
        grant_(std::move(grant)) {}

  ~WsSession() override {
    if (inbox_) srv_.hub.UnsubscribeAll(inbox_);
    if (registered_) srv_.parked.fetch_sub(1);
    srv_.registry[idx_].erase(this);
    if (accepted_) srv_.metrics->WsClosed();
    srv_.metrics->ConnectionClosed();
  }

  void Run(http::request<http::string_body> req) {
    srv_.registry[idx_].insert(this);
    // Beast's idle timeout re-arms a timer on every read (a timerfd_settime and a cancelled
    // handler per frame: ~8% of the single-op path's CPU). The session keeps its own coarse idle
    // clock instead (ArmIdleTimer); Beast keeps the handshake and closing-handshake timeouts.
    websocket::stream_base::timeout t;
    t.handshake_timeout = Ms(srv_.opt.header_timeout_ms);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(t);
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_rx_ = SteadyClock::now(); });
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "genledger"); }));
    ws_.next_layer().Bind(weak_from_this(), [this] { OnSent(); });
    websocket::permessage_deflate pmd;   // off (the default), stated explicitly
    pmd.server_enable = false;
    pmd.client_enable = false;
    ws_.set_option(pmd);
    ws_.read_message_max(srv_.opt.max_body_bytes);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::OnAccept, shared_from_this()));
  }

  std::shared_ptr<SessionBase> Lock() override { return weak_from_this().lock(); }

  void Shutdown() override {
    StopStreams();
    if (close_started_) return;
    pending_close_ = websocket::close_code::going_away;
    // Before the handshake completes, OnAccept closes; while replies wait for durability,
    // TryWrite closes once the queue is drained (the close frame follows the last reply).
    if (accepted_ && queue_.empty()) DoClose();
  }

  void OnDurable() override {
    registered_ = false;
    srv_.parked.fetch_sub(1);
    work_.reset();
    TryWrite();
  }

  // A revoked token (a reload that dropped it, or DELETE /v1/tokens/{id} of a minted one), an
  // expired one, or open mode closed by the reload, ends the session: 1008 after the replies to
  // the frames already received, which were authorised when they arrived.
  void OnAuthReload() override {
    if (close_started_ || pending_close_) return;
    // Still at least what the upgrade granted (every frame's ops are checked against that).
    if (srv_.auth->Check(authorization_) >= grant_.role) return;
    StopStreams();
    pending_close_ = websocket::close_code::policy_error;
    if (accepted_ && queue_.empty()) DoClose();   // else TryWrite closes after the queue
  }

  // --- Live streams (FrameStreams: called from inside Api::HandleFrame, on this thread).
  WireError Subscribe(std::string_view workspace, std::string& fields) override {
    if (pending_close_ || close_started_ || streams_stopped_)
      return WireError::Make(503, "overloaded", "the connection is closing");
    if (!inbox_) {
      inbox_ = std::make_shared<StreamInbox>(
          srv_.opt.max_stream_queued_bytes, [weak = weak_from_this(), ex = ws_.get_executor()] {
            net::post(ex, [weak] {
              if (auto self = weak.lock()) self->OnStreamFrames();
            });
          });
    }
    EventHub::Start start;
    if (WireError e = srv_.hub.Subscribe(inbox_, workspace, &start); !e.ok()) return e;
    // The reply's ticket (WsSession::Reply, after the frame) covers the read: the state is sent
    // once durable, and the hub sends this subscriber only frames with a higher rev.
    fields += "\"subscribed\":";
    AppendJsonString(fields, workspace);
    fields += ",\"rev\":";
    AppendU64(fields, start.rev);
    fields += ",\"state\":";
    fields += start.state;
    return {};
  }

  WireError Unsubscribe(std::string_view workspace, std::string& fields) override {
    if (inbox_) {
      srv_.hub.Unsubscribe(inbox_, workspace);
      // Frames pushed before that go before the reply; none of the workspace comes after it.
      TakeStreamFrames();
    }
    fields += "\"unsubscribed\":";
    AppendJsonString(fields, workspace);
    return {};
  }

  void OnStreamFrames() override {
    if (streams_stopped_) return;
    TakeStreamFrames();
    TryWrite();
  }

 private:
  // Moves the inbox's frames into the reply queue (no ticket: already durable).
  void TakeStreamFrames() {
    if (!inbox_ || streams_stopped_) return;
    stream_buf_.clear();
    if (!inbox_->Take(stream_buf_)) return StreamOverflow();
    const size_t backlog = ws_.next_layer().pending_bytes();
    for (StreamFrame& f : stream_buf_) {
      if (pushed_bytes_ + backlog + f.json.size() > srv_.opt.max_stream_queued_bytes) return StreamOverflow();
      pushed_bytes_ += f.json.size();
      queue_.push_back(Pending{std::move(f.json), 0, SteadyClock::now(), /*pushed=*/true});
    }
  }

  // The subscriber cannot keep up: its pushed frames are dropped and it is closed with 1008 after
  // the replies already queued. A peer that does not read at all cannot take the close frame
  // either: the socket is cut --header-timeout-ms later.
  void StreamOverflow() {
    StopStreams();
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->pushed) {
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    pushed_bytes_ = 0;
    if (!pending_close_) pending_close_ = websocket::close_code::policy_error;
    kill_timer_.expires_after(Ms(srv_.opt.header_timeout_ms));
    kill_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) beast::close_socket(beast::get_lowest_layer(self->ws_));
    });
    if (accepted_ && queue_.empty()) DoClose();   // else TryWrite closes after the queue
  }

  // No more pushed frames (closing, overflow, server stop).
  void StopStreams() {
    streams_stopped_ = true;
    if (inbox_) srv_.hub.UnsubscribeAll(inbox_);
  }

  void OnAccept(error_code ec) {
    if (ec) return;
    accepted_ = true;
    srv_.metrics->WsOpened();
    if (srv_.stopping) pending_close_ = websocket::close_code::going_away;
    if (pending_close_) return DoClose();
    last_rx_ = SteadyClock::now();
    ArmIdleTimer();
    DoRead();
  }

  // The peer must send something - a frame, or the pong to a ping - within --idle-timeout-ms,
  // or the connection is dropped (what Beast's keep-alive pings did). The clock ticks every
  // quarter of the timeout and pings a peer that was silent for the last tick, so a responsive
  // peer always gets at least three quarters of the timeout to answer. The timer holds the
  // session weakly so it never keeps a finished one alive.
  SteadyClock::duration IdleTick() const { return Ms(std::max<uint64_t>(1, srv_.opt.idle_timeout_ms / 4)); }
  void ArmIdleTimer() {
    idle_timer_.expires_after(IdleTick());
    idle_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->OnIdleTimer();
    });
  }
  void OnIdleTimer() {
    if (close_started_) return;   // Beast's closing-handshake timeout takes over
    const auto idle = SteadyClock::now() - last_rx_;
    if (idle >= Ms(srv_.opt.idle_timeout_ms)) {
      beast::close_socket(beast::get_lowest_layer(ws_));   // pending operations fail; the session ends
      return;
    }
    if (idle >= IdleTick() && !ping_in_flight_ && ws_.is_open()) {
      ping_in_flight_ = true;
      ws_.async_ping({}, [weak = weak_from_this()](error_code) {
        if (auto self = weak.lock()) self->ping_in_flight_ = false;
      });
    }
    ArmIdleTimer();
  }

  void DoRead() {
    if (reading_ || close_started_ || pending_close_ ||
        queue_.size() >= srv_.opt.max_ws_inflight ||
        queued_bytes_ + ws_.next_layer().pending_bytes() >= srv_.opt.max_ws_queued_bytes)
      return;   // backpressure: OnSent resumes reading
    reading_ = true;
    ws_.async_read(buf_, beast::bind_front_handler(&WsSession::OnRead, shared_from_this()));
  }

  void OnRead(error_code ec, size_t) {
    reading_ = false;
    if (ec) {   // closed by the peer, too big (Beast closes with 1009), idle, ...
      idle_timer_.cancel();
      StopStreams();
      return;
    }
    last_rx_ = SteadyClock::now();
    if (!ws_.got_text()) {
      // RFC 6455 7.4.1: 1003 = "received a type of data it cannot accept".
      buf_.consume(buf_.size());
      pending_close_ = websocket::close_code::unknown_data;
      if (queue_.empty()) DoClose();   // else TryWrite closes after the queued replies
      return;
    }
    if (grant_.token != nullptr && grant_.token->Expired(srv_.ledger->NowMs())) {
      // A minted token that expired while the session was open: no more frames run under it.
      buf_.consume(buf_.size());
      pending_close_ = websocket::close_code::policy_error;
      if (queue_.empty()) DoClose();
      return;
    }
    auto data = buf_.data();
    std::string out;
    bool observed = srv_.api.HandleFrame(
        std::string_view(static_cast<const char*>(data.data()), data.size()), out, &grant_, this);
    buf_.consume(buf_.size());
    Reply(std::move(out), observed);
    DoRead();
  }

  // THE exit for every reply on this stream, in frame order. A frame derived from ledger state
  // carries the WAL ticket taken now, after every op of the frame ran: it covers every record
  // the ops appended or observed (Durability::Ticket()).
  void Reply(std::string frame, bool ledger_state) {
    const uint64_t ticket = (ledger_state && srv_.durability != nullptr) ? srv_.durability->Ticket() : 0;
    queued_bytes_ += frame.size();
    queue_.push_back(Pending{std::move(frame), ticket, SteadyClock::now() + Ms(srv_.opt.reply_deadline_ms), false});
    TryWrite();
  }

  // A frame held past --reply-deadline-ms is answered with a frame-level 503 instead, its
  // outcome unknown (docs/api.md). Later frames keep their own deadlines and their order.
  void ArmDeadline() {
    if (deadline_armed_ || queue_.empty()) return;
    deadline_armed_ = true;
    deadline_timer_.expires_at(queue_.front().deadline);
    deadline_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->OnDeadline();
    });
  }
  void OnDeadline() {
    deadline_armed_ = false;
    const auto now = SteadyClock::now();
    for (Pending& p : queue_) {
      if (p.ticket == 0 || p.deadline > now) break;
      queued_bytes_ -= p.frame.size();
      p.frame = DeadlineFrame();
      queued_bytes_ += p.frame.size();
      p.ticket = 0;
    }
    TryWrite();
  }

  // Moves every reply that may be sent (no ticket, or a durable one) from the head of the queue
  // into the stream's buffer, as one run, and sends the run with one socket write (see
  // coalescing_stream.h for why replies do not go through Beast's per-message write).
  void TryWrite() {
    CoalescingStream& out = ws_.next_layer();
    while (!queue_.empty()) {
      const uint64_t ticket = queue_.front().ticket;
      if (ticket != 0 && !srv_.durability->IsDurable(ticket)) {
        if (!srv_.durability->status().ok()) {
          // The WAL failed: what these frames observed will never be durable, so they are never
          // answered; the close tells the client their outcome is unknown.
          queue_.clear();
          queued_bytes_ = 0;
          pushed_bytes_ = 0;
          pending_close_ = websocket::close_code::internal_error;
          break;
        }
        if (!registered_) {
          registered_ = true;
          srv_.parked.fetch_add(1);
          work_.emplace(net::make_work_guard(ws_.get_executor()));
          srv_.AwaitDurable(idx_, shared_from_this(), ticket);
        }
        ArmDeadline();
        break;
      }
      if (!ws_.is_open()) {
        // Beast closed the stream (the peer's close, a protocol error): nobody reads replies now.
        queue_.clear();
        queued_bytes_ = 0;
        pushed_bytes_ = 0;
        break;
      }
      out.AppendTextFrame(queue_.front().frame);
      (queue_.front().pushed ? pushed_bytes_ : queued_bytes_) -= queue_.front().frame.size();
      queue_.pop_front();
    }
    out.Flush();
    // The close frame goes through the same buffer, after every reply written before it.
    if (queue_.empty() && pending_close_) DoClose();
  }

  // After each socket write: the memory bound may allow reading again.
  void OnSent() {
    if (ws_.next_layer().error()) return;   // the connection is gone; the pending read fails too
    DoRead();
  }

  void DoClose() {
    if (close_started_) return;
    close_started_ = true;
    StopStreams();
    ws_.async_close(websocket::close_reason(pending_close_),
                    beast::bind_front_handler(&WsSession::OnClose, shared_from_this()));
  }

  void OnClose(error_code) {}

  struct Pending {
    std::string frame;
    uint64_t ticket;   // 0: nothing to wait for
    SteadyClock::time_point deadline;
    bool pushed;       // a stream frame (counted in pushed_bytes_, not queued_bytes_)
  };
  static std::string DeadlineFrame() {
    return "{\"status\":503," +
           std::string(ErrorBody(WireError::Make(503, "unavailable", kDeadlineMessage))).substr(1);
  }
  websocket::stream<CoalescingStream> ws_;
  net::steady_timer idle_timer_{ws_.get_executor()};
  SteadyClock::time_point last_rx_;      // last frame or control frame from the peer
  bool ping_in_flight_ = false;
  beast::flat_buffer buf_;
  std::deque<Pending> queue_;
  size_t queued_bytes_ = 0;   // sum of queue_'s reply sizes: the memory bound of backpressure
  size_t pushed_bytes_ = 0;   // sum of queue_'s pushed frame sizes (--max-stream-queued-bytes)
  std::shared_ptr<StreamInbox> inbox_;   // on the first subscribe
  std::vector<StreamFrame> stream_buf_;
  bool streams_stopped_ = false;
  net::steady_timer kill_timer_{ws_.get_executor()};
  bool registered_ = false;   // in durable_waiters: woken when a round becomes durable
  net::steady_timer deadline_timer_{ws_.get_executor()};
  bool deadline_armed_ = false;
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
  Server::Impl& srv_;
  size_t idx_;
  std::string authorization_;
  Grant grant_;   // the token's role and scope at the upgrade (per-op checks of every frame)
  bool accepted_ = false;
  bool reading_ = false;
  bool close_started_ = false;
  websocket::close_code pending_close_ = websocket::close_code::none;
};

}  // namespace

void StartWsSession(tcp::socket&& socket, Server::Impl& srv, size_t idx,
                    std::string authorization, Grant grant, http::request<http::string_body>&& req) {
  auto ws = std::make_shared<WsSession>(std::move(socket), srv, idx, std::move(authorization), std::move(grant));
  ws->Run(std::move(req));
}

}  // namespace genledger::server
