// The stream layer between beast::websocket::stream and the TCP stream that coalesces replies.
//
// Why: a client that pipelines thousands of single-op frames gets thousands of reply frames per
// group-commit round. Beast writes one message per async_write (one send() each, plus a posted
// completion and a pass of the event loop each), which made replies the largest cost of the
// single-op path (perf: sendmsg ~25% of the server's CPU, epoll_wait ~15%). Beast has no
// multi-message write, and writing frames to the socket behind Beast's back would race the
// handshake response, pongs and close frames Beast writes itself. So this layer sits *below*
// Beast, and every byte goes through one ordered buffer:
//
//   - Beast's own writes (async_write_some) are appended whole and complete once their bytes were
//     handed to the socket, like an ordinary stream.
//   - The session appends reply frames directly (AppendTextFrame): a complete, final, unmasked
//     text frame (RFC 6455 §5.2; a server never masks, permessage-deflate is off) per reply.
//   - Flush() hands everything buffered to the socket in one async_write; at most one socket
//     write is in flight, and bytes appended meanwhile go out with the next one.
//
// Because Beast hands each of its frames over in one call (its frames are never split across
// calls: this layer always accepts every byte), a reply frame can only land between whole Beast
// frames, never inside one.
//
// Thread-safety: none; one session's handlers run on one thread (listener.cc's threading model).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genledger::server {

// Appends the header of a final, unmasked text frame with an n-byte payload (RFC 6455 §5.2:
// 7-bit length, or 126 + 16-bit, or 127 + 64-bit, network byte order).
inline void AppendTextFrameHeader(std::string& out, size_t n) {
  out.push_back(char(0x81));   // FIN, opcode 1 (text)
  if (n < 126) {
    out.push_back(char(n));
    return;
  }
  const int bytes = n <= 0xFFFF ? 2 : 8;
  out.push_back(char(bytes == 2 ? 126 : 127));
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(char((uint64_t(n) >> shift) & 0xFF));
}

class CoalescingStream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;
  using error_code = boost::beast::error_code;

  // Arguments construct the TCP stream (a connected socket, or an io_context for a client).
  template <class... Args>
  explicit CoalescingStream(Args&&... args) : next_(std::forward<Args>(args)...) {}
  CoalescingStream(const CoalescingStream&) = delete;
  CoalescingStream& operator=(const CoalescingStream&) = delete;

  executor_type get_executor() noexcept { return next_.get_executor(); }
  next_layer_type& next_layer() noexcept { return next_; }
  const next_layer_type& next_layer() const noexcept { return next_; }

  // Appends one reply frame carrying `payload` (which must be valid UTF-8: it is sent as text).
  // Requires: the WebSocket is open (no close frame written or started); nothing is sent until
  // Flush().
  void AppendTextFrame(std::string_view payload) {
    if (ec_) return;   // the connection is gone: nothing more can be delivered
    AppendTextFrameHeader(out_, payload.size());
    out_.append(payload);
  }

  // `owner` (the session holding this stream) is kept alive while a socket write is in flight;
  // `on_sent` runs after every completed socket write, success or not. Call before any I/O.
  void Bind(std::weak_ptr<void> owner, std::function<void()> on_sent) {
    owner_ = std::move(owner);
    on_sent_ = std::move(on_sent);
  }

  // Starts sending what is buffered unless a socket write is in flight (then it goes with the
  // next one).
  void Flush() {
    if (!sending_ && !out_.empty() && !ec_) Send();
  }

  // For a client that writes its frames through Beast (which masks them): while corked, Beast's
  // writes are buffered and complete at once; Uncork() sends them together. The caller bounds
  // what it writes while corked and must uncork before it waits for anything, or the buffered
  // frames (and any pong Beast wrote meanwhile) wait with it. The server never corks.
  void Cork() noexcept { corked_ = true; }
  void Uncork() {
    corked_ = false;
    Flush();
  }

  // Bytes appended and not yet written to the socket (buffered or in flight): the session counts
  // them against its memory bound.
  size_t pending_bytes() const noexcept { return out_.size() + in_flight_.size(); }
  // The first socket error; sticky.
  const error_code& error() const noexcept { return ec_; }

  // Synchronous I/O goes straight to the socket: only for a blocking client handshake, before
  // any asynchronous write (it would bypass anything buffered).
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b) { return next_.read_some(b); }
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b, error_code& ec) { return next_.read_some(b, ec); }
  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b) { return next_.write_some(b); }
  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b, error_code& ec) { return next_.write_some(b, ec); }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return next_.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  // Beast's writes. Completes when the bytes were handed to the socket, in order after every
  // frame appended before the call.
  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) { Write(b, std::move(handler)); }, token, buffers);
  }

  // Completes once everything appended or written so far reached the socket (or the stream
  // failed): a teardown waits for it so that the close frame is not cut off.
  template <class Handler>
  void AsyncDrain(Handler&& handler) {
    corked_ = false;
    Write(boost::asio::const_buffer(),
          [h = std::forward<Handler>(handler)](error_code ec, size_t) mutable { std::move(h)(ec); });
  }

 private:
  using Completion = boost::asio::any_completion_handler<void(error_code, std::size_t)>;
  struct Waiter {
    Completion handler;
    size_t bytes;
  };

  template <class ConstBufferSequence, class Handler>
  void Write(const ConstBufferSequence& buffers, Handler&& handler) {
    const size_t n = boost::asio::buffer_size(buffers);
    if (ec_ || (n == 0 && !sending_ && out_.empty())) {
      return boost::asio::post(get_executor(),
                               boost::beast::bind_front_handler(std::forward<Handler>(handler), ec_, size_t{0}));
    }
    const size_t at = out_.size();
    out_.resize(at + n);
    boost::asio::buffer_copy(boost::asio::buffer(out_.data() + at, n), buffers);
    if (corked_ && n > 0) {
      return boost::asio::post(get_executor(),
                               boost::beast::bind_front_handler(std::forward<Handler>(handler), error_code{}, n));
    }
    waiting_.push_back(Waiter{Completion(std::forward<Handler>(handler)), n});
    if (!sending_) Send();
  }

  // Hands the whole buffer to the socket. Every write waiting so far has its bytes in it.
  void Send() {
    sending_ = true;
    alive_ = owner_.lock();
    in_flight_.swap(out_);
    out_.clear();
    carried_ = waiting_.size();
    boost::asio::async_write(next_, boost::asio::buffer(in_flight_), [this](error_code ec, size_t) { OnSent(ec); });
  }

  void OnSent(error_code ec) {
    sending_ = false;
    in_flight_.clear();
    if (ec && !ec_) ec_ = ec;
    // Completing a write may start new ones (appending to waiting_), so take the finished ones
    // out first. After a failure nothing more is sent and every waiting write fails; with
    // nothing left to send, the rest of waiting_ are drains with no bytes of their own.
    const size_t finished = (ec_ || out_.empty()) ? waiting_.size() : carried_;
    std::vector<Waiter> done(std::make_move_iterator(waiting_.begin()),
                             std::make_move_iterator(waiting_.begin() + ptrdiff_t(finished)));
    waiting_.erase(waiting_.begin(), waiting_.begin() + ptrdiff_t(finished));
    carried_ = 0;
    // Keeps the session (and so this stream) alive until this handler returns, whatever the
    // completed writes' handlers release.
    const std::shared_ptr<void> alive = std::move(alive_);
    if (ec_) {
      out_.clear();
    } else if (!out_.empty()) {
      Send();
    }
    for (Waiter& w : done) std::move(w.handler)(ec_, ec_ ? size_t{0} : w.bytes);
    if (on_sent_) on_sent_();
  }

  next_layer_type next_;
  std::string out_;         // bytes appended and not yet handed to the socket
  std::string in_flight_;   // the bytes of the socket write in flight
  std::vector<Waiter> waiting_;   // Beast writes whose bytes are not yet on the socket, oldest first
  size_t carried_ = 0;            // how many of waiting_ the socket write in flight carries
  std::weak_ptr<void> owner_;
  std::shared_ptr<void> alive_;   // owner_, held while a socket write is in flight
  std::function<void()> on_sent_;
  bool sending_ = false;
  bool corked_ = false;
  error_code ec_;
};

// Beast's websocket::stream tears its next layer down after the close handshake; these are found
// by argument-dependent lookup. The asynchronous one drains the buffer first, so the close frame
// (and every reply before it) reaches the peer before the socket is shut down.
inline void teardown(boost::beast::role_type role, CoalescingStream& s, boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, s.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& s, TeardownHandler&& handler) {
  s.AsyncDrain([&s, role, h = std::forward<TeardownHandler>(handler)](boost::beast::error_code) mutable {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, s.next_layer(), std::move(h));
  });
}

}  // namespace genledger::server
