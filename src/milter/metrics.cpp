// metrics.cpp - counters and the Prometheus /metrics endpoint (libmicrohttpd)
#include "metrics.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "dmarc/config/config.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/message_policy.hpp"
#include "dmarc/build_config.hpp"
#include "session.hpp"

namespace dmarc::milter {

void Histogram::observe(double seconds) noexcept {
  if (!(seconds >= 0)) seconds = 0;  // NaN and negatives (a clock step) count as 0
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  double ns = std::min(seconds * 1e9, 1e15);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

std::array<std::uint64_t, Histogram::kBounds.size() + 1> Histogram::cumulative() const noexcept {
  std::array<std::uint64_t, kBounds.size() + 1> out{};
  std::uint64_t run = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    run += buckets_[i].load(std::memory_order_relaxed);
    out[i] = run;
  }
  return out;
}

double Histogram::sum() const noexcept { return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9; }

std::uint64_t Histogram::count() const noexcept { return cumulative().back(); }

namespace {
void bump(Counter& c, std::uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }

template <std::size_t N>
void bump_at(std::array<Counter, N>& a, std::size_t i) noexcept {
  if (i < N) bump(a[i]);
}
}  // namespace

void Metrics::count_outcome(const Outcome& o, double seconds) noexcept {
  bump(messages);
  bump_at(actions, static_cast<std::size_t>(o.decision.action));
  if (o.decision.hold) bump(held);
  // forged_ar_removed is counted by the milter glue, per field it removed
  // (a rejected message has none removed).
  message_seconds.observe(seconds);
  if (!o.checked) {
    bump(messages_unchecked);
    return;
  }
  for (const auto& v : o.verdicts) {
    bump_at(dmarc_results, static_cast<std::size_t>(v.result));
    bump_at(dispositions, static_cast<std::size_t>(v.disposition));
  }
  if (o.spf) bump_at(spf_results, static_cast<std::size_t>(o.spf->result));
  for (const auto& d : o.dkim) bump_at(dkim_results, static_cast<std::size_t>(d.result));
}

void Metrics::count_reply_only(bool accepted) noexcept {
  bump(messages);
  bump(messages_unchecked);
  bump_at(actions, static_cast<std::size_t>(accepted ? Action::Accept : Action::TempFail));
}

Metrics& metrics() noexcept {
  static Metrics m;
  return m;
}

DnsAnswer CountingResolver::query(std::string_view name, RRType type) {
  Metrics& m = metrics();
  bump(m.dns_queries);
  DnsAnswer a = upstream_->query(name, type);
  if (a.status == DnsStatus::TempFail) {
    // LdnsResolver says "timeout contacting SERVER" when no server answered.
    // The message's DNSMessageTimeout spent ("DNS time budget ..."): a
    // timeout too, though that query was never sent.
    if (a.why.find("timeout") != std::string::npos || a.why.find("budget") != std::string::npos)
      bump(m.dns_timeouts);
    else bump(m.dns_errors);
  }
  return a;
}

namespace {

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t v) {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(std::to_string(v)).append("\n");
  }
  void sample(std::string_view name, std::string_view labels, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(buf).append("\n");
  }
  void counter(std::string_view name, std::string_view help, const Counter& c) {
    family(name, "counter", help);
    sample(name, "", c.load(std::memory_order_relaxed));
  }
  template <typename Enum, std::size_t N>
  void labelled(std::string_view name, std::string_view help, std::string_view label, const std::array<Counter, N>& a) {
    family(name, "counter", help);
    for (std::size_t i = 0; i < N; ++i) {
      std::string l = std::string(label) + "=\"" + std::string(to_token(static_cast<Enum>(i))) + "\"";
      sample(name, l, a[i].load(std::memory_order_relaxed));
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string render_metrics(const MetricsSources& sources) {
  Metrics& m = metrics();
  Writer w;
  w.family("dmarc_milter_build_info", "gauge", "Version of the running dmarc-milter (always 1).");
  w.sample("dmarc_milter_build_info", std::string("version=\"") + std::string(build::kVersion) + "\"", std::uint64_t{1});
  w.counter("dmarc_milter_messages_total", "Messages that reached end of message, checked or not.", m.messages);
  w.counter("dmarc_milter_messages_unchecked_total",
            "Messages not checked: client in IgnoreHosts or SMTP-authenticated (IgnoreAuthenticatedClients), "
            "refused while stopping, or answered after an internal error.",
            m.messages_unchecked);
  w.labelled<DmarcResult>("dmarc_milter_dmarc_results_total", "DMARC results, one per author domain of a checked message.",
                          "result", m.dmarc_results);
  w.labelled<AuthResult>("dmarc_milter_spf_results_total", "SPF results of checked messages (MAIL FROM, or HELO for <>).",
                         "result", m.spf_results);
  w.labelled<AuthResult>("dmarc_milter_dkim_results_total", "DKIM results, one per signature verified.", "result",
                         m.dkim_results);
  w.labelled<Disposition>("dmarc_milter_dispositions_total",
                          "Disposition applied per author domain, after local overrides (RejectFailures, forwarders).",
                          "disposition", m.dispositions);
  w.labelled<Action>("dmarc_milter_actions_total", "What the MTA was told per message.", "action", m.actions);
  w.counter("dmarc_milter_held_total", "Quarantined messages put in the MTA's hold queue (QuarantineAction hold, both).",
            m.held);
  w.counter("dmarc_milter_forged_ar_removed_total",
            "Forged Authentication-Results fields removed (from messages that were delivered).", m.forged_ar_removed);
  w.counter("dmarc_milter_internal_errors_total",
            "Internal errors (never expected), each answered with InternalErrorAction; logged.", m.internal_errors);

  w.counter("dmarc_milter_dns_queries_total", "DNS queries sent upstream (not answered from the cache).", m.dns_queries);
  w.counter("dmarc_milter_dns_timeouts_total", "Upstream DNS queries that no server answered in time.", m.dns_timeouts);
  w.counter("dmarc_milter_dns_errors_total", "Upstream DNS queries that failed otherwise (SERVFAIL, REFUSED, network).",
            m.dns_errors);
  std::shared_ptr<CachedResolver> cache = sources.cache ? sources.cache() : nullptr;
  CacheStats cs = cache ? cache->stats() : CacheStats{};
  w.family("dmarc_milter_dns_cache_hits_total", "counter", "DNS lookups answered from the cache.");
  w.sample("dmarc_milter_dns_cache_hits_total", "", cs.hits);
  w.family("dmarc_milter_dns_cache_misses_total", "counter", "DNS lookups the cache passed upstream.");
  w.sample("dmarc_milter_dns_cache_misses_total", "", cs.misses);
  w.family("dmarc_milter_dns_cache_entries", "gauge", "Answers in the DNS cache now.");
  w.sample("dmarc_milter_dns_cache_entries", "", static_cast<std::uint64_t>(cs.entries));

  w.counter("dmarc_milter_store_records_queued_total", "Evaluation records queued for the report store.", m.store_queued);
  w.counter("dmarc_milter_store_records_written_total", "Evaluation records written to the report store.",
            m.store_written);
  w.counter("dmarc_milter_store_records_dropped_total",
            "Evaluation records dropped because the queue was full (ReportQueueSize).", m.store_dropped);
  w.counter("dmarc_milter_store_records_lost_total", "Records still queued when the milter had to stop without a store.",
            m.store_lost);
  w.family("dmarc_milter_store_queue_length", "gauge", "Evaluation records waiting for the store's writer now.");
  w.sample("dmarc_milter_store_queue_length", "", sources.store_queue_length ? sources.store_queue_length() : 0);
  w.counter("dmarc_milter_report_jobs_queued_total",
            "Failure and local forensic report jobs queued for dmarc-report (after the hourly and daily limits).",
            m.failure_jobs_queued);
  w.counter("dmarc_milter_report_jobs_dropped_total",
            "Failure and local forensic report jobs dropped: over the limits, or the job queue full.",
            m.failure_jobs_dropped);

  const char* h = "dmarc_milter_message_seconds";
  w.family(h, "histogram", "Time the milter spent on a message: SPF, DKIM, DMARC and the decision, not the MTA's time.");
  auto cum = m.message_seconds.cumulative();
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "le=\"%g\"", Histogram::kBounds[i]);
    w.sample("dmarc_milter_message_seconds_bucket", le, cum[i]);
  }
  w.sample("dmarc_milter_message_seconds_bucket", "le=\"+Inf\"", cum.back());
  w.sample("dmarc_milter_message_seconds_sum", "", m.message_seconds.sum());
  w.sample("dmarc_milter_message_seconds_count", "", cum.back());
  return w.take();
}

struct MetricsServer::Impl {
  MetricsSources sources;
  MHD_Daemon* daemon = nullptr;
  int fd = -1;
  ~Impl() {
    if (daemon) MHD_stop_daemon(daemon);
    if (fd >= 0) close(fd);
  }
};

namespace {

MHD_Result answer(MHD_Connection* conn, unsigned status, const std::string& body, const char* type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                      const char*, size_t* upload_size, void**) noexcept {
  try {
    auto* impl = static_cast<MetricsServer::Impl*>(cls);
    if (upload_size && *upload_size) {  // a body we do not read
      *upload_size = 0;
      return MHD_YES;
    }
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0, head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!get && !head) return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "text/plain");
    if (std::strcmp(url, "/metrics") != 0) return answer(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", "text/plain");
    return answer(conn, MHD_HTTP_OK, render_metrics(impl->sources), "text/plain; version=0.0.4; charset=utf-8");
  } catch (...) {
    return MHD_NO;  // no memory: the connection is closed
  }
}

}  // namespace

Expected<std::unique_ptr<MetricsServer>, std::string> MetricsServer::start(const std::string& listen,
                                                                          MetricsSources sources) {
  auto ep = parse_ip_port(listen);
  if (!ep) return Unexpected("MetricsListen must be IP:PORT or [IPv6]:PORT, not '" + listen + "'");
  // Port 0 (tests): any free port; port() says which.
  std::unique_ptr<MetricsServer> s(new MetricsServer);
  s->impl_ = std::make_unique<Impl>();
  s->impl_->sources = std::move(sources);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ep->v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(ep->port);
    inet_pton(AF_INET6, ep->ip.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(ep->port);
    inet_pton(AF_INET, ep->ip.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  // Our own listening socket, so that a bind error is reported as such.
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unexpected("cannot listen on " + listen + ": " + std::strerror(errno));
  s->impl_->fd = fd;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0)
    return Unexpected("cannot listen on " + listen + ": " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
    s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  // The server's thread must take no signal: the milter waits for them
  // with sigwait in its own thread (main.cpp). Threads inherit the mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (ep->v6 ? MHD_USE_IPv6 : 0);
  s->impl_->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, s->impl_.get(), MHD_OPTION_LISTEN_SOCKET,
                                      fd, MHD_OPTION_CONNECTION_LIMIT, 8u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                      MHD_OPTION_END);
  int saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!s->impl_->daemon) return Unexpected("cannot start the metrics server on " + listen + ": " + std::strerror(saved));
  s->impl_->fd = -1;  // the daemon closes it
  return s;
}

MetricsServer::~MetricsServer() = default;

}  // namespace dmarc::milter
