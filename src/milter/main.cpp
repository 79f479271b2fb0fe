// main.cpp - dmarc-milter: command line, daemon life cycle, reload, shutdown
//
// Life cycle (see dmarc-milter(8)):
//   read the configuration (errors name FILE:LINE, exit 78) -> build the
//   engine -> register with libmilter -> detach (unless -f) -> open the
//   socket with UMask -> write the pid file -> drop privileges (UserID) ->
//   smfi_main. SIGHUP reloads the configuration atomically; SIGTERM stops
//   accepting connections and lets open messages finish (up to 30 s).
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "dmarc/build_config.hpp"
#include "dmarc/config/config.hpp"
#include "engine.hpp"
#include "eval.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "milter.hpp"
#include "milter_io.hpp"

using namespace dmarc;
using namespace dmarc::milter;

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;
constexpr int kExitOsErr = 71;
constexpr auto kDrainTimeout = std::chrono::seconds(30);

std::string g_config_path;
std::atomic<bool> g_reload_enabled{false};
// What outlives a reload: the DNS cache (engine.hpp Services).
Services g_services;

// build_engine - an engine for CONFIG on the long-lived services.
Expected<std::shared_ptr<const Engine>, std::string> build_engine(const Config& config) {
  auto resolver = g_services.resolver_for(config);
  if (!resolver) return Unexpected("DNS: " + resolver.error());
  return Engine::build(config, resolver.value());
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: dmarc-milter [-c config] [-f] [-p socket] [-u user[:group]] [-P pidfile]\n"
               "       dmarc-milter [-c config] -n\n"
               "       dmarc-milter [-c config] --eval FILE --ip ADDR [--helo NAME] [--mail-from ADDR]\n"
               "                    [--rcpt ADDR]... [--auth LOGIN]\n"
               "       dmarc-milter -V\n");
}

// start_recorder - the recorder for ReportStore (null for none).
std::shared_ptr<Recorder> start_recorder(const Config& config) {
  if (config.report_store == "none") return nullptr;
  auto rec = std::make_shared<Recorder>(config.report_store, config.report_queue_size);
  rec->start();
  return rec;
}

// reload - SIGHUP: read the configuration again; a bad file keeps the
// running configuration and says why.
void reload() {
  auto cfg = load_config(g_config_path);
  if (!cfg) {
    spdlog::error("reload failed, keeping the running configuration: {}", cfg.error().str());
    return;
  }
  for (const auto& w : cfg->warnings) spdlog::warn("{}", w.str());
  auto old = current_engine();
  if (old && (cfg->socket != old->config.socket || cfg->user != old->config.user ||
              cfg->metrics_listen != old->config.metrics_listen))
    spdlog::warn("reload: Socket, UserID and MetricsListen changes take effect at the next restart");
  // Keep the command line's overrides.
  if (old) {
    cfg->socket = old->config.socket;
    cfg->user = old->config.user;
    cfg->pid_file = old->config.pid_file;
    cfg->metrics_listen = old->config.metrics_listen;
  }
  auto engine = build_engine(cfg.value());
  if (!engine) {
    spdlog::error("reload failed, keeping the running configuration: {}", engine.error());
    return;
  }
  setup_logging(engine.value()->config, !engine.value()->config.syslog);
  set_current_engine(engine.value());
  // A changed ReportStore: a new recorder takes the next messages; the old
  // one flushes what it holds (here, in the signal thread) and stops.
  auto rec = current_recorder();
  const std::string& store = engine.value()->config.report_store;
  if ((rec ? rec->uri() : std::string("none")) != store ||
      (rec && engine.value()->config.report_queue_size != rec->capacity())) {
    set_recorder(start_recorder(engine.value()->config));
    if (rec) rec->stop();
    spdlog::info("report store: {}", store);
  }
  spdlog::info("configuration reloaded from {}", g_config_path);
}

bool daemonize() {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid > 0) _exit(0);
  if (setsid() < 0) return false;
  pid = fork();
  if (pid < 0) return false;
  if (pid > 0) _exit(0);
  if (chdir("/") != 0) return false;
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
  }
  return true;
}

std::set<int> socket_fds() {
  std::set<int> out;
  for (int fd = 0; fd < 1024; ++fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) out.insert(fd);
  }
  return out;
}

// drop_privileges - UserID "user[:group]".
bool drop_privileges(const std::string& spec, const std::string& unix_socket) {
  std::string user = spec.substr(0, spec.find(':'));
  std::string group = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  struct passwd* pw = getpwnam(user.c_str());
  if (!pw) {
    spdlog::error("UserID: no such user '{}'", user);
    return false;
  }
  gid_t gid = pw->pw_gid;
  if (!group.empty()) {
    struct group* gr = getgrnam(group.c_str());
    if (!gr) {
      spdlog::error("UserID: no such group '{}'", group);
      return false;
    }
    gid = gr->gr_gid;
  }
  // Started as that user already (systemd User=, the packaged unit): there
  // is nothing to drop, and setgroups() would fail without CAP_SETGID. The
  // group must then be the process's own or one of its supplementary groups
  // (systemd SupplementaryGroups=): the socket can be given to it, the
  // process cannot change to it.
  if (geteuid() != 0 && geteuid() == pw->pw_uid) {
    bool member = getegid() == gid;
    if (!member) {
      int n = getgroups(0, nullptr);
      std::vector<gid_t> groups(n > 0 ? static_cast<std::size_t>(n) : 0);
      if (n > 0 && getgroups(n, groups.data()) == n)
        member = std::find(groups.begin(), groups.end(), gid) != groups.end();
    }
    if (!member) {
      spdlog::error("UserID {}: already running as {} but not in that group (started as the user: give it the "
                    "group, e.g. systemd SupplementaryGroups=)",
                    spec, user);
      return false;
    }
    if (!unix_socket.empty() && chown(unix_socket.c_str(), pw->pw_uid, gid) != 0)
      spdlog::warn("cannot chown {}: {}", unix_socket, std::strerror(errno));
    return true;
  }
  // The MTA reaches the unix socket through its group (UMask 007: rw-rw----).
  if (!unix_socket.empty() && chown(unix_socket.c_str(), pw->pw_uid, gid) != 0)
    spdlog::warn("cannot chown {}: {}", unix_socket, std::strerror(errno));
  if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
    spdlog::error("cannot become {}: {}", spec, std::strerror(errno));
    return false;
  }
  if (setuid(0) == 0) {
    spdlog::error("privileges could be regained after dropping them; stopping");
    return false;
  }
  return true;
}

std::string unix_socket_path(const std::string& socket) {
  if (socket.rfind("unix:", 0) == 0) return socket.substr(5);
  if (socket.rfind("local:", 0) == 0) return socket.substr(6);
  return {};
}

}  // namespace

// libmilter's signal thread stops the milter on SIGHUP as on SIGTERM
// (libmilter/signal.c), and Debian's libmilter (built with its worker
// pool) stops serving open connections as soon as it stops. So libmilter's
// call to sigwait(), from that one thread, comes here: the build links
// libmilter.a with "ld -r --wrap=sigwait" (CMakeLists.txt), which renames
// libmilter's reference and no other.
//   SIGHUP   reload() runs here and the wait goes on;
//   SIGTERM  new messages are refused (451 4.3.2), messages in progress
//            finish (up to kDrainTimeout), then libmilter gets the signal
//            and stops;
//   others   are returned to libmilter unchanged.
// Should libmilter ever wait for signals another way, SIGHUP would become
// a clean exit 0 that systemd does not restart: main() checks that this
// function is reached and stops the milter with an error if not.
std::atomic<bool> g_sigwait_reached{false};

extern "C" int __wrap_sigwait(const sigset_t* set, int* sig) {
  g_sigwait_reached = true;
  for (;;) {
    int r = ::sigwait(set, sig);
    if (r != 0 || !g_reload_enabled.load()) return r;
    try {
      if (*sig == SIGHUP) {
        reload();
        continue;
      }
      if (*sig == SIGTERM) {
        set_draining(true);
        int open = open_messages();
        if (open > 0) spdlog::info("stopping: letting {} open message(s) finish", open);
        auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
        while (open_messages() > 0 && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (open_messages() > 0) spdlog::warn("stopping with {} message(s) still open", open_messages());
      }
    } catch (const std::exception& e) {
      spdlog::error("signal handling failed: {}", e.what());
    } catch (...) {
      spdlog::error("signal handling failed");
    }
    return r;
  }
}

namespace {
// watch_sigwait - libmilter starts its signal thread at once in smfi_main;
// if it has not called sigwait through us within kSigwaitGrace, SIGHUP and
// SIGTERM would not do what dmarc-milter(8) says: stop with an error.
constexpr auto kSigwaitGrace = std::chrono::seconds(10);
std::atomic<bool> g_in_main{false};

void watch_sigwait() {
  std::thread([] {
    auto deadline = std::chrono::steady_clock::now() + kSigwaitGrace;
    while (!g_sigwait_reached && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_sigwait_reached || !g_in_main) return;
    spdlog::critical("libmilter does not wait for signals through dmarc-milter's sigwait: SIGHUP would stop the "
                     "milter instead of reloading it; stopping (exit 70)");
    std::_Exit(70);
  }).detach();
}

void check_read_buffer() {
  if (io::enabled() && !io::reached())
    spdlog::error("libmilter's accept() does not reach dmarc-milter's read buffer: every MTA connection costs "
                  "about 100 system calls more per message (bench/README.md); was libmilter linked another way?");
}
}  // namespace

int main(int argc, char** argv) {
  // Fixed malloc thresholds instead of glibc's sliding ones: a 200 KB body
  // is taken from the heap, not mmap()ed and unmapped again, and free
  // memory at the top of a thread's arena is kept up to 16 MiB instead of
  // being handed back (madvise, TLB shootdowns) after every message.
  // About 6% of the CPU per message in bench/ (bench/README.md).
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
  g_config_path = build::kDefaultConfigFile;
  bool config_given = false, foreground = false, check_only = false;
  std::optional<std::string> socket_arg, user_arg, pid_arg;
  EvalInput eval;
  bool do_eval = false;
  enum { kEval = 1000, kIp, kHelo, kMailFrom, kRcpt, kAuth };
  static const struct option longopts[] = {
      {"eval", required_argument, nullptr, kEval},      {"ip", required_argument, nullptr, kIp},
      {"helo", required_argument, nullptr, kHelo},      {"mail-from", required_argument, nullptr, kMailFrom},
      {"rcpt", required_argument, nullptr, kRcpt},      {"auth", required_argument, nullptr, kAuth},
      {"help", no_argument, nullptr, 'h'},              {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:fp:u:P:nVh", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': g_config_path = optarg; config_given = true; break;
      case 'f': foreground = true; break;
      case 'p': socket_arg = optarg; break;
      case 'u': user_arg = optarg; break;
      case 'P': pid_arg = optarg; break;
      case 'n': check_only = true; break;
      case 'V': std::printf("dmarc-milter %s\n", build::kVersion); return 0;
      case 'h': usage(stdout); return 0;
      case kEval: eval.file = optarg; do_eval = true; break;
      case kIp: eval.ip = optarg; break;
      case kHelo: eval.helo = optarg; break;
      case kMailFrom: eval.mail_from = optarg; break;
      case kRcpt: eval.rcpt.emplace_back(optarg); break;
      case kAuth: eval.auth = optarg; break;
      default: usage(stderr); return kExitUsage;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return kExitUsage;
  }
  if (do_eval && eval.ip.empty()) {
    std::fprintf(stderr, "dmarc-milter: --eval needs --ip\n");
    return kExitUsage;
  }

  // The configuration. Without -c a missing default file means defaults.
  Config config;
  if (!config_given && access(g_config_path.c_str(), F_OK) != 0) {
    config = default_config();
  } else {
    auto loaded = load_config(g_config_path);
    if (!loaded) {
      std::fprintf(stderr, "dmarc-milter: %s\n", loaded.error().str().c_str());
      return kExitConfig;
    }
    config = std::move(loaded.value());
  }
  for (const auto& w : config.warnings) std::fprintf(stderr, "dmarc-milter: warning: %s\n", w.str().c_str());
  if (socket_arg) config.socket = *socket_arg;
  if (user_arg) config.user = *user_arg;
  if (pid_arg) config.pid_file = *pid_arg;
  if (foreground) config.background = false;

  if (check_only) {
    auto engine = build_engine(config);
    std::fputs(format_effective(config).c_str(), stdout);
    // What the file itself set, and how many of its lines were not taken
    // (an opendmarc.conf, say): comments, so the output still parses.
    if (!config.source.empty()) {
      std::vector<std::pair<int, std::string>> kept;
      for (const auto& [key, line] : config.set_at) kept.emplace_back(line, key);
      std::sort(kept.begin(), kept.end());
      std::printf("# kept from %s: %zu setting(s)\n", config.source.c_str(), kept.size());
      for (const auto& [line, key] : kept) {
        auto v = config.values.find(key);
        std::printf("#   line %d: %s %s\n", line, key.c_str(), v == config.values.end() ? "" : v->second.c_str());
      }
      std::printf("# warnings: %zu (on standard error, each with its file and line)\n", config.warnings.size());
    }
    if (!engine) {
      std::fprintf(stderr, "dmarc-milter: %s\n", engine.error().c_str());
      return kExitConfig;
    }
    return 0;
  }

  setup_logging(config, do_eval || (!config.background && !config.syslog));
  auto built = build_engine(config);
  if (!built) {
    std::fprintf(stderr, "dmarc-milter: %s\n", built.error().c_str());
    return kExitConfig;
  }
  if (do_eval) return run_eval(built.value(), eval);
  set_current_engine(built.value());

  if (smfi_setconn(const_cast<char*>(config.socket.c_str())) != MI_SUCCESS) {
    std::fprintf(stderr, "dmarc-milter: bad Socket %s\n", config.socket.c_str());
    return kExitConfig;
  }
  if (config.milter_debug > 0) smfi_setdbg(config.milter_debug);
  if (!register_milter()) return kExitOsErr;
  if (config.background && !daemonize()) {
    std::fprintf(stderr, "dmarc-milter: cannot detach: %s\n", std::strerror(errno));
    return kExitOsErr;
  }
  umask(static_cast<mode_t>(config.umask));
  std::set<int> before = socket_fds();
  if (smfi_opensocket(true) != MI_SUCCESS) {
    spdlog::error("cannot open the milter socket {}", config.socket);
    std::fprintf(stderr, "dmarc-milter: cannot open the milter socket %s\n", config.socket.c_str());
    return kExitOsErr;
  }
  // TCP_NODELAY on the listening socket (accepted sockets inherit it on
  // Linux): libmilter writes a reply as several packets, and Nagle would
  // hold the last one until the MTA's delayed ACK (~40 ms per message).
  for (int fd : socket_fds()) {
    if (before.count(fd)) continue;
    int one = 1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // The metrics endpoint: after daemonize (its thread would not survive
  // the fork), before the privileges go (like the milter socket).
  std::unique_ptr<MetricsServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    MetricsSources sources;
    sources.cache = [] { return g_services.cache(); };
    sources.store_queue_length = []() -> std::uint64_t {
      auto rec = current_recorder();
      if (!rec) return 0;
      auto st = rec->stats();
      std::uint64_t done = st.written + st.lost;
      return st.queued > done ? st.queued - done : 0;
    };
    auto server = MetricsServer::start(config.metrics_listen, std::move(sources));
    if (!server) {
      spdlog::error("{}", server.error());
      std::fprintf(stderr, "dmarc-milter: %s\n", server.error().c_str());
      return kExitOsErr;
    }
    metrics_server = std::move(server.value());
    spdlog::info("metrics at http://{}/metrics", config.metrics_listen);
  }
  if (!config.pid_file.empty()) {
    std::ofstream pf(config.pid_file, std::ios::trunc);
    if (!pf) spdlog::warn("cannot write PidFile {}: {}", config.pid_file, std::strerror(errno));
    pf << getpid() << "\n";
  }
  if (!config.user.empty()) {
    if (!drop_privileges(config.user, unix_socket_path(config.socket))) return kExitOsErr;
  } else if (geteuid() == 0) {
    spdlog::warn("running as root: set UserID (or -u) to drop privileges");
  }

  // The store is opened by the recorder's thread, as UserID: the files it
  // creates belong to the milter's user.
  set_recorder(start_recorder(config));
  g_reload_enabled = true;
  spdlog::info("dmarc-milter {} starting: socket {}, mode {}, authserv-id {}, report store {}", build::kVersion,
               config.socket, to_token(config.mode), built.value()->authserv_id, config.report_store);
  if (io::enable())
    spdlog::debug("MTA connections are read through a buffer (DMARC_MILTER_NO_READ_BUFFER=1 turns it off)");
  set_first_connection_check(check_read_buffer);
  g_in_main = true;
  watch_sigwait();
  int rc = smfi_main();
  g_in_main = false;
  g_reload_enabled = false;
  // Messages in progress were let finish in the signal thread (sigwait
  // above), before libmilter stopped.
  // What the recorder still holds goes to the store before we exit.
  if (auto rec = current_recorder()) {
    rec->stop(std::chrono::seconds(10));
    auto st = rec->stats();
    spdlog::info("report store {}: {} record(s) written, {} dropped, {} lost", rec->uri(), st.written, st.dropped,
                 st.lost);
    set_recorder(nullptr);
  }
  spdlog::info("dmarc-milter stopped");
  if (!config.pid_file.empty()) unlink(config.pid_file.c_str());
  return rc == MI_SUCCESS ? 0 : kExitOsErr;
}
