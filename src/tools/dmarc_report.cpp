// dmarc_report.cpp - dmarc-report: build and send the aggregate reports
//
// See man/dmarc-report.8. A thin driver: the configuration, the store, the
// resolver and the mailer are made here; run_aggregate() does the work.
// Subcommands: aggregate (run_aggregate), failures (run_failures).
// Exit codes: 0 done; 1 some report failed (given up); 75 some report was
// deferred to the next run; 74 the store failed; 64 usage; 78 config.
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <cstdio>
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
#include "dmarc/report/mailer.hpp"

using namespace dmarc;

namespace {

constexpr int kExitUsage = 64, kExitConfig = 78, kExitStore = 74;

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: dmarc-report aggregate [-c config] [--day YYYY-MM-DD | --begin EPOCH --end EPOCH]\n"
               "                              [--domain DOMAIN] [--out DIR]\n"
               "       dmarc-report failures [-c config] [--out DIR]\n"
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
  auto store = open_store(cfg.report_store);
  if (!store) {
    std::fprintf(stderr, "dmarc-report: %s\n", store.error().c_str());
    return kExitStore;
  }

  LdnsResolver::Options ro;
  ro.nameservers = cfg.nameservers;
  ro.timeout = std::chrono::seconds(cfg.dns_timeout_s);
  ro.tries = static_cast<unsigned>(cfg.dns_retries);
  auto ldns = LdnsResolver::create(ro);
  if (!ldns) {
    std::fprintf(stderr, "dmarc-report: DNS: %s\n", ldns.error().c_str());
    return kExitConfig;
  }
  std::shared_ptr<Resolver> upstream(std::move(ldns.value()));
  CachedResolver resolver(upstream, CachedResolver::Options{});
  std::optional<PublicSuffixList> psl;
  if (cfg.mode == DmarcMode::Rfc7489) {
    auto l = load_public_suffix_list(cfg.public_suffix_list);
    if (!l) {
      std::fprintf(stderr, "dmarc-report: PublicSuffixList: %s\n", l.error().c_str());
      return kExitConfig;
    }
    psl.emplace(std::move(l.value()));
  }

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
    return run_failures(*store.value(), resolver, mailer.get(), psl ? &*psl : nullptr, f, log).exit_code();
  }
  AggregateRunResult r = run_aggregate(*store.value(), resolver, mailer.get(), psl ? &*psl : nullptr, o, log);
  return r.exit_code();
}
