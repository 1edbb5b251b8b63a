// The reply-coalescing layer under the server's WebSocket stream (src/server/coalescing_stream.h),
// checked against a real WebSocket peer: Beast's client over loopback.
#include "server/coalescing_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <string>
#include <vector>

namespace genledger::server {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// A connected pair on loopback: `server` wraps its socket in the layer, `client` is plain Beast.
// Both run on one io_context driven by the test.
struct Pair : std::enable_shared_from_this<Pair> {
  net::io_context ioc;
  websocket::stream<CoalescingStream> server{tcp::socket(ioc)};
  websocket::stream<beast::tcp_stream> client{ioc};
  int sends_completed = 0;

  Pair() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.next_layer().connect(acceptor.local_endpoint());
    beast::get_lowest_layer(server).socket() = acceptor.accept();
  }
  void Handshake() {
    server.next_layer().Bind(weak_from_this(), [this] { ++sends_completed; });
    bool accepted = false, connected = false;
    server.async_accept([&](beast::error_code ec) { accepted = !ec; });
    client.async_handshake("127.0.0.1", "/v1/ws", [&](beast::error_code ec) { connected = !ec; });
    ioc.run();
    ioc.restart();
    ASSERT_TRUE(accepted && connected);
  }
  // Reads n messages on the client.
  std::vector<std::string> Read(size_t n) {
    std::vector<std::string> got;
    beast::flat_buffer buf;
    std::function<void(beast::error_code, size_t)> on_read = [&](beast::error_code ec, size_t) {
      if (ec) return;
      got.push_back(beast::buffers_to_string(buf.data()));
      EXPECT_TRUE(client.got_text());
      buf.consume(buf.size());
      if (got.size() < n) client.async_read(buf, on_read);
    };
    client.async_read(buf, on_read);
    ioc.run();
    ioc.restart();
    return got;
  }
};

std::shared_ptr<Pair> Connected() {
  auto p = std::make_shared<Pair>();
  p->Handshake();
  return p;
}

TEST(CoalescingStream, FrameLengthsAtEveryEncodingBoundaryReachABeastClient) {
  auto p = Connected();
  // RFC 6455 §5.2: 7-bit lengths up to 125, 16-bit from 126 to 65535, 64-bit above.
  const std::vector<size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 200000};
  std::vector<std::string> sent;
  for (size_t i = 0; i < sizes.size(); ++i) {
    sent.push_back(std::string(sizes[i], char('a' + i)));
    p->server.next_layer().AppendTextFrame(sent.back());
  }
  EXPECT_GT(p->server.next_layer().pending_bytes(), 0u);
  p->server.next_layer().Flush();
  EXPECT_EQ(p->Read(sent.size()), sent);
  EXPECT_EQ(p->server.next_layer().pending_bytes(), 0u);
  EXPECT_GE(p->sends_completed, 1);
}

TEST(CoalescingStream, NothingIsSentBeforeFlush) {
  auto p = Connected();
  const int after_handshake = p->sends_completed;   // the 101 response went through the layer
  EXPECT_GE(after_handshake, 1);
  p->server.next_layer().AppendTextFrame("held");
  p->ioc.poll();
  p->ioc.restart();
  EXPECT_EQ(p->server.next_layer().pending_bytes(), 6u);   // 2-byte header + payload
  EXPECT_EQ(p->sends_completed, after_handshake);
  p->server.next_layer().Flush();
  EXPECT_EQ(p->Read(1), std::vector<std::string>{"held"});
}

TEST(CoalescingStream, BeastControlFramesStayWholeAndInOrderBetweenReplies) {
  auto p = Connected();
  int pings_seen = 0;
  p->client.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::ping && payload == "between") ++pings_seen;
  });
  p->server.next_layer().AppendTextFrame("first");
  bool pinged = false;
  // Beast's own write goes through the same buffer, after "first".
  p->server.async_ping("between", [&](beast::error_code ec) { pinged = !ec; });
  p->server.next_layer().AppendTextFrame("second");
  p->server.next_layer().Flush();
  EXPECT_EQ(p->Read(2), (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(pinged);
  EXPECT_EQ(pings_seen, 1);
}

TEST(CoalescingStream, CloseFrameFollowsEveryReplyWrittenBeforeIt) {
  auto p = Connected();
  for (int i = 0; i < 100; ++i) p->server.next_layer().AppendTextFrame("reply-" + std::to_string(i));
  p->server.next_layer().Flush();
  bool closed = false;
  p->server.async_close(websocket::close_code::going_away, [&](beast::error_code) { closed = true; });
  std::vector<std::string> got;
  beast::flat_buffer buf;
  beast::error_code last;
  std::function<void(beast::error_code, size_t)> on_read = [&](beast::error_code ec, size_t) {
    if (ec) {
      last = ec;
      return;
    }
    got.push_back(beast::buffers_to_string(buf.data()));
    buf.consume(buf.size());
    p->client.async_read(buf, on_read);
  };
  p->client.async_read(buf, on_read);
  p->ioc.run();
  ASSERT_EQ(got.size(), 100u);
  EXPECT_EQ(got.front(), "reply-0");
  EXPECT_EQ(got.back(), "reply-99");
  EXPECT_EQ(last, websocket::error::closed);
  EXPECT_EQ(p->client.reason().code, websocket::close_code::going_away);
  EXPECT_TRUE(closed);
}

TEST(CoalescingStream, AFailedSocketMakesLaterWritesFailAndDropsBufferedBytes) {
  auto p = Connected();
  p->client.next_layer().close();   // the peer vanishes
  // Keep writing until the kernel reports the reset (the first sends may still be accepted).
  beast::error_code seen;
  for (int i = 0; i < 50 && !p->server.next_layer().error(); ++i) {
    p->server.next_layer().AppendTextFrame(std::string(100000, 'x'));
    p->server.next_layer().Flush();
    p->ioc.run_for(std::chrono::milliseconds(20));
    p->ioc.restart();
  }
  ASSERT_TRUE(p->server.next_layer().error());
  p->server.next_layer().AppendTextFrame("dropped");
  EXPECT_EQ(p->server.next_layer().pending_bytes(), 0u);
  bool failed = false;
  p->server.async_ping("", [&](beast::error_code ec) { failed = bool(ec); });
  p->ioc.run_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(failed);
}

}  // namespace
}  // namespace genledger::server
