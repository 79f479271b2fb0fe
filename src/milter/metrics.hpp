// NAME
//   metrics - the milter's counters, and the Prometheus endpoint that shows them
// SYNOPSIS
//   dmarc::milter::metrics().count_outcome(outcome, seconds);   // per message
//   auto server = dmarc::milter::MetricsServer::start("127.0.0.1:9425", sources);
//   std::string text = dmarc::milter::render_metrics(sources);
// DESCRIPTION
//   Metrics is one process-wide set of counters (metrics()): it outlives
//   reloads and store switches, so every counter only grows while the
//   process lives, as Prometheus expects of a counter. The per-message
//   path only does relaxed atomic increments on it; nothing there waits.
//
//   What is counted where:
//     messages, results, dispositions, actions, latency   Session::eom
//     upstream DNS queries, timeouts, errors               CountingResolver
//     DNS cache hits and misses                            CachedResolver's own stats
//     store records queued / written / dropped / lost,
//     report jobs queued / dropped                         Recorder
//   Names and meanings are listed in dmarc-milter(8), METRICS.
//
//   render_metrics() writes the Prometheus text exposition format 0.0.4:
//   "# HELP" and "# TYPE" lines, then one sample per line; label values are
//   fixed tokens (to_token of the core's enums), never message text.
//
//   MetricsServer serves GET /metrics (and HEAD) through libmicrohttpd on
//   its own thread, on one IP:PORT (MetricsListen); other paths get 404,
//   other methods 405. At most 8 connections at once, each for at most
//   10 s. The server only reads the counters: a slow or hostile scraper
//   costs the mail path nothing.
// DIAGNOSTICS
//   MetricsServer::start returns an error text when the address does not
//   parse or cannot be bound ("cannot listen on 127.0.0.1:9425: Address
//   already in use").
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/core/dns.hpp"
#include "dmarc/core/expected.hpp"

namespace dmarc::milter {

struct Outcome;

using Counter = std::atomic<std::uint64_t>;

// Histogram - Prometheus histogram of seconds with fixed bucket bounds.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void observe(double seconds) noexcept;
  // Cumulative counts per bound, then the +Inf count (= count()).
  std::array<std::uint64_t, kBounds.size() + 1> cumulative() const noexcept;
  double sum() const noexcept;
  std::uint64_t count() const noexcept;

 private:
  std::array<Counter, kBounds.size() + 1> buckets_{};
  Counter sum_ns_{0};
};

struct Metrics {
  // Messages that reached end of message, checked or not.
  Counter messages{0};
  Counter messages_unchecked{0};  // IgnoreHosts / SMTP AUTH
  // Per author domain (DmarcResult), per message (SPF AuthResult), per
  // signature (DKIM AuthResult).
  std::array<Counter, 5> dmarc_results{};
  std::array<Counter, 8> spf_results{};
  std::array<Counter, 8> dkim_results{};
  std::array<Counter, 3> dispositions{};  // Disposition applied, per author domain
  std::array<Counter, 4> actions{};       // Action per message
  Counter held{0};                        // quarantine by the MTA's hold queue
  Counter forged_ar_removed{0};  // counted by milter.cpp, per field removed
  Counter internal_errors{0};
  // Upstream DNS (what the cache did not answer).
  Counter dns_queries{0}, dns_timeouts{0}, dns_errors{0};
  // The report store (Recorder).
  Counter store_queued{0}, store_written{0}, store_dropped{0}, store_lost{0};
  Counter failure_jobs_queued{0}, failure_jobs_dropped{0};
  Histogram message_seconds;

  // count_outcome - one message ended; SECONDS the milter spent on it.
  void count_outcome(const Outcome& o, double seconds) noexcept;
  // count_reply_only - a message answered without a verdict (refused while
  // stopping: tempfail; after an internal error: InternalErrorAction).
  void count_reply_only(bool accepted) noexcept;
};

Metrics& metrics() noexcept;

// What render_metrics reads besides metrics(): the DNS cache (may be null:
// DNSCacheSize 0) and the store queue's current length.
struct MetricsSources {
  std::function<std::shared_ptr<CachedResolver>()> cache;
  std::function<std::uint64_t()> store_queue_length;
};

std::string render_metrics(const MetricsSources& sources);

// CountingResolver - counts the queries that go to UPSTREAM and their failures.
class CountingResolver final : public Resolver {
 public:
  explicit CountingResolver(std::shared_ptr<Resolver> upstream) : upstream_(std::move(upstream)) {}
  DnsAnswer query(std::string_view name, RRType type) override;

 private:
  std::shared_ptr<Resolver> upstream_;
};

class MetricsServer {
 public:
  static Expected<std::unique_ptr<MetricsServer>, std::string> start(const std::string& listen, MetricsSources sources);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }

  struct Impl;

 private:
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace dmarc::milter
