// milter_stub.cpp - a scripted milter that records what Postfix sends it
#include "e2e/milter_stub.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace dmarc::test {

namespace {

// Milter protocol constants (libmilter mfdef.h).
constexpr std::uint32_t kVersion = 6;
constexpr std::uint32_t kActAddHeaders = 0x01;  // SMFIF_ADDHDRS
constexpr std::uint32_t kActQuarantine = 0x20;  // SMFIF_QUARANTINE

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::uint32_t get32(std::string_view s, std::size_t at) {
  if (at + 4 > s.size()) return 0;
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

void put32(std::string& s, std::uint32_t v) {
  s += static_cast<char>((v >> 24) & 0xff);
  s += static_cast<char>((v >> 16) & 0xff);
  s += static_cast<char>((v >> 8) & 0xff);
  s += static_cast<char>(v & 0xff);
}

// strings - the NUL-terminated strings in DATA.
std::vector<std::string> strings(std::string_view data) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < data.size()) {
    std::size_t nul = data.find('\0', start);
    if (nul == std::string_view::npos) nul = data.size();
    out.emplace_back(data.substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

std::string strip_braces(const std::string& name) {
  if (name.size() >= 2 && name.front() == '{' && name.back() == '}') return name.substr(1, name.size() - 2);
  return name;
}

}  // namespace

std::string MilterSession::macro(const std::string& name) const {
  const auto it = macros.find(strip_braces(name));
  return it == macros.end() ? std::string() : it->second;
}

MilterStub::MilterStub() : MilterStub(MilterStubOptions{}) {}

MilterStub::MilterStub(MilterStubOptions options) : options_(std::move(options)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error(errno_text("milter_stub: socket"));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    const std::string e = errno_text("milter_stub: bind/listen 127.0.0.1:0");
    ::close(listen_fd_);
    throw std::runtime_error(e);
  }
  port_ = ntohs(sa.sin_port);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error(errno_text("milter_stub: pipe"));
  }
  stop_r_ = p[0];
  stop_w_ = p[1];
  acceptor_ = std::thread([this] { accept_loop(); });
}

MilterStub::~MilterStub() {
  // The stop pipe stays readable once written: every thread sees it.
  const char c = 'x';
  (void)!::write(stop_w_, &c, 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
  ::close(listen_fd_);
  ::close(stop_r_);
  ::close(stop_w_);
}

std::string MilterStub::address() const { return "inet:127.0.0.1:" + std::to_string(port_); }

std::vector<MilterSession> MilterStub::sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_;
}

void MilterStub::accept_loop() {
  for (;;) {
    pollfd p[2] = {{stop_r_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents) return;
    if (!(p[1].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void MilterStub::serve(int fd) {
  std::string in;
  std::map<std::string, std::string> pending_macros;  // macros sent before the SMFIC_CONNECT they belong to
  std::size_t current = static_cast<std::size_t>(-1);  // index into sessions_

  auto send_packet = [fd](char cmd, std::string_view data) {
    std::string pkt;
    put32(pkt, static_cast<std::uint32_t>(data.size() + 1));
    pkt += cmd;
    pkt.append(data);
    std::string_view rest(pkt);
    while (!rest.empty()) {
      const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  };

  for (;;) {
    // One packet: 4-byte length (command byte + data), command, data.
    while (in.size() < 4 || in.size() < 4 + get32(in, 0)) {
      if (in.size() >= 4 && get32(in, 0) > 16 * 1024 * 1024) {
        ::close(fd);
        return;
      }
      pollfd p[2] = {{stop_r_, POLLIN, 0}, {fd, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        ::close(fd);
        return;
      }
      if (p[0].revents) {
        ::close(fd);
        return;
      }
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    const std::uint32_t len = get32(in, 0);
    if (len == 0) {
      ::close(fd);
      return;
    }
    const char cmd = in[4];
    const std::string data = in.substr(5, len - 1);
    in.erase(0, 4 + len);

    std::unique_lock<std::mutex> lock(mu_);
    MilterSession* s = current < sessions_.size() ? &sessions_[current] : nullptr;
    if (cmd != 'D' && cmd != 'O' && s) s->commands.push_back(cmd);
    bool reply_continue = true;
    switch (cmd) {
      case 'O': {  // SMFIC_OPTNEG: version, actions, protocol steps offered
        std::string reply;
        put32(reply, kVersion);
        put32(reply, (kActAddHeaders | kActQuarantine) & get32(data, 4));
        put32(reply, 0);  // every step, and a reply to each
        lock.unlock();
        if (!send_packet('O', reply)) {
          ::close(fd);
          return;
        }
        continue;
      }
      case 'D': {  // SMFIC_MACRO: the command they are for, then name/value pairs
        const std::vector<std::string> f = strings(std::string_view(data).substr(data.empty() ? 0 : 1));
        const char for_cmd = data.empty() ? 0 : data[0];
        auto& target = (for_cmd == 'C' || !s) ? pending_macros : s->macros;
        for (std::size_t i = 0; i + 1 < f.size(); i += 2) target[strip_braces(f[i])] = f[i + 1];
        reply_continue = false;
        break;
      }
      case 'C': {  // SMFIC_CONNECT: host NUL, family, [port(2) address NUL]
        sessions_.emplace_back();
        current = sessions_.size() - 1;
        s = &sessions_[current];
        s->commands.push_back(cmd);
        s->macros = std::move(pending_macros);
        pending_macros.clear();
        const std::size_t nul = data.find('\0');
        s->host = data.substr(0, nul);
        if (nul != std::string::npos && nul + 1 < data.size()) {
          s->family = data[nul + 1];
          if (nul + 4 < data.size()) {
            s->addr = data.substr(nul + 4);
            if (!s->addr.empty() && s->addr.back() == '\0') s->addr.pop_back();
          }
        }
        break;
      }
      case 'H':
        if (s) s->helo = strings(data).empty() ? std::string() : strings(data)[0];
        break;
      case 'M':
        if (s) s->mail_from = strings(data);
        break;
      case 'R':
        if (s && !strings(data).empty()) s->rcpt_to.push_back(strings(data)[0]);
        break;
      case 'L':
        if (s) {
          const std::vector<std::string> f = strings(data);
          s->headers.emplace_back(f.empty() ? "" : f[0], f.size() > 1 ? f[1] : "");
        }
        break;
      case 'B':
        if (s) s->body += data;
        break;
      case 'E': {  // SMFIC_BODYEOB: modifications, then the final reply
        if (s) ++s->messages;
        lock.unlock();
        bool ok = true;
        if (!options_.add_header_name.empty()) {
          std::string d = options_.add_header_name;
          d += '\0';
          d += options_.add_header_value;
          d += '\0';
          ok = ok && send_packet('h', d);
        }
        if (!options_.quarantine_reason.empty()) {
          std::string d = options_.quarantine_reason;
          d += '\0';
          ok = ok && send_packet('q', d);
        }
        if (!options_.eom_reply.empty()) {
          std::string d = options_.eom_reply;
          d += '\0';
          ok = ok && send_packet('y', d);
        } else {
          ok = ok && send_packet('c', {});
        }
        if (!ok) {
          ::close(fd);
          return;
        }
        continue;
      }
      case 'A':  // SMFIC_ABORT: no reply
      case 'K':  // SMFIC_QUIT_NC: a new session follows on this connection
        reply_continue = false;
        break;
      case 'Q':  // SMFIC_QUIT
        lock.unlock();
        ::close(fd);
        return;
      default:  // 'T' data, 'N' end of headers, 'U' unknown command
        break;
    }
    lock.unlock();
    if (reply_continue && !send_packet('c', {})) {
      ::close(fd);
      return;
    }
  }
}

}  // namespace dmarc::test
