// postfix_instance.cpp - a private Postfix on 127.0.0.1 for end-to-end tests
#include "support/postfix_instance.hpp"
#include "support/process_group.hpp"
#include "support/temp_dir.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ctime>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace dmarc::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kEtcPostfix = "/etc/postfix";
constexpr const char* kDirPrefix = "dmarc-postfix-";
// Not $TMPDIR: the postfix user must be able to reach the instance
// directory through every parent (virtual(8) delivers as that user).
constexpr const char* kTmp = "/tmp";

// Fd - a file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// age_file - set the modification time of P an hour back. Postfix will not
// read a configuration file (main.cf, lookup tables) modified less than two
// seconds ago: it sleeps in 300 ms steps until the file has "cooled down",
// which made every start take two seconds.
void age_file(const fs::path& p) {
  const timespec times[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  if (::utimensat(AT_FDCWD, p.c_str(), times, 0) != 0) {
    throw std::runtime_error(errno_text("postfix_instance: utimensat " + p.string()));
  }
}

void make_dir(const fs::path& p, mode_t mode, uid_t uid, gid_t gid) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) {
    throw std::runtime_error(errno_text("postfix_instance: mkdir " + p.string()));
  }
  // mkdir() applies the umask; chmod() does not.
  if (::chown(p.c_str(), uid, gid) != 0 || ::chmod(p.c_str(), mode) != 0) {
    throw std::runtime_error(errno_text("postfix_instance: chown/chmod " + p.string()));
  }
}

// --- running commands ----------------------------------------------------------

struct CommandResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// write_no_sigpipe - write(2) to a pipe whose reader may be gone: EPIPE,
// without the process-killing SIGPIPE (blocked for the call, a pending one
// consumed).
ssize_t write_no_sigpipe(int fd, std::string_view bytes) {
  sigset_t pipe_set, old;
  ::sigemptyset(&pipe_set);
  ::sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, bytes.data(), bytes.size());
  const int saved = errno;
  if (w < 0 && saved == EPIPE) {
    const timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

// run_command - run ARGV (no shell) with INPUT on stdin; kill it after TIMEOUT.
CommandResult run_command(const std::vector<std::string>& args, const std::string& input = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  Fd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  CommandResult result;
  std::string_view pending(input);
  if (pending.empty()) in_w.reset();
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (out_r.get() >= 0 || err_r.get() >= 0) {
    pollfd p[3] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {in_w.get(), POLLOUT, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    // poll() ignores negative descriptors.
    const int r = ::poll(p, 3, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (p[2].revents) {
      const ssize_t w = write_no_sigpipe(in_w.get(), pending);
      if (w > 0) pending.remove_prefix(static_cast<std::size_t>(w));
      if (w < 0 && errno != EAGAIN && errno != EINTR) pending = {};  // the command stopped reading
      if (pending.empty()) in_w.reset();
    }
    for (int i = 0; i < 2; ++i) {
      if (!p[i].revents) continue;
      Fd& fd = i == 0 ? out_r : err_r;
      std::string& sink = i == 0 ? result.out : result.err;
      char buf[8192];
      const ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got > 0) {
        sink.append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fd.reset();
      }
    }
  }
  in_w.reset();
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (timed_out) result.err += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  return result;
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// --- /etc/postfix/main.cf: alternate_config_directories ------------------------
//
// Postfix commands run by a non-root user (postqueue, postcat, ...) accept
// "-c DIR" only for a DIR listed there; root needs no listing, but a
// developer inspecting a kept instance may not be root.

// EtcPostfixLock - an exclusive flock(2) on the directory /etc/postfix, held
// while main.cf is read and replaced (processes running test instances in
// parallel edit the same file).
class EtcPostfixLock {
 public:
  EtcPostfixLock() : fd_(::open(kEtcPostfix, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_.get() < 0) throw std::runtime_error(errno_text(std::string("postfix_instance: open ") + kEtcPostfix));
    while (::flock(fd_.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw std::runtime_error(errno_text("postfix_instance: flock /etc/postfix"));
    }
  }

 private:
  Fd fd_;
};

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

// is_test_dir - a config directory of an instance of ours ("/tmp/dmarc-postfix-XXXXXX/etc").
bool is_test_dir(const std::string& dir) {
  const fs::path p(dir);
  return p.parent_path().parent_path() == kTmp &&
         p.parent_path().filename().string().rfind(kDirPrefix, 0) == 0 && p.filename() == "etc";
}

// edit_alternate_dirs - replace the alternate_config_directories list of
// /etc/postfix/main.cf by EDIT(list); the file is created when missing.
// Entries of our own instances whose directory is gone are dropped.
void edit_alternate_dirs(const std::function<void(std::vector<std::string>&)>& edit) {
  EtcPostfixLock lock;
  const fs::path main_cf = fs::path(kEtcPostfix) / "main.cf";
  std::string text;
  if (fs::exists(main_cf)) {
    text = slurp(main_cf);
  } else {
    text =
        "# main.cf - written by the dmarc-milter tests (tests/support/postfix_instance.cpp)\n"
        "# because Postfix was installed with \"No configuration\". The default\n"
        "# instance offers no network service; the list below names the test\n"
        "# instances' configuration directories while they run.\n"
        "compatibility_level = 3.6\n"
        "master_service_disable = inet\n";
  }
  std::vector<std::string> lines = split_lines(text);

  // The last definition wins in Postfix: edit that one, in place.
  const std::string name = "alternate_config_directories";
  std::size_t def_start = lines.size(), def_end = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind(name, 0) != 0) continue;
    std::size_t j = name.size();
    while (j < l.size() && is_space(l[j])) ++j;
    if (j >= l.size() || l[j] != '=') continue;
    def_start = i;
    def_end = i + 1;
    while (def_end < lines.size() && !lines[def_end].empty() && is_space(lines[def_end][0])) ++def_end;
  }
  std::vector<std::string> dirs;
  if (def_start < lines.size()) {
    std::string value = lines[def_start].substr(lines[def_start].find('=') + 1);
    for (std::size_t i = def_start + 1; i < def_end; ++i) value += " " + lines[i];
    std::string item;
    for (char c : value + " ") {
      if (c == ',' || is_space(c)) {
        if (!item.empty()) dirs.push_back(item);
        item.clear();
      } else {
        item += c;
      }
    }
  }
  dirs.erase(std::remove_if(dirs.begin(), dirs.end(),
                            [](const std::string& d) { return is_test_dir(d) && !fs::exists(d); }),
             dirs.end());
  edit(dirs);

  std::vector<std::string> out(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(std::min(def_start, lines.size())));
  std::string def;
  if (!dirs.empty()) {
    def = name + " =";
    for (const auto& d : dirs) def += "\n  " + d;
    out.push_back(def);
  }
  if (def_start < lines.size()) {
    out.insert(out.end(), lines.begin() + static_cast<std::ptrdiff_t>(def_end), lines.end());
  }
  std::string result;
  for (const auto& l : out) result += l + "\n";
  if (result == text) return;
  const fs::path tmp = main_cf.string() + ".dmarc-test." + std::to_string(::getpid());
  write_file(tmp, result, 0644);
  if (::rename(tmp.c_str(), main_cf.c_str()) != 0) {
    const std::string e = errno_text("postfix_instance: rename to " + main_cf.string());
    ::unlink(tmp.c_str());
    throw std::runtime_error(e);
  }
}

// reap_stale_dirs - remove the directories of instances whose test process
// is gone (killed before its destructors ran). Their master was stopped by
// the instance's watchdog; one still running is left alone.
void reap_stale_dirs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kTmp, ec)) {
    const std::string base = entry.path().filename().string();
    if (base.rfind(kDirPrefix, 0) != 0 || !entry.is_directory()) continue;
    std::istringstream owner(slurp(entry.path() / "owner"));
    long pid = 0;
    std::string start;
    if (!(owner >> pid >> start) || pid <= 0) continue;  // being created, or not ours
    if (process_start_time(static_cast<pid_t>(pid)) == start) continue;  // owner alive
    std::istringstream master(slurp(entry.path() / "queue" / "pid" / "master.pid"));
    long mpid = 0;
    if ((master >> mpid) && mpid > 0 && ::kill(static_cast<pid_t>(mpid), 0) == 0) {
      // A zombie does not count as running.
      const std::string stat = slurp("/proc/" + std::to_string(mpid) + "/stat");
      const std::size_t paren = stat.rfind(')');
      if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z') continue;
    }
    if (env_is("DMARC_TEST_KEEP_POSTFIX", "1")) continue;
    fs::remove_all(entry.path(), ec);
  }
}

// --- queue layout ----------------------------------------------------------------

struct QueueDir {
  std::string name;
  bool owner_is_mail_owner = false;
  bool group_is_setgid_group = false;
  mode_t mode = 0700;
};

// queue_layout - the queue subdirectories, as postfix-files(5) of the
// installed Postfix lists them ("$queue_directory/NAME:d:OWNER:GROUP:MODE:...").
std::vector<QueueDir> queue_layout() {
  const fs::path files = fs::path(kEtcPostfix) / "postfix-files";
  std::istringstream in(slurp(files));
  std::vector<QueueDir> out;
  std::string line;
  const std::string prefix = "$queue_directory/";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::vector<std::string> f;
    std::size_t start = 0;
    for (;;) {
      const std::size_t colon = line.find(':', start);
      f.push_back(line.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (f.size() < 5 || f[1] != "d") continue;
    const std::string name = f[0].substr(prefix.size());
    if (name.empty() || name.find('/') != std::string::npos) continue;
    QueueDir d;
    d.name = name;
    d.owner_is_mail_owner = f[2] == "$mail_owner";
    d.group_is_setgid_group = f[3] == "$setgid_group";
    d.mode = static_cast<mode_t>(std::stoul(f[4], nullptr, 8));
    out.push_back(d);
  }
  if (out.empty()) {
    throw std::runtime_error("postfix_instance: no queue directories listed in " + files.string() +
                             " (is Postfix installed? packaging/install-deps.sh --test)");
  }
  return out;
}

// --- waiting for smtpd -------------------------------------------------------------

// listening - 127.0.0.1:PORT is in the LISTEN state (from /proc/net/tcp, so
// that no probe connection reaches smtpd and, through it, the milter).
bool listening(std::uint16_t port) {
  std::istringstream in(slurp("/proc/net/tcp"));
  std::string line;
  std::getline(in, line);  // header
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", static_cast<unsigned>(port));
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    if (!(f >> slot >> local >> remote >> state)) continue;
    if (local == want && state == "0A") return true;
  }
  return false;
}

std::uint16_t free_tcp_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_text("socket"));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    throw std::runtime_error(errno_text("bind 127.0.0.1:0"));
  }
  socklen_t len = sizeof sa;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    throw std::runtime_error(errno_text("getsockname"));
  }
  return ntohs(sa.sin_port);
}

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

// --- SaslServer: the server side of Postfix's Dovecot SASL client ------------------
//
// Postfix (smtpd_sasl_type = dovecot) connects to smtpd_sasl_path, sends
// "VERSION 1 x" and "CPID", reads the server's handshake up to "DONE", then
// for each AUTH command sends "AUTH <id> <mech> service=smtp ... [resp=<b64>]"
// and expects "OK <id> user=<name>", "FAIL <id> ..." or "CONT <id> <b64>"
// (fields separated by TAB). Only PLAIN is offered.

class SaslServer {
 public:
  SaslServer(std::string path, std::map<std::string, std::string> users)
      : path_(std::move(path)), users_(std::move(users)) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path_.size() >= sizeof sa.sun_path) throw std::runtime_error("sasl socket path too long: " + path_);
    std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listen_.get() < 0) throw std::runtime_error(errno_text("sasl: socket"));
    ::unlink(path_.c_str());
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listen_.get(), 16) != 0) {
      throw std::runtime_error(errno_text("sasl: bind/listen " + path_));
    }
    // smtpd connects as the postfix user.
    ::chmod(path_.c_str(), 0666);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("sasl: pipe"));
    stop_r_.reset(p[0]);
    stop_w_.reset(p[1]);
    thread_ = std::thread([this] { run(); });
  }

  ~SaslServer() {
    const char c = 'x';
    (void)!::write(stop_w_.get(), &c, 1);
    if (thread_.joinable()) thread_.join();
    ::unlink(path_.c_str());
  }

  SaslServer(const SaslServer&) = delete;
  SaslServer& operator=(const SaslServer&) = delete;

 private:
  struct Client {
    int fd;
    std::string in;
  };

  void run() {
    std::vector<Client> clients;
    for (;;) {
      std::vector<pollfd> p;
      p.push_back({stop_r_.get(), POLLIN, 0});
      p.push_back({listen_.get(), POLLIN, 0});
      for (const auto& c : clients) p.push_back({c.fd, POLLIN, 0});
      if (::poll(p.data(), p.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[0].revents) break;
      if (p[1].revents & POLLIN) {
        const int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          const std::string hello = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t" + std::to_string(::getpid()) +
                                    "\nCUID\t" + std::to_string(++cuid_) +
                                    "\nCOOKIE\t0123456789abcdef0123456789abcdef\nDONE\n";
          send_all(fd, hello);
          clients.push_back({fd, {}});
        }
      }
      for (std::size_t i = 2; i < p.size(); ++i) {
        if (!p[i].revents) continue;
        Client& c = clients[i - 2];
        char buf[4096];
        const ssize_t n = ::read(c.fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
        c.in.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = c.in.find('\n')) != std::string::npos) {
          const std::string line = c.in.substr(0, nl);
          c.in.erase(0, nl + 1);
          const std::string reply = handle(line);
          if (!reply.empty()) send_all(c.fd, reply);
        }
      }
      clients.erase(std::remove_if(clients.begin(), clients.end(), [](const Client& c) { return c.fd < 0; }),
                    clients.end());
    }
    for (const auto& c : clients) ::close(c.fd);
  }

  static void send_all(int fd, const std::string& s) {
    std::string_view rest(s);
    while (!rest.empty()) {
      const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  static std::vector<std::string> fields(const std::string& line) {
    std::vector<std::string> f;
    std::size_t start = 0;
    for (;;) {
      const std::size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) return f;
      start = tab + 1;
    }
  }

  // verify - the reply to a PLAIN response (RFC 4616: authzid NUL authcid NUL passwd).
  std::string verify(const std::string& id, const std::string& response_b64) const {
    const std::string r = base64_decode(response_b64);
    const std::size_t a = r.find('\0');
    const std::size_t b = a == std::string::npos ? std::string::npos : r.find('\0', a + 1);
    if (b == std::string::npos) return "FAIL\t" + id + "\treason=malformed PLAIN response\n";
    const std::string user = r.substr(a + 1, b - a - 1);
    const std::string password = r.substr(b + 1);
    const auto it = users_.find(user);
    if (it != users_.end() && it->second == password && user.find_first_of("\t\n") == std::string::npos) {
      return "OK\t" + id + "\tuser=" + user + "\n";
    }
    return "FAIL\t" + id + "\treason=wrong user name or password\n";
  }

  std::string handle(const std::string& line) const {
    const std::vector<std::string> f = fields(line);
    if (f[0] == "AUTH" && f.size() >= 3) {
      const std::string& id = f[1];
      if (f[2] != "PLAIN") return "FAIL\t" + id + "\treason=unsupported mechanism\n";
      for (std::size_t i = 3; i < f.size(); ++i) {
        if (f[i].rfind("resp=", 0) == 0) return verify(id, f[i].substr(5));
      }
      return "CONT\t" + id + "\t\n";  // empty challenge: send the response
    }
    if (f[0] == "CONT" && f.size() >= 3) return verify(f[1], f[2]);
    return {};  // VERSION, CPID
  }

  std::string path_;
  std::map<std::string, std::string> users_;
  Fd listen_, stop_r_, stop_w_;
  int cuid_ = 0;
  std::thread thread_;
};

// --- QueuedMessage -------------------------------------------------------------------

std::vector<std::string> QueuedMessage::recipient_addresses() const {
  std::vector<std::string> out;
  for (const auto& r : recipients) out.push_back(r.address);
  return out;
}

// --- PostfixInstance -----------------------------------------------------------------

PostfixInstance::PostfixInstance() : PostfixInstance(PostfixOptions{}) {}

PostfixInstance::PostfixInstance(PostfixOptions options) : options_(std::move(options)) {
  if (::geteuid() != 0) {
    throw std::runtime_error("postfix_instance: the end-to-end tests start Postfix and must run as root");
  }
  const std::string master = options_.daemon_directory + "/master";
  if (::access(master.c_str(), X_OK) != 0 || !fs::is_directory(kEtcPostfix)) {
    throw std::runtime_error("postfix_instance: Postfix is not installed (no " + master +
                             "); run packaging/install-deps.sh --test");
  }
  for (const auto& [name, text] : options_.files) {
    if (name.empty() || name.find('/') != std::string::npos || name == "main.cf" || name == "master.cf" ||
        name[0] == '.') {
      throw std::runtime_error("postfix_instance: bad file name \"" + name + "\" in PostfixOptions::files");
    }
  }
  static const bool reaped = (reap_stale_dirs(), true);
  (void)reaped;
  // A port found free can be taken before the master binds it: try again.
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      start_once();
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
      stop();
    }
  }
  throw std::runtime_error(last_error);
}

PostfixInstance::~PostfixInstance() { stop(); }

void PostfixInstance::write_config() {
  const struct passwd* pw = ::getpwnam("postfix");
  if (!pw) throw std::runtime_error("postfix_instance: no user \"postfix\" (is Postfix installed?)");
  const std::string d = dir_;
  std::ostringstream m;
  m << "# main.cf - generated by tests/support/postfix_instance.cpp\n"
    << "compatibility_level = 3.6\n"
    << "config_directory = " << d << "/etc\n"
    << "queue_directory = " << d << "/queue\n"
    << "data_directory = " << d << "/data\n"
    << "mail_owner = postfix\n"
    << "setgid_group = postdrop\n"
    // No syslog daemon needed: postlogd writes here (and reports its own
    // startup problems to the master's stderr, master.out).
    << "maillog_file = " << d << "/maillog\n"
    << "maillog_file_prefixes = /var, /dev/stdout, " << d << "\n"
    << "myhostname = " << options_.hostname << "\n"
    << "myorigin = $myhostname\n"
    << "mydestination =\n"
    << "relay_domains =\n"
    << "local_recipient_maps =\n"
    << "alias_maps =\n"
    << "alias_database =\n"
    << "biff = no\n"
    << "append_dot_mydomain = no\n"
    << "inet_interfaces = loopback-only\n"
    // IPv6 too, so that XCLIENT ADDR=IPV6:... is accepted (where the kernel has IPv6).
    << "inet_protocols = all\n"
    << "mynetworks = 127.0.0.0/8\n"
    << "smtpd_peername_lookup = no\n"
    << "smtpd_authorized_xclient_hosts = 127.0.0.1\n"
    << "smtpd_sasl_authenticated_header = yes\n"
    << "smtpd_error_sleep_time = 0\n"
    << "in_flow_delay = 0\n"
    << "notify_classes =\n"
    // Every recipient in every domain is a virtual mailbox: the maildir mail/.
    << "virtual_mailbox_domains = static:all\n"
    << "virtual_mailbox_base = " << d << "\n"
    << "virtual_mailbox_maps = static:mail/\n"
    << "virtual_minimum_uid = 1\n"
    << "virtual_uid_maps = static:" << pw->pw_uid << "\n"
    << "virtual_gid_maps = static:" << pw->pw_gid << "\n"
    << "default_transport = error:5.3.0 the test instance delivers nothing off this machine\n"
    << "relay_transport = $default_transport\n"
    << "milter_protocol = " << options_.milter_protocol << "\n"
    << "milter_default_action = " << options_.milter_default_action << "\n"
    << "milter_connect_timeout = 10s\n"
    << "milter_command_timeout = 15s\n"
    << "milter_content_timeout = 30s\n";
  if (!options_.milter.empty()) {
    m << "smtpd_milters = " << options_.milter << "\n";
    if (options_.milter_non_smtpd) m << "non_smtpd_milters = " << options_.milter << "\n";
  }
  if (options_.sasl) {
    m << "smtpd_sasl_auth_enable = yes\n"
      << "smtpd_sasl_type = dovecot\n"
      << "smtpd_sasl_path = " << d << "/auth\n"
      << "smtpd_sasl_security_options = noanonymous\n";
  }
  if (!options_.main_cf.empty()) m << "# PostfixOptions::main_cf\n";
  for (const auto& line : options_.main_cf) m << line << "\n";
  write_file(fs::path(d) / "etc" / "main.cf", m.str());
  age_file(fs::path(d) / "etc" / "main.cf");

  std::ostringstream ms;
  ms << "# master.cf - generated by tests/support/postfix_instance.cpp\n"
     << "# service type private unpriv chroot wakeup maxproc command\n"
     << "127.0.0.1:" << port_ << " inet n - n - - smtpd\n"
     << "pickup    unix  n - n 60 1 pickup\n"
     << "cleanup   unix  n - n - 0 cleanup\n"
     << "qmgr      unix  n - n 300 1 qmgr\n"
     << "rewrite   unix  - - n - - trivial-rewrite\n"
     << "bounce    unix  - - n - 0 bounce\n"
     << "defer     unix  - - n - 0 bounce\n"
     << "trace     unix  - - n - 0 bounce\n"
     << "verify    unix  - - n - 1 verify\n"
     << "flush     unix  n - n 1000? 0 flush\n"
     << "proxymap  unix  - - n - - proxymap\n"
     << "showq     unix  n - n - - showq\n"
     << "error     unix  - - n - - error\n"
     << "retry     unix  - - n - - error\n"
     << "discard   unix  - - n - - discard\n"
     << "virtual   unix  - n n - - virtual\n"
     << "anvil     unix  - - n - 1 anvil\n"
     << "scache    unix  - - n - 1 scache\n"
     << "postlog   unix-dgram n - n - 1 postlogd\n";
  write_file(fs::path(d) / "etc" / "master.cf", ms.str());
  age_file(fs::path(d) / "etc" / "master.cf");
}

void PostfixInstance::start_once() {
  const std::string tmpl_s = std::string(kTmp) + "/" + kDirPrefix + "XXXXXX";
  std::vector<char> tmpl(tmpl_s.begin(), tmpl_s.end());
  tmpl.push_back('\0');
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error(errno_text("postfix_instance: mkdtemp"));
  dir_ = tmpl.data();
  const fs::path dir(dir_);
  // Postfix's daemons, running as the postfix user, pass through it.
  if (::chmod(dir_.c_str(), 0755) != 0) throw std::runtime_error(errno_text("chmod " + dir_));

  const struct passwd* pw = ::getpwnam("postfix");
  const struct group* gr = ::getgrnam("postdrop");
  if (!pw || !gr) throw std::runtime_error("postfix_instance: no postfix user or postdrop group (is Postfix installed?)");
  const uid_t mail_uid = pw->pw_uid;
  const gid_t mail_gid = pw->pw_gid;
  const gid_t setgid_gid = gr->gr_gid;

  make_dir(dir / "etc", 0755, 0, 0);
  make_dir(dir / "data", 0700, mail_uid, mail_gid);
  make_dir(dir / "mail", 0700, mail_uid, mail_gid);
  make_dir(dir / "queue", 0755, 0, 0);
  for (const QueueDir& q : queue_layout()) {
    make_dir(dir / "queue" / q.name, q.mode, q.owner_is_mail_owner ? mail_uid : 0,
             q.group_is_setgid_group ? setgid_gid : 0);
  }
  for (const auto& [name, text] : options_.files) {
    write_file(dir / "etc" / name, text, 0644);
    age_file(dir / "etc" / name);
  }
  {
    std::ofstream owner(dir / "owner");
    owner << ::getpid() << " " << process_start_time(::getpid()) << "\n";
  }

  if (options_.sasl) sasl_ = std::make_unique<SaslServer>(dir_ + "/auth", options_.sasl_users);
  port_ = free_tcp_port();
  write_config();

  const std::string etc = dir_ + "/etc";
  edit_alternate_dirs([&etc](std::vector<std::string>& dirs) {
    if (std::find(dirs.begin(), dirs.end(), etc) == dirs.end()) dirs.push_back(etc);
  });
  registered_ = true;

  // Everything the children need is prepared before fork(): after it, only
  // async-signal-safe calls.
  std::vector<std::string> args = {options_.daemon_directory + "/master", "-c", etc};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out_path = dir_ + "/master.out";
  int watch[2];
  if (::pipe2(watch, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  Fd watch_r(watch[0]);
  watchdog_fd_ = watch[1];
  master_pid_ = ::fork();
  if (master_pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (master_pid_ == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (out_fd >= 0) {
      ::dup2(out_fd, 1);
      ::dup2(out_fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // The master makes itself a session leader, and PR_SET_PDEATHSIG would
  // not survive its changes of effective ids: a watchdog process stops it
  // when the test process dies without running destructors (a crash, the
  // ctest timeout's SIGKILL). It waits for the end of a pipe only this
  // process writes to, in a process group of its own.
  const pid_t master = master_pid_;
  watchdog_pid_ = ::fork();
  if (watchdog_pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (watchdog_pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(watch_r.get(), 0);
    ::close_range(1, ~0U, 0);  // hold none of the test's sockets open
    char c = 0;
    ssize_t n;
    while ((n = ::read(0, &c, 1)) < 0 && errno == EINTR) {
    }
    if (n == 1) ::_exit(0);  // stop() is stopping Postfix itself
    ::kill(master, SIGTERM);
    timespec grace{2, 0};
    while (::nanosleep(&grace, &grace) != 0 && errno == EINTR) {
    }
    ::kill(-master, SIGKILL);
    ::_exit(0);
  }

  const auto deadline = Clock::now() + options_.startup_timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(master_pid_, &status, WNOHANG) == master_pid_) {
      master_pid_ = -1;
      throw std::runtime_error("postfix_instance: the Postfix master exited during startup (status " +
                               std::to_string(status) + "); master output:\n" + slurp(dir / "master.out") +
                               "\nmaillog:\n" + log());
    }
    if (listening(port_)) break;
    if (Clock::now() > deadline) {
      throw std::runtime_error("postfix_instance: smtpd is not listening on 127.0.0.1:" + std::to_string(port_) +
                               " after " + std::to_string(options_.startup_timeout.count()) +
                               " ms; master output:\n" + slurp(dir / "master.out") + "\nmaillog:\n" + log());
    }
    ::usleep(10 * 1000);
  }
}

void PostfixInstance::stop() noexcept {
  stop_group(master_pid_, watchdog_pid_, watchdog_fd_);
  sasl_.reset();
  const bool keep = env_is("DMARC_TEST_KEEP_POSTFIX", "1");
  if (registered_ && !keep) {
    const std::string etc = dir_ + "/etc";
    try {
      edit_alternate_dirs([&etc](std::vector<std::string>& dirs) {
        dirs.erase(std::remove(dirs.begin(), dirs.end(), etc), dirs.end());
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "postfix_instance: %s\n", e.what());
    }
  }
  registered_ = false;
  if (!dir_.empty()) {
    if (keep) {
      std::fprintf(stderr, "postfix_instance: keeping %s (DMARC_TEST_KEEP_POSTFIX=1)\n", dir_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

std::vector<std::string> PostfixInstance::delivered() const {
  return read_files_oldest_first(fs::path(maildir()) / "new");
}

std::vector<std::string> PostfixInstance::wait_delivered(std::size_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::vector<std::string> got = delivered();
    if (got.size() >= n) return got;
    if (Clock::now() > deadline) {
      throw std::runtime_error("postfix_instance: " + std::to_string(got.size()) + " message(s) delivered, " +
                               std::to_string(n) + " expected within " + std::to_string(timeout.count()) +
                               " ms; maillog:\n" + log());
    }
    ::usleep(20 * 1000);
  }
}

std::vector<QueuedMessage> PostfixInstance::queue() const {
  const std::vector<std::string> args = {options_.command_directory + "/postqueue", "-c", config_dir(), "-j"};
  const CommandResult r = run_command(args);
  if (r.status != 0) {
    throw std::runtime_error("postfix_instance: " + joined(args) + " failed (status " + std::to_string(r.status) +
                             "): " + r.err + "\nmaillog:\n" + log());
  }
  std::vector<QueuedMessage> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      QueuedMessage m;
      m.queue_name = j.value("queue_name", "");
      m.queue_id = j.value("queue_id", "");
      m.sender = j.value("sender", "");
      // showq shows the null sender as empty_address_recipient's default;
      // cleanup qualifies a real "MAILER-DAEMON" sender (@$myorigin).
      if (m.sender == "MAILER-DAEMON") m.sender.clear();
      m.message_size = j.value("message_size", std::size_t{0});
      if (j.contains("recipients")) {
        for (const auto& rj : j.at("recipients")) {
          QueuedRecipient rcpt;
          rcpt.address = rj.value("address", "");
          rcpt.delay_reason = rj.value("delay_reason", "");
          m.recipients.push_back(rcpt);
        }
      }
      out.push_back(m);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("postfix_instance: cannot parse postqueue -j line \"" + line + "\": " + e.what());
    }
  }
  return out;
}

std::vector<QueuedMessage> PostfixInstance::held() const {
  std::vector<QueuedMessage> all = queue();
  std::vector<QueuedMessage> out;
  for (auto& m : all) {
    if (m.queue_name == "hold") out.push_back(std::move(m));
  }
  return out;
}

std::string PostfixInstance::log() const {
  if (dir_.empty()) return {};
  return slurp(fs::path(dir_) / "maillog");
}

std::string PostfixInstance::postconf(const std::string& name) const {
  const std::vector<std::string> args = {options_.command_directory + "/postconf", "-c", config_dir(), "-h", name};
  const CommandResult r = run_command(args);
  if (r.status != 0) {
    throw std::runtime_error("postfix_instance: " + joined(args) + " failed: " + r.err);
  }
  std::string v = r.out;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

void PostfixInstance::sendmail(const std::string& message, const std::string& sender,
                               const std::vector<std::string>& recipients) const {
  std::vector<std::string> args = {options_.command_directory + "/sendmail", "-C", config_dir(), "-i",
                                   "-f", sender.empty() ? "<>" : sender, "--"};
  args.insert(args.end(), recipients.begin(), recipients.end());
  const CommandResult r = run_command(args, message);
  if (r.status != 0) {
    throw std::runtime_error("postfix_instance: " + joined(args) + " failed (status " + std::to_string(r.status) +
                             "): " + r.err + "\nmaillog:\n" + log());
  }
}

// --- message helpers ------------------------------------------------------------------

namespace {

// header_lines - the physical lines of the header section (without line ends).
std::vector<std::string_view> header_lines(std::string_view message) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t nl = message.find('\n', start);
    std::size_t end = nl == std::string_view::npos ? message.size() : nl;
    std::string_view line = message.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// fields - (name, unfolded value) of each header field.
std::vector<std::pair<std::string, std::string>> header_fields(std::string_view message) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view line : header_lines(message)) {
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      out.back().second += line;
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && (value[0] == ' ' || value[0] == '\t')) value.remove_prefix(1);
    out.emplace_back(name, std::string(value));
  }
  return out;
}

}  // namespace

std::vector<std::string> header_values(std::string_view message, std::string_view name) {
  std::vector<std::string> out;
  for (auto& [n, v] : header_fields(message)) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

std::vector<std::string> header_names(std::string_view message) {
  std::vector<std::string> out;
  for (auto& [n, v] : header_fields(message)) out.push_back(n);
  return out;
}

std::string message_body(std::string_view message) {
  const std::size_t lf = message.find("\n\n");
  const std::size_t crlf = message.find("\r\n\r\n");
  if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf < lf)) {
    return std::string(message.substr(crlf + 4));
  }
  if (lf != std::string_view::npos) return std::string(message.substr(lf + 2));
  return {};
}

}  // namespace dmarc::test
