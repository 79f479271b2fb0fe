// nsd_server.cpp - a private NSD and tiny fake DNS servers for the tests
#include "support/nsd_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace dmarc::test {

namespace fs = std::filesystem;

namespace {

// Fd - a file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// bind_loopback - a socket of TYPE bound to 127.0.0.1:PORT (0 = any free
// port), or -1.
int bind_loopback(int type, std::uint16_t port) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return -1;
  sockaddr_in sa = loopback(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
  return fd.release();
}

std::uint16_t local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) throw std::runtime_error(errno_text("getsockname"));
  return ntohs(sa.sin_port);
}

// free_port - a port free for both UDP and TCP on 127.0.0.1 right now.
std::uint16_t free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    Fd udp(bind_loopback(SOCK_DGRAM, 0));
    if (udp.get() < 0) throw std::runtime_error(errno_text("bind UDP 127.0.0.1:0"));
    const std::uint16_t port = local_port(udp.get());
    Fd tcp(bind_loopback(SOCK_STREAM, port));
    if (tcp.get() >= 0) return port;
  }
  throw std::runtime_error("no port free for both UDP and TCP on 127.0.0.1");
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// valid_zone_name - a conservative check: the name goes into nsd.conf.
bool valid_zone_name(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
          c == '_'))
      return false;
  }
  return true;
}

bool keep_dir() {
  const char* v = std::getenv("DMARC_TEST_KEEP_NSD");
  return v && std::string_view(v) == "1";
}

}  // namespace

// exchange_udp - send QUERY to 127.0.0.1:PORT, wait up to WAIT for a reply
// with the same ID; "" on timeout.
std::string exchange_udp(std::uint16_t port, const std::string& query, std::chrono::milliseconds wait) {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return {};
  sockaddr_in sa = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return {};
  if (::send(fd.get(), query.data(), query.size(), 0) < 0) return {};
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
    char buf[65536];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return {};  // e.g. ECONNREFUSED: nothing listening yet
    std::string reply(buf, static_cast<std::size_t>(n));
    if (reply.size() >= 12 && dns_id(reply) == dns_id(query)) return reply;
  }
}


// --- raw DNS helpers -------------------------------------------------------------

std::string dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype, bool rd) {
  std::string m;
  m += static_cast<char>(id >> 8);
  m += static_cast<char>(id & 0xff);
  m += static_cast<char>(rd ? 0x01 : 0x00);
  m += '\0';
  m.append("\0\1\0\0\0\0\0\0", 8);
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    m += static_cast<char>(dot - start);
    m.append(name.substr(start, dot - start));
    start = dot + 1;
  }
  m += '\0';
  m += static_cast<char>(qtype >> 8);
  m += static_cast<char>(qtype & 0xff);
  m.append("\0\1", 2);
  return m;
}

std::size_t dns_question_end(const std::string& message) {
  std::size_t i = 12;
  while (i < message.size()) {
    const auto len = static_cast<unsigned char>(message[i]);
    if (len == 0) {
      i += 1 + 4;
      return i <= message.size() ? i : 0;
    }
    if (len > 63) return 0;  // no compression in questions we build or get
    i += 1 + len;
  }
  return 0;
}

std::string dns_reply(const std::string& query, int rcode, std::uint16_t flags, const std::string& answer_rrs,
                      std::uint16_t ancount) {
  const std::size_t end = dns_question_end(query);
  if (end == 0) return {};
  std::string m = query.substr(0, end);
  const std::uint16_t rd = static_cast<std::uint16_t>(static_cast<unsigned char>(query[2]) & 0x01) << 8;
  const std::uint16_t f = static_cast<std::uint16_t>(0x8000 | 0x0080 | rd | flags | (rcode & 0x0f));  // QR RA
  m[2] = static_cast<char>(f >> 8);
  m[3] = static_cast<char>(f & 0xff);
  m[4] = '\0';
  m[5] = '\1';
  m[6] = static_cast<char>(ancount >> 8);
  m[7] = static_cast<char>(ancount & 0xff);
  m.replace(8, 4, std::string(4, '\0'));
  m += answer_rrs;
  return m;
}

int dns_rcode(const std::string& message) {
  return message.size() < 12 ? -1 : static_cast<unsigned char>(message[3]) & 0x0f;
}

std::uint16_t dns_id(const std::string& message) {
  if (message.size() < 2) return 0;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(message[0]) << 8) |
                                    static_cast<unsigned char>(message[1]));
}

// --- NsdServer -------------------------------------------------------------------

NsdServer::NsdServer() : NsdServer(NsdServerOptions{}) {}

NsdServer::NsdServer(NsdServerOptions options) {
  if (options.zone_dir.empty()) options.zone_dir = DMARC_TEST_DATA_DIR "/zones";
  // A port found free can be taken before NSD binds it: try a few times.
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      start_once(options);
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
      stop();
    }
  }
  throw std::runtime_error(last_error);
}

NsdServer::~NsdServer() { stop(); }

std::string NsdServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> NsdServer::zones() const {
  std::vector<std::string> out;
  for (const auto& [name, path] : zone_files_) out.push_back(name);
  return out;
}

std::string NsdServer::log() const {
  if (dir_.empty()) return {};
  return read_file(fs::path(dir_) / "nsd.log") + read_file(fs::path(dir_) / "nsd.stderr");
}

NsdServer& NsdServer::shared() {
  static NsdServer server;
  return server;
}

// start_once - one attempt: fresh directory, fresh port, NSD up and serving.
void NsdServer::start_once(const NsdServerOptions& options) {
  char tmpl[] = "/tmp/dmarc-nsd-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(errno_text("mkdtemp"));
  dir_ = tmpl;
  const fs::path dir(dir_);

  zone_files_.clear();
  const fs::path zone_dir = fs::absolute(options.zone_dir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(zone_dir, ec)) {
    const fs::path& p = entry.path();
    if (!entry.is_regular_file() || p.extension() != ".zone") continue;
    const std::string name = p.stem().string();
    if (!valid_zone_name(name)) throw std::runtime_error("bad zone file name " + p.string());
    zone_files_[name] = p.string();
  }
  if (ec) throw std::runtime_error("cannot list " + zone_dir.string() + ": " + ec.message());
  for (const auto& [name, text] : options.extra_zones) {
    if (!valid_zone_name(name)) throw std::runtime_error("bad extra zone name \"" + name + "\"");
    const fs::path p = dir / ("extra-" + name + ".zone");
    write_file(p, text);
    zone_files_[name] = p.string();
  }

  port_ = free_port();
  std::ostringstream conf;
  conf << "# generated by tests/support/nsd_server.cpp\n"
       << "server:\n"
       << "    ip-address: 127.0.0.1@" << port_ << "\n"
       << "    do-ip4: yes\n"
       << "    do-ip6: no\n"
       << "    server-count: 1\n"
       << "    reuseport: no\n"
       << "    username: \"\"\n"
       << "    chroot: \"\"\n"
       << "    zonesdir: \"" << dir_ << "\"\n"
       << "    database: \"\"\n"
       << "    zonelistfile: \"" << dir_ << "/zone.list\"\n"
       << "    xfrdfile: \"" << dir_ << "/xfrd.state\"\n"
       << "    xfrdir: \"" << dir_ << "\"\n"
       << "    pidfile: \"" << dir_ << "/nsd.pid\"\n"
       << "    logfile: \"" << dir_ << "/nsd.log\"\n"
       << "    cookie-secret-file: \"" << dir_ << "/cookiesecrets.txt\"\n"
       << "    answer-cookie: no\n"
       << "    verbosity: 1\n"
       << "    hide-version: yes\n"
       << "    hide-identity: yes\n"
       << "remote-control:\n"
       << "    control-enable: no\n";
  for (const auto& [name, path] : zone_files_) {
    conf << "zone:\n"
         << "    name: \"" << name << "\"\n"
         << "    zonefile: \"" << path << "\"\n";
  }
  const std::string conf_path = (dir / "nsd.conf").string();
  write_file(conf_path, conf.str());

  // Everything the child needs is prepared before fork(): after it only
  // async-signal-safe calls are made.
  const std::string err_path = (dir / "nsd.stderr").string();
  std::vector<std::string> args = {options.nsd_binary, "-d", "-c", conf_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (pid_ == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (err_fd >= 0) {
      ::dup2(err_fd, 1);
      ::dup2(err_fd, 2);
    }
    ::setpgid(0, 0);  // NSD and its children: one group, stopped together
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also here: whichever runs first wins the race

  // Wait until NSD answers at all, then check every zone is served.
  const auto deadline = std::chrono::steady_clock::now() + options.startup_timeout;
  const std::string probe_name = zone_files_.empty() ? std::string(".") : zone_files_.begin()->first;
  std::uint16_t id = 0x5a00;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("nsd exited during startup (status " + std::to_string(status) + "); log:\n" + log());
    }
    if (!exchange_udp(port_, dns_query(++id, probe_name, 6), std::chrono::milliseconds(100)).empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("nsd did not answer on " + address() + " within " +
                               std::to_string(options.startup_timeout.count()) + " ms; log:\n" + log());
    }
    ::usleep(20 * 1000);
  }
  for (const auto& [name, path] : zone_files_) {
    const std::string reply = exchange_udp(port_, dns_query(++id, name, 6), std::chrono::milliseconds(2000));
    const bool aa = reply.size() >= 12 && (static_cast<unsigned char>(reply[2]) & 0x04) != 0;
    if (dns_rcode(reply) != 0 || !aa) {
      throw std::runtime_error("nsd does not serve zone " + name + " from " + path + " (rcode " +
                               std::to_string(dns_rcode(reply)) + "); log:\n" + log());
    }
  }
}

// stop - terminate NSD (SIGTERM to the main process, which shuts its
// children down; SIGKILL to the whole process group after 5 s, and to any
// straggler) and remove the directory (unless asked to keep it).
void NsdServer::stop() noexcept {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 500 && !reaped; ++i) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) {
        reaped = true;
      } else {
        ::usleep(10 * 1000);
      }
    }
    if (!reaped) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    // NSD's server and xfrd children must not outlive it holding the port.
    ::kill(-pid_, SIGKILL);
    pid_ = -1;
  }
  if (!dir_.empty()) {
    if (keep_dir()) {
      std::fprintf(stderr, "nsd_server: keeping %s (DMARC_TEST_KEEP_NSD=1)\n", dir_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

// --- BlackHoleServer -------------------------------------------------------------

BlackHoleServer::BlackHoleServer() : fd_(bind_loopback(SOCK_DGRAM, 0)) {
  if (fd_ < 0) throw std::runtime_error(errno_text("black hole: bind UDP 127.0.0.1:0"));
  port_ = local_port(fd_);
}

BlackHoleServer::~BlackHoleServer() {
  if (fd_ >= 0) ::close(fd_);
}

std::string BlackHoleServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

// --- ScriptedDnsServer -----------------------------------------------------------

ScriptedDnsServer::ScriptedDnsServer(Handler handler)
    : handler_(std::move(handler)), fd_(bind_loopback(SOCK_DGRAM, 0)) {
  if (fd_ < 0) throw std::runtime_error(errno_text("scripted DNS: bind UDP 127.0.0.1:0"));
  port_ = local_port(fd_);
  thread_ = std::thread([this] { run(); });
}

ScriptedDnsServer::~ScriptedDnsServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

std::string ScriptedDnsServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void ScriptedDnsServer::run() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    ++queries_;
    std::string reply;
    try {
      reply = handler_(std::string(buf, static_cast<std::size_t>(n)));
    } catch (...) {
      reply.clear();
    }
    if (!reply.empty()) {
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }
}

}  // namespace dmarc::test
