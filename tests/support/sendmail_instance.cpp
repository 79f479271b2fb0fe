// sendmail_instance.cpp - a private Sendmail on 127.0.0.1 for end-to-end tests
#include "support/sendmail_instance.hpp"
#include "support/process_group.hpp"
#include "support/temp_dir.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace dmarc::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kDefaultUnpacked = "/var/cache/dmarc-milter-tests";
constexpr const char* kDirPrefix = "sm-";

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void make_dir(const fs::path& p, mode_t mode) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) {
    throw std::runtime_error(errno_text("sendmail_instance: mkdir " + p.string()));
  }
  if (::chmod(p.c_str(), mode) != 0) throw std::runtime_error(errno_text("sendmail_instance: chmod " + p.string()));
}

bool running_not_zombie(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// listening - 127.0.0.1:PORT is in the LISTEN state in this thread's
// network namespace (from /proc, so that no connection is made: a probe
// would be a session in Sendmail's log).
bool listening(std::uint16_t port) {
  std::istringstream in(slurp("/proc/thread-self/net/tcp"));
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state;
    if (!(f >> sl >> local >> remote >> state)) continue;
    if (local == want && state == "0A") return true;
  }
  return false;
}

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errno_text("socket"));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(errno_text("bind"));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

struct CommandResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// run_command - ARGS (no shell), stdin from INPUT_FILE ("" = /dev/null),
// stdout and stderr collected; killed after TIMEOUT.
CommandResult run_command(const std::vector<std::string>& args, const std::string& input_file = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error(errno_text("pipe"));
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string in_path = input_file.empty() ? "/dev/null" : input_file;
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    const int in = ::open(in_path.c_str(), O_RDONLY);
    if (in >= 0) ::dup2(in, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  int fds[2] = {out_pipe[0], err_pipe[0]};
  CommandResult r;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int n = ::poll(p, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (!p[i].revents) continue;
      char buf[8192];
      const ssize_t got = ::read(fds[i], buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (timed_out) r.err += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  return r;
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// sasl_plugin_dir - Cyrus SASL's plugin directory (where it also looks for
// Sendmail.conf), or "".
std::string sasl_plugin_dir() {
  glob_t g{};
  std::string found;
  if (::glob("/usr/lib/*-linux-gnu*/sasl2", 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
  ::globfree(&g);
  if (found.empty() && fs::is_directory("/usr/lib/sasl2")) found = "/usr/lib/sasl2";
  return found;
}

std::string state_root() { return std::string(DMARC_BINARY_DIR) + "/sendmail-test"; }

// reap_stale_dirs - remove the directories of instances whose test process
// is gone; one whose Sendmail still runs is left alone.
void reap_stale_dirs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_root(), ec)) {
    const std::string base = entry.path().filename().string();
    if (base.rfind(kDirPrefix, 0) != 0 || !entry.is_directory()) continue;
    std::istringstream owner(slurp(entry.path() / "owner"));
    long pid = 0;
    std::string start;
    if (!(owner >> pid >> start) || pid <= 0) continue;
    if (process_start_time(static_cast<pid_t>(pid)) == start) continue;
    std::istringstream daemon(slurp(entry.path() / "sendmail.pid"));
    long dpid = 0;
    if ((daemon >> dpid) && running_not_zombie(static_cast<pid_t>(dpid))) continue;
    if (env_is("DMARC_TEST_KEEP_SENDMAIL", "1")) continue;
    fs::remove_all(entry.path(), ec);
  }
}

// m4 quoting: the values used here never contain quotes.
std::string q(const std::string& s) { return "`" + s + "'"; }

}  // namespace

// --- the network namespace ------------------------------------------------------

void enter_private_network(const std::vector<std::string>& addresses) {
  static std::mutex m;
  static bool done = false;
  std::lock_guard<std::mutex> lock(m);
  if (done) return;
  if (::unshare(CLONE_NEWNET) != 0) throw std::runtime_error(errno_text("enter_private_network: unshare(CLONE_NEWNET)"));
  done = true;
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw std::runtime_error(errno_text("enter_private_network: socket"));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{s};
  ifreq lo{};
  std::strncpy(lo.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &lo) != 0) throw std::runtime_error(errno_text("enter_private_network: SIOCGIFFLAGS lo"));
  lo.ifr_flags = static_cast<short>(lo.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s, SIOCSIFFLAGS, &lo) != 0) throw std::runtime_error(errno_text("enter_private_network: SIOCSIFFLAGS lo"));
  int n = 0;
  for (const std::string& a : addresses) {
    ifreq r{};
    std::snprintf(r.ifr_name, IFNAMSIZ, "lo:%d", ++n);
    auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
    sin->sin_family = AF_INET;
    if (::inet_pton(AF_INET, a.c_str(), &sin->sin_addr) != 1) {
      throw std::runtime_error("enter_private_network: not an IPv4 address: " + a);
    }
    if (::ioctl(s, SIOCSIFADDR, &r) != 0) throw std::runtime_error(errno_text("enter_private_network: SIOCSIFADDR " + a));
    auto* mask = reinterpret_cast<sockaddr_in*>(&r.ifr_netmask);
    mask->sin_family = AF_INET;
    mask->sin_addr.s_addr = 0xffffffffU;
    if (::ioctl(s, SIOCSIFNETMASK, &r) != 0) {
      throw std::runtime_error(errno_text("enter_private_network: SIOCSIFNETMASK " + a));
    }
  }
}

// --- the instance -------------------------------------------------------------------

SendmailInstance::SendmailInstance(SendmailOptions options) : options_(std::move(options)) {
  if (::geteuid() != 0) throw std::runtime_error("sendmail_instance: must run as root");
  root_ = options_.unpacked;
  if (root_.empty()) {
    const char* env = std::getenv("DMARC_TEST_UNPACKED");
    // DMARC_TEST_UNPACKED is install-deps.sh's directory; the tree is its root/.
    root_ = std::string(env && *env ? env : kDefaultUnpacked) + "/root";
  }
  if (!fs::exists(root_ + "/usr/libexec/sendmail/sendmail") || !fs::is_directory(root_ + "/usr/share/sendmail/cf")) {
    throw std::runtime_error("sendmail_instance: no unpacked Sendmail under " + root_ +
                             " (packaging/install-deps.sh --test unpacks it; DMARC_TEST_UNPACKED names another tree)");
  }
  try {
    start_once();
  } catch (...) {
    stop();
    throw;
  }
}

SendmailInstance::~SendmailInstance() { stop(); }

std::string SendmailInstance::mc() const { return slurp(fs::path(dir_) / "test.mc"); }

std::string SendmailInstance::run(const std::string& program, const std::vector<std::string>& args, int& status,
                                  const std::string& input) const {
  std::vector<std::string> argv = {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh",
                                   dir_ + "/ns-run.sh", root_ + "/usr/libexec/sendmail/" + program};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string in_file;
  if (!input.empty()) {
    in_file = dir_ + "/stdin." + std::to_string(::getpid());
    write_file(in_file, input, 0600);
  }
  const CommandResult r = run_command(argv, in_file);
  if (!in_file.empty()) ::unlink(in_file.c_str());
  status = r.status;
  return r.out + r.err;
}

void SendmailInstance::write_files() {
  const fs::path d(dir_);
  const std::string& S = dir_;
  make_dir(d / "queue", 0700);
  make_dir(d / "out", 01777);  // the file mailer runs as Sendmail's default user
  make_dir(d / "etc", 0755);
  make_dir(d / "dev", 0755);
  for (const char* n : {"null", "zero", "random", "urandom"}) write_file(d / "dev" / n, "", 0644);

  write_file(d / "etc" / "hosts",
             "127.0.0.1 localhost\n127.0.0.1 " + options_.hostname + " " +
                 options_.hostname.substr(0, options_.hostname.find('.')) + "\n");
  write_file(d / "etc" / "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
  write_file(d / "service.switch", "hosts files\naliases files\n");
  std::string aliases;
  for (const auto& [name, target] : options_.aliases) aliases += name + ": " + target + "\n";
  write_file(d / "aliases", aliases);
  std::string mailertable;
  for (const auto& dom : options_.relay_domains) mailertable += dom + " file:" + dom + "\n";
  write_file(d / "mailertable", mailertable);
  // deliver.sh RCPT: the message on stdin into out/RCPT.PID, whole or not at all.
  write_file(d / "deliver.sh",
             "#!/bin/sh\n"
             "# deliver.sh - the file mailer of tests/support/sendmail_instance.cpp\n"
             "umask 022\n"
             "f=\"" + S + "/out/$1.$$\"\n"
             "cat > \"$f.tmp\" && mv \"$f.tmp\" \"$f\"\n",
             0755);

  std::string plugin_dir;
  if (!options_.sasl_users.empty()) {
    plugin_dir = sasl_plugin_dir();
    if (plugin_dir.empty()) throw std::runtime_error("sendmail_instance: no Cyrus SASL plugin directory (libsasl2-modules)");
    make_dir(d / "sasl2", 0755);
    write_file(d / "sasl2" / "Sendmail.conf",
               "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: " + S +
                   "/sasl2/sasldb2\nmech_list: PLAIN LOGIN\n");
  }

  // ns-run.sh: the view of the system Sendmail gets (see the header).
  std::string ns =
      "#!/bin/sh\n"
      "# ns-run.sh - run a Sendmail program in its own mount namespace (tests/support/sendmail_instance.cpp)\n"
      "set -e\n"
      "mount --bind " + S + "/etc/hosts /etc/hosts\n"
      "mount --bind " + S + "/etc/resolv.conf /etc/resolv.conf\n";
  if (!plugin_dir.empty()) {
    ns += "mount -t overlay overlay -o lowerdir=" + S + "/sasl2:" + plugin_dir + " " + plugin_dir + "\n";
  }
  ns += "for n in null zero random urandom; do mount --bind /dev/$n " + S + "/dev/$n; done\n"
        "mount --rbind " + S + "/dev /dev\n"
        "exec \"$@\"\n";
  write_file(d / "ns-run.sh", ns, 0755);

  std::ostringstream mc;
  mc << "divert(-1)\n"
     << "# test.mc - generated by tests/support/sendmail_instance.cpp\n"
     << "divert(0)dnl\n"
     << "OSTYPE(" << q("linux") << ")dnl\n"
     << "define(" << q("confDOMAIN_NAME") << ", " << q(options_.hostname) << ")dnl\n"
     << "define(" << q("QUEUE_DIR") << ", " << q(S + "/queue") << ")dnl\n"
     << "define(" << q("confPID_FILE") << ", " << q(S + "/sendmail.pid") << ")dnl\n"
     << "define(" << q("ALIAS_FILE") << ", " << q(S + "/aliases") << ")dnl\n"
     << "define(" << q("STATUS_FILE") << ", " << q("") << ")dnl\n"
     << "define(" << q("confSERVICE_SWITCH_FILE") << ", " << q(S + "/service.switch") << ")dnl\n"
     << "define(" << q("confHOSTS_FILE") << ", " << q(S + "/etc/hosts") << ")dnl\n"
     << "define(" << q("confDONT_PROBE_INTERFACES") << ", " << q("True") << ")dnl\n"
     << "define(" << q("confLOG_LEVEL") << ", " << q("14") << ")dnl\n"
     << "define(" << q("confTO_IDENT") << ", " << q("0s") << ")dnl\n"
     << "FEATURE(" << q("no_default_msa") << ")dnl\n"  // no second daemon on port 587
     << "FEATURE(" << q("nocanonify") << ")dnl\n"
     << "FEATURE(" << q("accept_unresolvable_domains") << ")dnl\n"
     << "FEATURE(" << q("mailertable") << ", " << q("hash " + S + "/mailertable") << ")dnl\n";
  for (const auto& dom : options_.relay_domains) mc << "RELAY_DOMAIN(" << q(dom) << ")dnl\n";
  for (const auto& dom : options_.local_domains) mc << "LOCAL_DOMAIN(" << q(dom) << ")dnl\n";
  mc << "DAEMON_OPTIONS(" << q("Port=" + std::to_string(port_) + ", Addr=127.0.0.1, Name=MTA") << ")dnl\n";
  if (!options_.sasl_users.empty()) {
    mc << "define(" << q("confAUTH_MECHANISMS") << ", " << q("PLAIN LOGIN") << ")dnl\n"
       << "TRUST_AUTH_MECH(" << q("PLAIN LOGIN") << ")dnl\n";
  }
  if (!options_.milter.empty()) {
    std::string spec = "S=" + options_.milter;
    if (!options_.milter_flags.empty()) spec += ", F=" + options_.milter_flags;
    if (!options_.milter_timeouts.empty()) spec += ", T=" + options_.milter_timeouts;
    mc << "INPUT_MAIL_FILTER(" << q("dmarc-milter") << ", " << q(spec) << ")dnl\n";
  }
  for (const auto& [stage, list] : options_.milter_macros) {
    std::string upper;
    for (char c : stage) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    mc << "define(" << q("confMILTER_MACROS_" + upper) << ", " << q(list) << ")dnl\n";
  }
  for (const auto& l : options_.mc_lines) mc << l << "\n";
  mc << "MAILER(" << q("smtp") << ")dnl\n"
     << "MAILER_DEFINITIONS\n"
     << "Mfile, P=" << S << "/deliver.sh, F=lsDFMnq, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP/HdrToSMTP,\n"
     << "\tT=DNS/RFC822/SMTP, A=deliver.sh $u\n";
  write_file(d / "test.mc", mc.str());

  const std::string cf_dir = root_ + "/usr/share/sendmail/cf";
  const CommandResult m4 = run_command({"/usr/bin/m4", "-D_CF_DIR_=" + cf_dir + "/", cf_dir + "/m4/cf.m4", S + "/test.mc"});
  if (m4.status != 0 || m4.out.empty()) {
    throw std::runtime_error("sendmail_instance: m4 failed (status " + std::to_string(m4.status) + "): " + m4.err);
  }
  write_file(d / "test.cf", m4.out);

  int st = 0;
  std::string out = run("makemap", {"-C", cf_path(), "hash", S + "/mailertable"}, st, mailertable);
  if (st != 0) throw std::runtime_error("sendmail_instance: makemap mailertable failed: " + out);
  out = run("sendmail", {"-C", cf_path(), "-bi"}, st);
  if (st != 0) throw std::runtime_error("sendmail_instance: sendmail -bi failed: " + out);
  for (const auto& [user, password] : options_.sasl_users) {
    const std::string pw_file = S + "/sasl2/pw";
    write_file(pw_file, password, 0600);
    const CommandResult r = run_command(
        {"/usr/sbin/saslpasswd2", "-p", "-c", "-f", S + "/sasl2/sasldb2", "-u", options_.hostname, user}, pw_file);
    ::unlink(pw_file.c_str());
    if (r.status != 0) {
      throw std::runtime_error("sendmail_instance: saslpasswd2 failed (status " + std::to_string(r.status) +
                               "; package sasl2-bin): " + r.out + r.err);
    }
  }
}

void SendmailInstance::log_loop() {
  const std::string path = dir_ + "/maillog";
  const int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  char buf[65536];
  while (!log_stop_.load()) {
    pollfd p{log_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(log_fd_, buf, sizeof buf, 0);
    if (n <= 0 || out < 0) continue;
    std::string line(buf, static_cast<std::size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\0')) line.pop_back();
    line += '\n';
    (void)!::write(out, line.data(), line.size());
  }
  if (out >= 0) ::close(out);
}

void SendmailInstance::start_once() {
  make_dir(state_root(), 0755);
  reap_stale_dirs();
  std::string tmpl = state_root() + "/" + kDirPrefix + "XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error(errno_text("sendmail_instance: mkdtemp"));
  dir_ = tmpl;
  if (::chmod(dir_.c_str(), 0755) != 0) throw std::runtime_error(errno_text("chmod " + dir_));
  {
    std::ofstream owner(fs::path(dir_) / "owner");
    owner << ::getpid() << " " << process_start_time(::getpid()) << "\n";
  }
  port_ = free_tcp_port();

  // The log socket first: write_files() runs Sendmail programs that log.
  make_dir(fs::path(dir_) / "dev", 0755);
  log_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (log_fd_ < 0) throw std::runtime_error(errno_text("sendmail_instance: socket"));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  const std::string log_path = dir_ + "/dev/log";
  if (log_path.size() >= sizeof un.sun_path) throw std::runtime_error("sendmail_instance: path too long: " + log_path);
  std::memcpy(un.sun_path, log_path.c_str(), log_path.size() + 1);
  if (::bind(log_fd_, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) {
    throw std::runtime_error(errno_text("sendmail_instance: bind " + log_path));
  }
  ::chmod(log_path.c_str(), 0666);
  log_thread_ = std::thread([this] { log_loop(); });

  write_files();

  std::vector<std::string> args = {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh",
                                   dir_ + "/ns-run.sh", root_ + "/usr/libexec/sendmail/sendmail",
                                   "-C", cf_path(), "-bD"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out_path = dir_ + "/sendmail.out";
  int watch[2];
  if (::pipe2(watch, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe"));
  watchdog_fd_ = watch[1];
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (pid_ == 0) {
    ::setpgid(0, 0);  // its own group: the daemon and its session children go together
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
  ::setpgid(pid_, pid_);  // also here: no race with the kill below
  // The watchdog: stops Sendmail when the test process dies without
  // running destructors (it reads the end of a pipe only we write to).
  const pid_t daemon = pid_;
  watchdog_pid_ = ::fork();
  if (watchdog_pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (watchdog_pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(watch[0], 0);
    ::close_range(1, ~0U, 0);
    char c = 0;
    ssize_t n;
    while ((n = ::read(0, &c, 1)) < 0 && errno == EINTR) {
    }
    if (n == 1) ::_exit(0);  // stop() is stopping Sendmail itself
    ::kill(daemon, SIGTERM);
    timespec grace{2, 0};
    while (::nanosleep(&grace, &grace) != 0 && errno == EINTR) {
    }
    ::kill(-daemon, SIGKILL);
    ::_exit(0);
  }
  ::close(watch[0]);

  const auto deadline = Clock::now() + options_.startup_timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("sendmail_instance: Sendmail exited during startup (status " + std::to_string(status) +
                               "); output:\n" + slurp(out_path) + "\nlog:\n" + log());
    }
    if (listening(port_)) break;
    if (Clock::now() > deadline) {
      throw std::runtime_error("sendmail_instance: Sendmail is not listening on 127.0.0.1:" + std::to_string(port_) +
                               " after " + std::to_string(options_.startup_timeout.count()) + " ms; output:\n" +
                               slurp(out_path) + "\nlog:\n" + log());
    }
    ::usleep(20 * 1000);
  }
}

void SendmailInstance::stop() noexcept {
  stop_group(pid_, watchdog_pid_, watchdog_fd_);
  log_stop_.store(true);
  if (log_thread_.joinable()) log_thread_.join();
  if (log_fd_ >= 0) ::close(std::exchange(log_fd_, -1));
  if (!dir_.empty()) {
    if (env_is("DMARC_TEST_KEEP_SENDMAIL", "1")) {
      std::fprintf(stderr, "sendmail_instance: keeping %s (DMARC_TEST_KEEP_SENDMAIL=1)\n", dir_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

std::vector<std::string> SendmailInstance::delivered() const {
  return read_files_oldest_first(fs::path(dir_) / "out", ".tmp");
}

std::vector<std::string> SendmailInstance::wait_delivered(std::size_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::vector<std::string> got = delivered();
    if (got.size() >= n) return got;
    if (Clock::now() > deadline) {
      throw std::runtime_error("sendmail_instance: " + std::to_string(got.size()) + " message(s) delivered, " +
                               std::to_string(n) + " expected within " + std::to_string(timeout.count()) +
                               " ms; log:\n" + log());
    }
    ::usleep(20 * 1000);
  }
}

std::string SendmailInstance::mailq(bool quarantined) const {
  std::vector<std::string> args = {"-C", cf_path(), "-bp"};
  if (quarantined) args.push_back("-qQ");
  int st = 0;
  std::string out = run("sendmail", args, st);
  if (st != 0) throw std::runtime_error("sendmail_instance: sendmail " + joined(args) + " failed: " + out);
  return out;
}

namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string strip_angles(std::string s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return s;
}

// parse_mailq - the entries of "sendmail -bp" output:
//   6B7HVCfT014286      41 Mon Dec  7 17:31 <alice@reject.example>
//        QUARANTINE: the reason
//                                           <bob@rcpt.example>
std::vector<SendmailQueued> parse_mailq(const std::string& text) {
  std::vector<SendmailQueued> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::isalnum(static_cast<unsigned char>(line[0]))) {
      std::istringstream f(line);
      std::string id, size;
      if (!(f >> id >> size) || !std::all_of(size.begin(), size.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        continue;
      while (!id.empty() && !std::isalnum(static_cast<unsigned char>(id.back()))) id.pop_back();  // "*", "X", "-" marks
      SendmailQueued e;
      e.queue_id = id;
      std::string word, last;
      while (f >> word) last = word;
      e.sender = strip_angles(last);
      out.push_back(e);
      continue;
    }
    if (out.empty()) continue;
    const std::string t = trim(line);
    if (t.rfind("QUARANTINE:", 0) == 0) {
      out.back().quarantine_reason = trim(t.substr(11));
    } else if (!t.empty() && t.front() == '<') {
      out.back().recipients.push_back(strip_angles(t.substr(0, t.find('>') + 1)));
    }
  }
  return out;
}

}  // namespace

std::vector<SendmailQueued> SendmailInstance::queue() const { return parse_mailq(mailq(false)); }

std::vector<SendmailQueued> SendmailInstance::quarantined() const { return parse_mailq(mailq(true)); }

std::string SendmailInstance::log() const {
  if (dir_.empty()) return {};
  return slurp(fs::path(dir_) / "maillog");
}

bool SendmailInstance::wait_log(const std::string& text, std::chrono::milliseconds timeout) const {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (log().find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace dmarc::test
