// recorder.cpp - the bounded queue and the store's writer thread (recorder.hpp)
#include "recorder.hpp"
#include "metrics.hpp"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/core/domain.hpp"

namespace dmarc::milter {

namespace {
constexpr auto kDropLogInterval = std::chrono::seconds(60);
}

Recorder::Recorder(std::string uri, std::size_t capacity, Opener opener, std::chrono::milliseconds retry_interval)
    : uri_(std::move(uri)),
      capacity_(capacity),
      opener_(opener ? std::move(opener) : Opener([](std::string_view u) { return open_store(u); })),
      retry_interval_(retry_interval) {}

Recorder::~Recorder() { stop(); }

void Recorder::start() {
  std::lock_guard<std::mutex> lk(mu_);
  if (writer_.joinable() || stopping_) return;
  // The writer takes no signal: libmilter's signal thread waits for
  // SIGTERM and SIGHUP, and a thread that had them unblocked would be
  // where the kernel delivers them (SIGTERM's default action: exit at once).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  writer_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

bool Recorder::submit(std::vector<AggregateRecord> records) {
  if (records.empty()) return true;
  std::size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& r : records) {
      if (stopping_ || queue_.size() >= capacity_) {
        ++dropped;
        continue;
      }
      queue_.push_back(std::move(r));
    }
    if (queue_.size() >= kBatchSize) cv_.notify_one();
  }
  queued_ += records.size() - dropped;
  dropped_ += dropped;
  metrics().store_queued.fetch_add(records.size() - dropped, std::memory_order_relaxed);
  metrics().store_dropped.fetch_add(dropped, std::memory_order_relaxed);
  return dropped == 0;
}

bool Recorder::submit_failures(std::vector<FailureJob> jobs) {
  if (jobs.empty()) return true;
  std::size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& j : jobs) {
      if (stopping_ || failures_.size() >= kMaxQueuedFailures) {
        ++dropped;
        continue;
      }
      failures_.push_back(std::move(j));
    }
  }
  failures_queued_ += jobs.size() - dropped;
  failures_dropped_ += dropped;
  metrics().failure_jobs_queued.fetch_add(jobs.size() - dropped, std::memory_order_relaxed);
  metrics().failure_jobs_dropped.fetch_add(dropped, std::memory_order_relaxed);
  return dropped == 0;
}

void Recorder::stop(std::chrono::milliseconds deadline) {
  std::thread t;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = std::chrono::steady_clock::now() + deadline;
    }
    t = std::move(writer_);
  }
  cv_.notify_one();
  if (t.joinable()) t.join();
}

Recorder::Stats Recorder::stats() const {
  Stats s;
  s.queued = queued_;
  s.written = written_;
  s.dropped = dropped_;
  s.lost = lost_;
  s.store_ok = store_ok_;
  s.failures_queued = failures_queued_;
  s.failures_written = failures_written_;
  s.failures_dropped = failures_dropped_;
  return s;
}

void Recorder::run() {
  using Clock = std::chrono::steady_clock;
  std::shared_ptr<Store> store;
  std::string name = uri_;
  bool failing = false;  // "recording stopped" has been logged
  Clock::time_point next_try{};  // no store work before this (after a failure)
  Clock::time_point next_drop_log = Clock::now() + kDropLogInterval;
  std::uint64_t dropped_logged = 0;
  std::vector<AggregateRecord> batch;  // taken from the queue, not yet stored
  std::vector<FailureJob> fbatch;      // failure jobs likewise
  constexpr std::size_t kFailureBatch = 100;

  auto fail = [&](const std::string& why) {
    store_ok_ = false;
    // The next try opens the store again: a database file deleted or
    // replaced under us is then created afresh at its path (a connection
    // kept open would go on writing into the unlinked file).
    store.reset();
    if (!failing) {
      spdlog::error("recording stopped: {}; mail keeps flowing; retrying every {} s", why,
                    std::chrono::duration_cast<std::chrono::seconds>(retry_interval_).count());
      failing = true;
    }
    next_try = Clock::now() + retry_interval_;
  };

  for (;;) {
    bool stopping;
    Clock::time_point deadline;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto now = Clock::now();
      if ((!batch.empty() || !fbatch.empty()) && next_try > now) {
        // The store failed: nothing to do before the retry but stop. (A full
        // queue must not wake us: it stays full while the store is down.)
        cv_.wait_until(lk, std::min(next_try, now + kFlushInterval), [&] { return stopping_; });
      } else {
        cv_.wait_for(lk, kFlushInterval, [&] { return stopping_ || queue_.size() >= kBatchSize; });
      }
      stopping = stopping_;
      deadline = stop_deadline_;
      while (!queue_.empty() && batch.size() < kBatchSize) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      while (!failures_.empty() && fbatch.size() < kFailureBatch) {
        fbatch.push_back(std::move(failures_.front()));
        failures_.pop_front();
      }
    }
    auto now = Clock::now();
    if (now >= next_drop_log) {
      std::uint64_t d = dropped_.load();
      if (d > dropped_logged) {
        spdlog::warn("report store {}: queue full (ReportQueueSize {}): {} record(s) dropped in the last minute",
                     name, capacity_, d - dropped_logged);
        dropped_logged = d;
      }
      next_drop_log = now + kDropLogInterval;
    }
    bool may_try = now >= next_try || stopping;  // one last try at stop
    if ((!batch.empty() || !fbatch.empty()) && may_try) {
      if (!store) {
        auto opened = opener_(uri_);
        if (!opened) {
          fail(opened.error());
        } else if (!opened.value()) {
          // "none": nothing is recorded (the milter does not make a recorder then).
          batch.clear();
          fbatch.clear();
        } else {
          store = opened.value();
          name = store->describe();
        }
      }
      auto succeeded = [&] {
        store_ok_ = true;
        next_try = {};
        if (failing) {
          spdlog::info("recording resumed: {}", name);
          failing = false;
        }
      };
      bool pass_ok = store != nullptr;
      if (pass_ok && !fbatch.empty()) {
        if (auto err = store->add_failure_jobs(fbatch)) {
          fail(err->message);
          pass_ok = false;
        } else {
          failures_written_ += fbatch.size();
          fbatch.clear();
          succeeded();
        }
      }
      if (pass_ok && !batch.empty()) {
        if (auto err = store->add(batch)) {
          fail(err->message);
        } else {
          written_ += batch.size();
          metrics().store_written.fetch_add(batch.size(), std::memory_order_relaxed);
          batch.clear();
          succeeded();
        }
      }
    }
    if (stopping) {
      bool empty;
      {
        std::lock_guard<std::mutex> lk(mu_);
        empty = queue_.empty() && failures_.empty();
      }
      bool out_of_time = Clock::now() >= deadline;
      if ((empty && batch.empty() && fbatch.empty()) || out_of_time || failing) {
        std::size_t left = batch.size();
        std::size_t left_jobs = fbatch.size();
        {
          std::lock_guard<std::mutex> lk(mu_);
          left += queue_.size();
          left_jobs += failures_.size();
          queue_.clear();
          failures_.clear();
        }
        if (left_jobs > 0) spdlog::error("stopping: {} failure report(s) could not be queued in {}", left_jobs, name);
        if (left > 0) {
          lost_ += left;
          metrics().store_lost.fetch_add(left, std::memory_order_relaxed);
          spdlog::error("stopping: {} record(s) could not be written to {}", left, name);
        }
        std::uint64_t d = dropped_.load();
        if (d > dropped_logged)
          spdlog::warn("report store {}: {} record(s) dropped (queue full) since the last count", name,
                       d - dropped_logged);
        return;
      }
    }
  }
}

std::vector<FailureJob> FailureJobGate::admit(std::vector<FailureJob> jobs, std::int64_t now,
                                              std::uint64_t* dropped) {
  std::vector<FailureJob> out;
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& j : jobs) {
    FailureRateLimit& limit = j.kind == FailureJobKind::Local ? local_ : ruf_;
    if (limit.admit(j.reported_domain, now)) {
      out.push_back(std::move(j));
    } else {
      metrics().failure_jobs_dropped.fetch_add(1, std::memory_order_relaxed);
      if (dropped) ++*dropped;
    }
  }
  return out;
}

bool should_record(const std::vector<std::string>& ignore_mail_to, std::string_view report_sender,
                   const MessageFacts& facts) noexcept {
  if (!report_sender.empty() && ascii_iequals(facts.mail_from, report_sender)) return false;
  for (const auto& r : facts.rcpt_to) {
    if (in_address_list(ignore_mail_to, r)) return false;
  }
  return true;
}

}  // namespace dmarc::milter
