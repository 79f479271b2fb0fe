// NAME
//   recorder - aggregate records from the message path to the store
// SYNOPSIS
//   auto rec = std::make_shared<Recorder>("sqlite:/var/lib/dmarc-milter/reports.db", 10000);
//   rec->start();
//   rec->submit(aggregate_records(facts, verdict, now));   // milter threads
//   rec->stop(std::chrono::seconds(10));                    // SIGTERM: flush
// DESCRIPTION
//   The message path never waits for the disk: submit() appends to a
//   bounded queue under a mutex and returns. One writer thread opens the
//   store (ReportStore) and commits the queue in batches of kBatchSize
//   records or every kFlushInterval, whichever comes first.
//   Faults, each logged once, never stopping mail:
//     queue full     the record is dropped and counted; the count is
//                    logged once a minute;
//     store failing  (open fails, disk full, read-only, locked) "recording
//                    stopped: WHY" is logged once; the batch in hand is
//                    kept and retried every kRetryInterval (the queue
//                    fills meanwhile, then drops); "recording resumed" is
//                    logged when a write works again.
//   stop() flushes what is queued, within a deadline, and says what could
//   not be written. A SIGKILL loses what was queued: at most one batch
//   window (kFlushInterval) of messages.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/report.hpp"
#include "dmarc/core/store.hpp"

namespace dmarc::milter {

class Recorder {
 public:
  static constexpr std::size_t kBatchSize = 500;
  static constexpr std::chrono::milliseconds kFlushInterval{1000};

  using Opener = std::function<Expected<std::shared_ptr<Store>, std::string>(std::string_view)>;

  // URI the ReportStore value; CAPACITY the queue's bound (ReportQueueSize).
  // OPENER opens the store (open_store; tests may pass their own).
  Recorder(std::string uri, std::size_t capacity, Opener opener = {},
           std::chrono::milliseconds retry_interval = std::chrono::seconds(10));
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  void start();
  // submit - queue RECORDS; never blocks on I/O. False when some were
  // dropped (queue full or stopped).
  bool submit(std::vector<AggregateRecord> records);
  // submit_failures - queue failure report jobs (FailureReports yes) for
  // the same writer; at most kMaxQueuedFailures wait, more are dropped
  // and counted (dmarc-report's rate limits would cut them anyway).
  static constexpr std::size_t kMaxQueuedFailures = 1000;
  bool submit_failures(std::vector<FailureJob> jobs);
  // stop - write what is queued (until DEADLINE), then end the writer.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(10));

  const std::string& uri() const noexcept { return uri_; }
  std::size_t capacity() const noexcept { return capacity_; }

  struct Stats {
    std::uint64_t queued = 0;   // records accepted by submit()
    std::uint64_t written = 0;  // records committed to the store
    std::uint64_t dropped = 0;  // records dropped (queue full)
    std::uint64_t lost = 0;     // records given up at stop()
    std::uint64_t failures_queued = 0, failures_written = 0, failures_dropped = 0;
    bool store_ok = false;      // the last open/write worked
  };
  Stats stats() const;

 private:
  void run();

  const std::string uri_;
  const std::size_t capacity_;
  Opener opener_;
  const std::chrono::milliseconds retry_interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AggregateRecord> queue_;
  std::deque<FailureJob> failures_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  std::thread writer_;

  std::atomic<std::uint64_t> queued_{0}, written_{0}, dropped_{0}, lost_{0};
  std::atomic<std::uint64_t> failures_queued_{0}, failures_written_{0}, failures_dropped_{0};
  std::atomic<bool> store_ok_{false};
};

// FailureJobGate - the failure reports' limits applied where they are
// queued: what dmarc-report would drop over FailureReportRateDomain /
// FailureReportRateTotal (per hour) or ForensicMaxPerDay (per day) is not
// written to the store at all, so a flood of spoofs cannot fill the disk
// with jobs nobody will send. Counted per process; dmarc-report still
// applies the limits across a fleet. Thread-safe.
class FailureJobGate {
 public:
  FailureJobGate(std::uint64_t rate_domain, std::uint64_t rate_total, std::uint64_t forensic_per_day)
      : ruf_(rate_domain, rate_total), local_(forensic_per_day, UINT64_MAX, 86400) {}
  // admit - the jobs of JOBS within the limits at NOW; DROPPED counts the rest.
  std::vector<FailureJob> admit(std::vector<FailureJob> jobs, std::int64_t now, std::uint64_t* dropped);

 private:
  std::mutex mu_;
  FailureRateLimit ruf_, local_;
};

// should_record - the loop guards (issue 13): a message to an IgnoreMailTo
// address or domain, or from our own REPORT_SENDER, is not recorded.
bool should_record(const std::vector<std::string>& ignore_mail_to, std::string_view report_sender,
                   const MessageFacts& facts) noexcept;

}  // namespace dmarc::milter
