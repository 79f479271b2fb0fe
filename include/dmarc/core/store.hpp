// NAME
//   store - where aggregate rows and report states are kept
// SYNOPSIS
//   auto s = dmarc::open_store("sqlite:/var/lib/dmarc-milter/reports.db");  // adapters/store.hpp
//   s.value()->add(batch);                                  // the milter's writer thread
//   auto doms = s.value()->policy_domains(first_day, last_day);  // dmarc-report
// DESCRIPTION
//   Store is the seam between the milter, dmarc-report and the database.
//   The embedded implementation is SQLite (adapters/sqlite_store.hpp); a
//   PostgreSQL one is the same interface under another ReportStore scheme.
//   Semantics every implementation keeps:
//     add             one transaction: each record is added to the row of
//                     its (policy domain, day, record_key()) - count added
//                     (saturating at INT64_MAX, the row's counter), last_seen
//                     the latest - or inserted as a new row. All or nothing.
//     policy_domains  the policy domains with rows in [first_day, last_day]
//     records         the rows of one policy domain in those days, one
//                     AggregateRecord each (day and count set)
//     report_states / put_report_state
//                     one state per (policy domain, period, destination),
//                     put replaces
//     expire          removes rows with day < BEFORE_DAY, report states
//                     of periods that ended before that day and failure
//                     jobs created before it; returns how many rows and
//                     states went
//     add_failure_jobs     one transaction; ids are given by the store
//     pending_failure_jobs the oldest LIMIT jobs still pending, by id
//     update_failure_job   status, attempts, last_error, updated and
//                          the Incidents of the job with that id
//     failure_reports_sent jobs of KIND and DOMAIN ("" for all) sent at
//                          or after SINCE (epoch seconds): the limits' input
//   Errors are values (StoreError with a message naming the database);
//   nothing throws except std::bad_alloc. An implementation may be used
//   from one thread at a time; the milter has one writer thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/failure_report.hpp"
#include "dmarc/core/report.hpp"

namespace dmarc {

struct StoreError {
  std::string message;
};

class Store {
 public:
  virtual ~Store() = default;
  // describe - "sqlite:/path", for logs.
  virtual std::string describe() const = 0;

  virtual std::optional<StoreError> add(const std::vector<AggregateRecord>& batch) = 0;
  virtual Expected<std::vector<std::string>, StoreError> policy_domains(std::int64_t first_day,
                                                                        std::int64_t last_day) = 0;
  virtual Expected<std::vector<AggregateRecord>, StoreError> records(std::string_view policy_domain,
                                                                     std::int64_t first_day,
                                                                     std::int64_t last_day) = 0;
  virtual Expected<std::vector<ReportState>, StoreError> report_states(std::string_view policy_domain,
                                                                       const ReportPeriod& period) = 0;
  virtual std::optional<StoreError> put_report_state(const ReportState& state) = 0;
  virtual std::optional<StoreError> add_failure_jobs(const std::vector<FailureJob>& jobs) = 0;
  virtual Expected<std::vector<FailureJob>, StoreError> pending_failure_jobs(std::size_t limit) = 0;
  virtual std::optional<StoreError> update_failure_job(const FailureJob& job) = 0;
  virtual Expected<std::uint64_t, StoreError> failure_reports_sent(FailureJobKind kind, std::string_view domain,
                                                                   std::int64_t since) = 0;
  struct Expired {
    std::uint64_t rows = 0;
    std::uint64_t states = 0;
  };
  virtual Expected<Expired, StoreError> expire(std::int64_t before_day) = 0;
};

}  // namespace dmarc
