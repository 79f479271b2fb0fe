// dmarc_report.cpp - dmarc-report: build and send the aggregate reports
//
// See man/dmarc-report.8. A thin driver: the configuration, the store, the
// resolver and the mailer are made here; run_aggregate() does the work.
// Subcommands: aggregate (run_aggregate), failures (run_failures).
// Exit codes: 0 done; 1 some report failed (given up); 75 some report was
// deferred to the next run; 74 the store failed; 64 usage; 78 config.
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/adapters/psl_file.hpp"
#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/build_config.hpp"
#include "dmarc/config/config.hpp"
#include "dmarc/core/domain.hpp"
#include "dmarc/report/aggregate_run.hpp"
#include "dmarc/report/failure_run.hpp"
#include "dmarc/report/readiness_out.hpp"
#include "dmarc/adapters/spf.hpp"
#include "dmarc/core/readiness.hpp"
#include "dmarc/report/mailer.hpp"

extern char** environ;

using namespace dmarc;

namespace {

constexpr int kExitUsage = 64, kExitConfig = 78, kExitStore = 74;

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: dmarc-report aggregate [-c config] [--day YYYY-MM-DD | --begin EPOCH --end EPOCH]\n"
               "                              [--domain DOMAIN] [--out DIR]\n"
               "       dmarc-report failures [-c config] [--out DIR]\n"
               "       dmarc-report run [-c config] [--failure-interval S] [--aggregate-delay S]\n"
               "       dmarc-report readiness [-c config] [--days N | --begin EPOCH --end EPOCH] [--json] [--html FILE]\n"
               "                              DOMAIN\n"
               "       dmarc-report -V\n");
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

bool parse_epoch(const char* s, std::int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0) return false;
  *out = v;
  return true;
}

// --- dmarc-report run: the long-running sender ---

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

// run_child - this program again with ARGS (a fresh process per run: the
// configuration is read anew and nothing piles up); its exit status.
int run_child(const std::vector<std::string>& args) {
  std::vector<std::string> words = {"/proc/self/exe"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
    if (g_stop) kill(pid, SIGTERM);  // pass the stop on; wait for it
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// run_loop - failures every FAILURE_INTERVAL seconds; the previous UTC
// day's aggregate reports once per day, AGGREGATE_DELAY seconds after
// 00:00 UTC (and at start when that time has passed). SIGTERM, SIGINT:
// the run in progress finishes, then exit 0.
int run_loop(const std::string& config_file, long failure_interval, long aggregate_delay) {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::fprintf(stderr, "dmarc-report: run: failure reports every %ld s, aggregate reports %ld s after 00:00 UTC\n",
               failure_interval, aggregate_delay);
  std::int64_t aggregated_day = -1;  // the day whose reports this process sent
  auto now_s = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  std::int64_t next_failures = 0;
  while (!g_stop) {
    std::int64_t now = now_s();
    if (now >= next_failures) {
      run_child({"failures", "-c", config_file});
      next_failures = now_s() + failure_interval;
    }
    std::int64_t today = utc_day(now);
    if (aggregated_day != today && now >= today * kSecondsPerDay + aggregate_delay && !g_stop) {
      run_child({"aggregate", "-c", config_file});
      aggregated_day = today;
    }
    for (int i = 0; i < 10 && !g_stop && now_s() < next_failures; ++i) usleep(100 * 1000);
  }
  std::fprintf(stderr, "dmarc-report: run: stopped\n");
  return 0;
}

// Dns - the resolver (ldns behind a cache, as configured) and, in rfc7489
// mode, the Public Suffix List; make_dns says why not (exit 78).
struct Dns {
  std::shared_ptr<Resolver> upstream;
  std::unique_ptr<CachedResolver> resolver;
  std::optional<PublicSuffixList> psl;
};
bool make_dns(const Config& cfg, Dns& dns) {
  LdnsResolver::Options ro;
  ro.nameservers = cfg.nameservers;
  ro.timeout = std::chrono::seconds(cfg.dns_timeout_s);
  ro.tries = static_cast<unsigned>(cfg.dns_retries);
  auto ldns = LdnsResolver::create(ro);
  if (!ldns) {
    std::fprintf(stderr, "dmarc-report: DNS: %s\n", ldns.error().c_str());
    return false;
  }
  dns.upstream = std::shared_ptr<Resolver>(std::move(ldns.value()));
  dns.resolver = std::make_unique<CachedResolver>(dns.upstream, CachedResolver::Options{});
  if (cfg.mode == DmarcMode::Rfc7489) {
    auto l = load_public_suffix_list(cfg.public_suffix_list);
    if (!l) {
      std::fprintf(stderr, "dmarc-report: PublicSuffixList: %s\n", l.error().c_str());
      return false;
    }
    dns.psl.emplace(std::move(l.value()));
  }
  return true;
}

// --- dmarc-report readiness DOMAIN ---

int readiness_main(int argc, char** argv) {
  std::string config_file = build::kDefaultConfigFile;
  long days = 14;
  std::optional<std::int64_t> begin, end;
  bool json = false;
  std::optional<std::string> html;
  enum { kDays = 3000, kBegin, kEnd, kJson, kHtml };
  static const option opts[] = {{"config", required_argument, nullptr, 'c'},
                                {"days", required_argument, nullptr, kDays},
                                {"begin", required_argument, nullptr, kBegin},
                                {"end", required_argument, nullptr, kEnd},
                                {"json", no_argument, nullptr, kJson},
                                {"html", required_argument, nullptr, kHtml},
                                {nullptr, 0, nullptr, 0}};
  optind = 2;
  int c;
  bool days_given = false;
  while ((c = getopt_long(argc, argv, "c:", opts, nullptr)) != -1) {
    char* e = nullptr;
    std::int64_t v = 0;
    switch (c) {
      case 'c': config_file = optarg; break;
      case kDays:
        days = std::strtol(optarg, &e, 10);
        if (!e || *e || days < 1 || days > 3660) return usage(stderr), kExitUsage;
        days_given = true;
        break;
      case kBegin:
        if (!parse_epoch(optarg, &v)) return usage(stderr), kExitUsage;
        begin = v;
        break;
      case kEnd:
        if (!parse_epoch(optarg, &v)) return usage(stderr), kExitUsage;
        end = v;
        break;
      case kJson: json = true; break;
      case kHtml: html = optarg; break;
      default: usage(stderr); return kExitUsage;
    }
  }
  if (optind + 1 != argc || begin.has_value() != end.has_value() || (begin && days_given) || (begin && *end < *begin))
    return usage(stderr), kExitUsage;
  std::string domain = ascii_lowercase(argv[optind]);
  auto loaded = load_config(config_file);
  if (!loaded) {
    std::fprintf(stderr, "dmarc-report: %s\n", loaded.error().str().c_str());
    return kExitConfig;
  }
  Config cfg = std::move(loaded.value());
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  ReportPeriod period = begin ? ReportPeriod{*begin, *end}
                              : ReportPeriod{(utc_day(now) - days + 1) * kSecondsPerDay,
                                             (utc_day(now) + 1) * kSecondsPerDay - 1};
  if (cfg.report_store == "none") {
    std::fprintf(stderr, "dmarc-report: %s: ReportStore is none: nothing is recorded\n", config_file.c_str());
    return kExitStore;
  }
  auto store = open_store(cfg.report_store);
  if (!store) {
    std::fprintf(stderr, "dmarc-report: %s\n", store.error().c_str());
    return kExitStore;
  }
  auto rows = store.value()->records(domain, period.first_day(), period.last_day());
  if (!rows) {
    std::fprintf(stderr, "dmarc-report: %s\n", rows.error().message.c_str());
    return kExitStore;
  }
  Dns dns;
  if (!make_dns(cfg, dns)) return kExitConfig;
  CachedResolver& resolver = *dns.resolver;
  std::optional<PublicSuffixList>& psl = dns.psl;
  auto spf = SpfVerifier::create(resolver);
  // The facts only a receiver has: the PTR of each source (checked
  // forward) and whether the domain's own SPF record authorises it.
  std::vector<SourceSummary> sources = summarize_sources(domain, rows.value());
  for (auto& src : sources) {
    DnsAnswer p = resolver.ptr(src.ip);
    if (p.status == DnsStatus::Ok && !p.records.empty()) {
      const std::string& name = p.records.front();
      DnsAnswer f = src.ip.find(':') != std::string::npos ? resolver.aaaa(name) : resolver.a(name);
      bool confirmed = false;
      for (const auto& a : f.records) confirmed = confirmed || ascii_iequals(a, src.ip);
      if (confirmed) {
        src.ptr = name;
        DmarcMode m = (cfg.mode == DmarcMode::Rfc7489 && !psl) ? DmarcMode::Rfc9989 : cfg.mode;
        src.ptr_org = find_org_domain(resolver, ascii_lowercase(name), m, psl ? &*psl : nullptr).org_domain;
      }
    }
    if (spf) src.domain_spf_authorises = spf.value()->check(src.ip, "", "postmaster@" + domain).result == AuthResult::Pass;
  }
  Thresholds t;
  t.min_days = cfg.readiness_min_days;
  t.max_legitimate_at_risk = cfg.readiness_max_at_risk_permille / 1000.0;
  Readiness r = assess(domain, period, rows.value(), std::move(sources), t);
  std::fputs((json ? readiness_json(r) : readiness_text(r)).c_str(), stdout);
  if (html) {
    std::string page = readiness_html(r);
    std::ofstream f(*html, std::ios::binary | std::ios::trunc);
    f << page;
    f.flush();
    if (page.empty() || !f) {
      std::fprintf(stderr, "dmarc-report: --html %s: %s\n", html->c_str(),
                   page.empty() ? "the page could not be built" : std::strerror(errno));
      return 73;  // EX_CANTCREAT
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // ReportCommand's exit status is read with waitpid(): a SIGCHLD ignored
  // by whoever started us would have the kernel reap it first.
  std::signal(SIGCHLD, SIG_DFL);
  if (argc >= 2 && (std::string(argv[1]) == "-V" || std::string(argv[1]) == "--version")) {
    std::printf("dmarc-report %s\n", build::kVersion);
    return 0;
  }
  if (argc >= 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    usage(stdout);
    return 0;
  }
  const std::string sub = argc >= 2 ? argv[1] : "";
  if (sub == "run") {
    std::string config_file = build::kDefaultConfigFile;
    long failure_interval = 60, aggregate_delay = 15 * 60;
    enum { kFailureInterval = 2000, kAggregateDelay };
    static const option runopts[] = {{"config", required_argument, nullptr, 'c'},
                                     {"failure-interval", required_argument, nullptr, kFailureInterval},
                                     {"aggregate-delay", required_argument, nullptr, kAggregateDelay},
                                     {nullptr, 0, nullptr, 0}};
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "c:", runopts, nullptr)) != -1) {
      char* end = nullptr;
      switch (c) {
        case 'c': config_file = optarg; break;
        case kFailureInterval:
          failure_interval = std::strtol(optarg, &end, 10);
          if (!end || *end || failure_interval < 1) return usage(stderr), kExitUsage;
          break;
        case kAggregateDelay:
          aggregate_delay = std::strtol(optarg, &end, 10);
          if (!end || *end || aggregate_delay < 0 || aggregate_delay >= kSecondsPerDay) return usage(stderr), kExitUsage;
          break;
        default: usage(stderr); return kExitUsage;
      }
    }
    if (optind != argc) return usage(stderr), kExitUsage;
    auto cfg = load_config(config_file);
    if (!cfg) {
      std::fprintf(stderr, "dmarc-report: %s\n", cfg.error().str().c_str());
      return kExitConfig;
    }
    return run_loop(config_file, failure_interval, aggregate_delay);
  }
  if (sub == "readiness") return readiness_main(argc, argv);
  if (sub != "aggregate" && sub != "failures") {
    usage(stderr);
    return kExitUsage;
  }
  std::string config_file = build::kDefaultConfigFile;
  std::optional<std::string> day, domain, out_dir;
  std::optional<std::int64_t> begin, end;
  enum { kDay = 1000, kBegin, kEnd, kDomain, kOut };
  static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                     {"day", required_argument, nullptr, kDay},
                                     {"begin", required_argument, nullptr, kBegin},
                                     {"end", required_argument, nullptr, kEnd},
                                     {"domain", required_argument, nullptr, kDomain},
                                     {"out", required_argument, nullptr, kOut},
                                     {"help", no_argument, nullptr, 'h'},
                                     {nullptr, 0, nullptr, 0}};
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "c:h", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': config_file = optarg; break;
      case kDay: day = optarg; break;
      case kBegin: {
        std::int64_t v;
        if (!parse_epoch(optarg, &v)) {
          std::fprintf(stderr, "dmarc-report: --begin needs epoch seconds, not '%s'\n", optarg);
          return kExitUsage;
        }
        begin = v;
        break;
      }
      case kEnd: {
        std::int64_t v;
        if (!parse_epoch(optarg, &v)) {
          std::fprintf(stderr, "dmarc-report: --end needs epoch seconds, not '%s'\n", optarg);
          return kExitUsage;
        }
        end = v;
        break;
      }
      case kDomain: domain = ascii_lowercase(optarg); break;
      case kOut: out_dir = optarg; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return kExitUsage;
    }
  }
  if (optind != argc || (day && (begin || end)) || (begin.has_value() != end.has_value()) ||
      (sub == "failures" && (day || begin || domain))) {
    usage(stderr);
    return kExitUsage;
  }

  auto loaded = load_config(config_file);
  if (!loaded) {
    std::fprintf(stderr, "dmarc-report: %s\n", loaded.error().str().c_str());
    return kExitConfig;
  }
  Config cfg = std::move(loaded.value());
  for (const auto& w : cfg.warnings) std::fprintf(stderr, "dmarc-report: warning: %s\n", w.str().c_str());

  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  AggregateRunOptions o;
  if (day) {
    auto d = parse_day(*day);
    if (!d) {
      std::fprintf(stderr, "dmarc-report: --day needs YYYY-MM-DD, not '%s'\n", day->c_str());
      return kExitUsage;
    }
    o.period = day_period(*d);
  } else if (begin) {
    if (*end < *begin) {
      std::fprintf(stderr, "dmarc-report: --end is before --begin\n");
      return kExitUsage;
    }
    o.period = ReportPeriod{*begin, *end};
  } else {
    o.period = day_period(utc_day(now) - 1);  // the previous UTC day
  }
  if (sub == "aggregate" && o.period.end >= now) {
    std::fprintf(stderr, "dmarc-report: the period has not ended yet (it ends %s)\n",
                 format_day(o.period.last_day()).c_str());
    return kExitUsage;
  }
  if (out_dir) {
    struct stat st {};
    if (stat(out_dir->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::fprintf(stderr, "dmarc-report: --out %s: not a directory\n", out_dir->c_str());
      return kExitUsage;
    }
  }
  o.domain = domain;
  o.out_dir = out_dir;
  o.now = now;
  o.format = cfg.report_format == "rfc9990" ? ReportFormat::Rfc9990 : ReportFormat::Rfc7489;
  o.mode = cfg.mode;
  o.org_name = cfg.report_org_name.empty() ? host_name() : cfg.report_org_name;
  o.sender = cfg.report_sender.empty() ? "dmarc-reports@" + host_name() : cfg.report_sender;
  o.contact = cfg.report_contact;
  o.no_reports = cfg.no_reports_list;
  o.max_attempts = cfg.report_max_attempts;
  o.retention_days = cfg.report_retention_days;

  if (cfg.report_store == "none") {
    std::fprintf(stderr, "dmarc-report: %s: ReportStore is none: nothing is recorded, no report to send\n",
                 config_file.c_str());
    return 0;
  }
  // One run at a time per store: a timer, cron and an admin's run must
  // not send the same report twice. The lock goes with the process.
  if (!out_dir && cfg.report_store.rfind("sqlite:", 0) == 0) {
    std::string lock_path = cfg.report_store.substr(7) + ".lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0) {
      std::fprintf(stderr, "dmarc-report: %s: %s\n", lock_path.c_str(), std::strerror(errno));
      return kExitStore;
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      std::fprintf(stderr, "dmarc-report: waiting for another dmarc-report run (%s)\n", lock_path.c_str());
      while (::flock(lock_fd, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  auto store = open_store(cfg.report_store);
  if (!store) {
    std::fprintf(stderr, "dmarc-report: %s\n", store.error().c_str());
    return kExitStore;
  }

  Dns dns;
  if (!make_dns(cfg, dns)) return kExitConfig;
  CachedResolver& resolver = *dns.resolver;
  std::optional<PublicSuffixList>& psl = dns.psl;

  std::unique_ptr<Mailer> mailer;
  auto timeout = std::chrono::milliseconds(std::chrono::seconds(cfg.report_timeout_s));
  if (!cfg.report_smtp.empty()) {
    mailer = smtp_mailer(cfg.report_smtp, host_name(), timeout);  // EHLO with this host's name
  } else {
    auto argv_words = split_command(cfg.report_command);
    if (!argv_words) {
      std::fprintf(stderr, "dmarc-report: %s: ReportCommand: %s\n", config_file.c_str(), argv_words.error().c_str());
      return kExitConfig;
    }
    mailer = command_mailer(argv_words.value(), timeout);
  }

  auto log = [](RunLogLevel level, const std::string& text) {
    const char* tag = level == RunLogLevel::Error ? "error: " : level == RunLogLevel::Warning ? "warning: " : "";
    std::fprintf(stderr, "dmarc-report: %s%s\n", tag, text.c_str());
    std::fflush(stderr);
  };
  if (sub == "failures") {
    FailureRunOptions f;
    f.out_dir = out_dir;
    f.now = now;
    f.mode = cfg.mode;
    f.org_name = o.org_name;
    f.sender = cfg.failure_reports_sent_by.empty() ? o.sender : cfg.failure_reports_sent_by;
    f.bcc = cfg.failure_reports_bcc;
    f.no_reports = cfg.no_reports_list;
    f.rate_domain = cfg.failure_report_rate_domain;
    f.rate_total = cfg.failure_report_rate_total;
    f.max_attempts = cfg.report_max_attempts;
    f.redact_key = cfg.failure_report_redact_key;
    f.forensic_maildir = cfg.forensic_maildir;
    f.forensic_mail_to = cfg.forensic_mail_to;
    f.forensic_max_per_day = cfg.forensic_max_per_day;
    return run_failures(*store.value(), resolver, mailer.get(), psl ? &*psl : nullptr, f, log).exit_code();
  }
  AggregateRunResult r = run_aggregate(*store.value(), resolver, mailer.get(), psl ? &*psl : nullptr, o, log);
  return r.exit_code();
}
