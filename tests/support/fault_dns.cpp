// fault_dns.cpp - misbehaving DNS servers, and killing a real NSD (see fault_dns.hpp)
#include "support/fault_dns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace dmarc::test {

namespace {

int bind_on(int type, std::uint16_t port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// read_full - N octets from FD within WAIT_MS, false on EOF/timeout.
bool read_full(int fd, char* out, std::size_t n, int wait_ms, const std::atomic<bool>& stop) {
  std::size_t got = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (got < n && !stop) {
    if (std::chrono::steady_clock::now() > end) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t k = ::read(fd, out + got, n - got);
    if (k <= 0) return false;
    got += static_cast<std::size_t>(k);
  }
  return got == n;
}

}  // namespace

FaultDnsServer::FaultDnsServer(Handler handler, TcpMode tcp_mode) : handler_(std::move(handler)), mode_(tcp_mode) {
  // One port for both: UDP first, then TCP on the same number (when wanted).
  for (int attempt = 0; attempt < 20; ++attempt) {
    udp_ = bind_on(SOCK_DGRAM, 0);
    if (udp_ < 0) throw std::runtime_error(std::string("fault DNS: bind UDP: ") + std::strerror(errno));
    port_ = port_of(udp_);
    if (mode_ == TcpMode::Refuse) {
      // Nobody may listen on this TCP port: check that a connect is refused.
      int probe = bind_on(SOCK_STREAM, port_);
      if (probe >= 0) {
        ::close(probe);
        break;
      }
    } else {
      tcp_ = bind_on(SOCK_STREAM, port_);
      if (tcp_ >= 0 && ::listen(tcp_, 16) == 0) break;
      if (tcp_ >= 0) ::close(tcp_);
      tcp_ = -1;
    }
    ::close(udp_);
    udp_ = -1;
  }
  if (udp_ < 0) throw std::runtime_error("fault DNS: no port free for UDP and TCP");
  thread_ = std::thread([this] { run(); });
}

FaultDnsServer::~FaultDnsServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (udp_ >= 0) ::close(udp_);
  if (tcp_ >= 0) ::close(tcp_);
}

std::string FaultDnsServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void FaultDnsServer::run() {
  std::vector<std::thread> conns;
  while (!stop_) {
    pollfd p[2] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
    if (::poll(p, tcp_ >= 0 ? 2 : 1, 20) <= 0) continue;
    if (p[0].revents & POLLIN) {
      char buf[4096];
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t n = ::recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n > 0) {
        ++udp_queries_;
        std::string reply;
        try {
          reply = handler_(std::string(buf, static_cast<std::size_t>(n)), false);
        } catch (...) {
          reply.clear();
        }
        if (!reply.empty())
          ::sendto(udp_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
      }
    }
    if (tcp_ >= 0 && (p[1].revents & POLLIN)) {
      int c = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) conns.emplace_back([this, c] { serve_tcp(c); });
    }
  }
  for (auto& t : conns) t.join();
}

void FaultDnsServer::serve_tcp(int fd) {
  if (mode_ == TcpMode::Close) {
    ++tcp_queries_;
    ::close(fd);
    return;
  }
  if (mode_ == TcpMode::Hang) {
    ++tcp_queries_;
    char sink[512];
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0 && ::read(fd, sink, sizeof sink) <= 0) break;
    }
    ::close(fd);
    return;
  }
  while (!stop_) {
    char len[2];
    if (!read_full(fd, len, 2, 10000, stop_)) break;
    const std::size_t n = (static_cast<unsigned char>(len[0]) << 8) | static_cast<unsigned char>(len[1]);
    std::string q(n, '\0');
    if (!read_full(fd, q.data(), n, 10000, stop_)) break;
    ++tcp_queries_;
    std::string reply;
    try {
      reply = handler_(q, true);
    } catch (...) {
      reply.clear();
    }
    if (reply.empty() || reply.size() > 65535) break;
    std::string framed;
    framed += static_cast<char>(reply.size() >> 8);
    framed += static_cast<char>(reply.size() & 0xff);
    framed += reply;
    std::size_t off = 0;
    while (off < framed.size()) {
      ssize_t k = ::send(fd, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
      if (k <= 0) break;
      off += static_cast<std::size_t>(k);
    }
  }
  ::close(fd);
}

std::string qname(const std::string& q) {
  std::string name;
  std::size_t i = 12;
  while (i < q.size()) {
    auto len = static_cast<unsigned char>(q[i]);
    if (len == 0) break;
    if (len > 63 || i + 1 + len > q.size()) return {};
    if (!name.empty()) name += '.';
    for (std::size_t k = 0; k < len; ++k)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(q[i + 1 + k])));
    i += 1 + len;
  }
  return name;
}

// --- NsdKiller -------------------------------------------------------------------

NsdKiller::NsdKiller(const NsdServer& nsd) : dir_(nsd.work_dir()), port_(nsd.port()) {
  auto zones = nsd.zones();
  first_zone_ = zones.empty() ? std::string(".") : zones.front();
}

NsdKiller::~NsdKiller() {
  if (own_ > 0) {
    ::kill(-own_, SIGKILL);
    ::kill(own_, SIGKILL);
    int st = 0;
    ::waitpid(own_, &st, 0);
  }
}

// running_pid - the NSD main process started with this nsd.conf (ours, or
// the NsdServer's, found in /proc by its command line).
pid_t NsdKiller::running_pid() const {
  if (own_ > 0) return own_;
  const std::string conf = dir_ + "/nsd.conf";
  namespace fs = std::filesystem;
  pid_t best = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "cmdline");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string cmd = ss.str();
    if (cmd.find(conf) == std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    // The main process leads its process group (nsd_server.cpp setpgid).
    if (::getpgid(pid) == pid) return pid;
    if (best < 0) best = pid;
  }
  return best;
}

bool NsdKiller::kill() {
  const pid_t pid = running_pid();
  if (pid <= 0) return false;
  const pid_t group = ::getpgid(pid);
  if (group > 0) ::kill(-group, SIGKILL);
  ::kill(pid, SIGKILL);
  if (own_ > 0) {
    int st = 0;
    ::waitpid(own_, &st, 0);
    own_ = -1;
  }
  // Gone once a query gets no answer.
  for (int i = 0; i < 100; ++i) {
    if (exchange_udp(port_, dns_query(0x4b00, first_zone_, 6), std::chrono::milliseconds(50)).empty()) return true;
  }
  return false;
}

void NsdKiller::stop_process() {
  const pid_t pid = running_pid();
  if (pid > 0) ::kill(-::getpgid(pid), SIGSTOP);
}

void NsdKiller::cont() {
  const pid_t pid = running_pid();
  if (pid > 0) ::kill(-::getpgid(pid), SIGCONT);
}

bool NsdKiller::restart() {
  const std::string conf = dir_ + "/nsd.conf";
  const std::string err = dir_ + "/nsd.restart.stderr";
  std::string bin = "/usr/sbin/nsd", d = "-d", c = "-c";
  std::string conf_arg = conf;
  char* argv[] = {bin.data(), d.data(), c.data(), conf_arg.data(), nullptr};
  const pid_t parent = ::getpid();
  own_ = ::fork();
  if (own_ < 0) return false;
  if (own_ == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (err_fd >= 0) {
      ::dup2(err_fd, 1);
      ::dup2(err_fd, 2);
    }
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::setpgid(own_, own_);
  for (int i = 0; i < 200; ++i) {
    if (!exchange_udp(port_, dns_query(static_cast<std::uint16_t>(0x4c00 + i), first_zone_, 6),
                      std::chrono::milliseconds(50))
             .empty())
      return true;
    ::usleep(20 * 1000);
  }
  return false;
}

}  // namespace dmarc::test
