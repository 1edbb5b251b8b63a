// A blocking Server-Sent Events reader for tests that drive a real server in process
// (tests/server_events_test.cc): sends GET on a plain socket, then reads the response head and
// one record at a time.
#pragma once

#include <string>
#include <string_view>

#include "beast_test_client.h"

namespace genledger::server {
namespace beast_test {

// A Server-Sent Events reader on a plain socket: the response head, then one record at a time.
class SseClient {
 public:
  SseClient(uint16_t port, const std::string& target, const char* authz) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    SetRecvTimeout(socket_.native_handle(), 10);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    if (authz) req += std::string("Authorization: ") + authz + "\r\n";
    req += "\r\n";
    net::write(socket_, net::buffer(req));
  }
  // The status code; `head` gets the response head, `body` the body when it is not a stream.
  int ReadHead(std::string* head = nullptr, std::string* body = nullptr) {
    if (!ReadUntil("\r\n\r\n")) return 0;
    const size_t end = buf_.find("\r\n\r\n");
    std::string h = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (head) *head = h;
    if (body && h.find("text/event-stream") == std::string::npos) {
      const size_t cl = h.find("Content-Length: ");
      const size_t n = cl == std::string::npos ? 0 : std::stoul(h.substr(cl + 16));
      while (buf_.size() < n && Fill()) {
      }
      *body = buf_.substr(0, n);
    }
    return std::stoi(h.substr(9, 3));
  }
  // The next record (comments included, as their own records); empty when the stream ended.
  std::string NextRecord() {
    if (!ReadUntil("\n\n")) return "";
    const size_t end = buf_.find("\n\n");
    std::string r = buf_.substr(0, end);
    buf_.erase(0, end + 2);
    return r;
  }
  // The next record that is not a comment.
  std::string NextEvent() {
    for (;;) {
      std::string r = NextRecord();
      if (r.empty() || r[0] != ':') return r;
    }
  }
  // True when the server closed the stream (after what was already sent).
  bool Ended() {
    while (Fill()) {
    }
    return eof_;
  }
  int fd() { return socket_.native_handle(); }
  const std::string& buffered() const { return buf_; }

  static std::string Field(const std::string& record, const std::string& name) {
    const std::string key = name + ": ";
    size_t p = record.rfind(key, 0) == 0 ? 0 : record.find("\n" + key);
    if (p == std::string::npos) return "";
    if (p != 0) ++p;
    p += key.size();
    return record.substr(p, record.find('\n', p) - p);
  }

 private:
  bool Fill() {
    char tmp[4096];
    beast::error_code ec;
    size_t n = socket_.read_some(net::buffer(tmp), ec);
    if (ec) {
      eof_ = ec == net::error::eof || ec == net::error::connection_reset;
      return false;
    }
    buf_.append(tmp, n);
    return true;
  }
  bool ReadUntil(std::string_view delim) {
    while (buf_.find(delim) == std::string::npos)
      if (!Fill()) return false;
    return true;
  }
  net::io_context ioc_;
  tcp::socket socket_;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace beast_test
}  // namespace genledger::server
