// A minimal keep-alive HTTP/1.1 client over raw sockets, for tests that drive a real server
// without compiling Beast.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace genledger::testing {

inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A minimal keep-alive HTTP/1.1 client: enough to drive the server and read status + body.
class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  // Returns the status code (0 if the connection broke) and fills *body.
  int Request(const std::string& method, const std::string& target, const std::string& body, std::string* out) {
    if (!Send(method, target, body)) return 0;
    return Receive(out);
  }

  // Sends a request without waiting for its answer (see Receive, Readable).
  bool Send(const std::string& method, const std::string& target, const std::string& body) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    return write(fd_, req.data(), req.size()) == ssize_t(req.size());
  }

  // True when some of an answer has arrived (or the connection closed), without blocking.
  bool Readable() {
    if (!buf_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

  // Reads one answer: its status code (0 if the connection broke); fills *body.
  int Receive(std::string* out) {
    size_t header_end;
    while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return 0;
    }
    const int status = std::atoi(buf_.c_str() + 9);
    const size_t cl = buf_.find("Content-Length: ");
    if (cl == std::string::npos || cl > header_end) return 0;
    const size_t len = std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
    while (buf_.size() < header_end + 4 + len) {
      if (!Fill()) return 0;
    }
    *out = buf_.substr(header_end + 4, len);
    buf_.erase(0, header_end + 4 + len);
    return status;
  }

 private:
  bool Fill() {
    char tmp[4096];
    const ssize_t n = read(fd_, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf_.append(tmp, size_t(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_;
};

}  // namespace genledger::testing
