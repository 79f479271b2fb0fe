// NAME
//   failure_run - one run of "dmarc-report failures": the queued failure
//   reports checked, rate limited, sent and marked
// SYNOPSIS
//   dmarc::FailureRunResult r = dmarc::run_failures(store, resolver, &mailer, psl, options, log);
// STANDARDS
//   RFC 7489 7.1 (ruf destinations verified like rua), RFC 7489 7.3 and
//   RFC 9991 (failure reports; their rate limit), RFC 6591 (AFRF).
// DESCRIPTION
//   The pending jobs (oldest first, at most options.batch) are taken in
//   turn. Per job: the mailto ruf destinations (others skipped, the
//   NoReportsList removed), each verified as for aggregate reports
//   (destination_authorized: a DNS tempfail leaves the job pending, an
//   unauthorised destination is left out); then the hourly limits
//   (FailureRateLimit, started from what the store says was sent this
//   hour): a job over the limit is dropped and counted (logged per domain).
//   One mail per job to every authorised destination (and the Bcc), built
//   by build_failure_mail; a destination whose !size the mail exceeds is
//   left out. Sent, or on a temporary failure pending again until
//   max_attempts, then failed. With out_dir nothing is sent or marked:
//   each mail is written as out_dir/failure-ID.eml (the limits apply).
//   Local forensic jobs (OwnDomains) skip ruf, its checks and the hourly
//   limits: at most forensic_max_per_day per domain and UTC day, their
//   text part the stored explanation with the source's PTR (and whether it
//   is forward-confirmed) added, written into forensic_maildir (Maildir:
//   tmp/ then new/) and mailed to forensic_mail_to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dmarc/core/mailer.hpp"
#include "dmarc/core/org_domain.hpp"
#include "dmarc/core/store.hpp"
#include "dmarc/report/aggregate_run.hpp"

namespace dmarc {

struct FailureRunOptions {
  std::optional<std::string> out_dir;
  std::int64_t now = 0;
  DmarcMode mode = DmarcMode::Rfc9989;
  std::string org_name;                 // for the text part
  std::string sender;                   // FailureReportsSentBy (effective)
  std::vector<std::string> bcc;         // FailureReportsBcc
  std::vector<std::string> no_reports;  // NoReportsList
  std::uint64_t rate_domain = 10;
  std::uint64_t rate_total = 100;
  int max_attempts = 5;
  std::size_t batch = 10000;
  std::string redact_key;  // FailureReportRedactKey: "" = no redaction
  // Local forensic reports (OwnDomains): where they go, how many a day.
  std::string forensic_maildir;
  std::vector<std::string> forensic_mail_to;
  std::uint64_t forensic_max_per_day = 10000;
};

struct FailureRunResult {
  int sent = 0;      // mails handed over (or written with out_dir)
  int dropped = 0;   // over the rate limits
  int deferred = 0;  // left pending (temporary failures)
  int failed = 0;    // given up
  bool store_error = false;
  int exit_code() const noexcept { return run_exit_code(store_error, failed, deferred); }
};

FailureRunResult run_failures(Store& store, Resolver& resolver, Mailer* mailer, const PublicSuffixList* psl,
                              const FailureRunOptions& options, const RunLog& log);

}  // namespace dmarc
