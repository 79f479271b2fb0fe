// NAME
//   aggregate_run - one run of "dmarc-report aggregate": the reports of a
//   period, built, checked, sent and recorded
// SYNOPSIS
//   dmarc::AggregateRunOptions o;  o.period = dmarc::day_period(yesterday); ...
//   dmarc::AggregateRunResult r = dmarc::run_aggregate(store, resolver, &mailer, psl, o, log);
//   return r.exit_code();
// STANDARDS
//   RFC 7489 7.1 and RFC 9990 4 (verifying external destinations), RFC
//   7489 7.2 (the report, its mail, !size), RFC 7489 6.2 (rua).
// DESCRIPTION
//   For each policy domain with rows in the period (or only --domain), the
//   rows are merged into one report; its policy_published and rua are those
//   of the latest message (the policy as it was last seen). Each mailto
//   destination is one mail and one report state in the store:
//     Sent, Failed       nothing more is done (a report is never sent twice
//                        once the MTA took it)
//     NoReportsList      skipped, logged
//     external host      authorised by <domain>._report._dmarc.<host> TXT
//                        v=DMARC1 (wildcards are the DNS's business); a DNS
//                        temporary failure leaves the state Pending for the
//                        next run, an unauthorised host becomes Failed
//     !size (rfc7489)    a mail larger than the limit is not sent: Failed
//     handing over       the state is Sending before the mail goes to the
//                        Mailer and Sent after; a temporary failure leaves
//                        it Pending, a permanent one or the last of
//                        max_attempts makes it Failed (logged "given up").
//                        A run killed between the two finds Sending and
//                        tries again: the mail's Message-ID and Report-ID
//                        are the same, so a receiver can tell the copy.
//   With out_dir set nothing is sent or recorded: each report is written as
//   out_dir/NAME.xml.gz and the mail as out_dir/NAME.eml (NAME the
//   attachment name without .xml.gz), To every destination not in
//   NoReportsList, without the DNS check.
//   After sending, rows and states older than retention_days are expired.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/mailer.hpp"
#include "dmarc/core/org_domain.hpp"
#include "dmarc/core/report.hpp"
#include "dmarc/core/store.hpp"

namespace dmarc {

struct AggregateRunOptions {
  ReportPeriod period;
  std::optional<std::string> domain;   // --domain
  std::optional<std::string> out_dir;  // --out
  std::int64_t now = 0;                // epoch seconds
  ReportFormat format = ReportFormat::Rfc7489;
  DmarcMode mode = DmarcMode::Rfc9989;  // how organizational domains are found
  std::string org_name;                 // ReportOrgName (effective)
  std::string sender;                   // ReportSender (effective)
  std::string contact;                  // ReportContact, "" = none
  std::vector<std::string> no_reports;  // NoReportsList
  int max_attempts = 5;
  int retention_days = 31;
};

struct AggregateRunResult {
  int domains = 0;     // policy domains with rows
  int sent = 0;        // mails handed over (or files written with out_dir)
  int deferred = 0;    // left for the next run (temporary failures)
  int failed = 0;      // given up in this run
  int skipped = 0;     // already sent or failed, or not a usable destination
  bool store_error = false;
  // exit_code - dmarc-report(8): 0 done, 75 something deferred, 1 some
  // report failed, 74 the store failed.
  int exit_code() const noexcept;
};

enum class RunLogLevel { Info, Warning, Error };
using RunLog = std::function<void(RunLogLevel, const std::string&)>;

// run_exit_code - dmarc-report(8)'s exit status of a run: 74 the store
// failed, 1 something was given up, 75 something deferred, else 0.
int run_exit_code(bool store_error, int failed, int deferred) noexcept;

// log_safe - TEXT for one log line: what DNS (rua, ruf, PTR) or a message
// (From domain, MAIL FROM) put there may hold line breaks and terminal
// escapes: control characters become '?', and at most MAX bytes are kept.
std::string log_safe(std::string_view text, std::size_t max = 2048);
// safe_log - LOG with every line passed through log_safe; what the runs
// log through.
RunLog safe_log(const RunLog& log);

// destination_authorized - RFC 7489 7.1 / RFC 9990 4 for one report
// destination: Authorized when HOST is within POLICY_DOMAIN's
// organizational domain or authorises it by DNS; TempFail when DNS could
// not tell (try again later). WHY says what was found.
AuthorizationStatus destination_authorized(Resolver& resolver, std::string_view policy_domain, std::string_view host,
                                           DmarcMode mode, const PublicSuffixList* psl, std::string* why);

AggregateRunResult run_aggregate(Store& store, Resolver& resolver, Mailer* mailer, const PublicSuffixList* psl,
                                 const AggregateRunOptions& options, const RunLog& log);

}  // namespace dmarc
