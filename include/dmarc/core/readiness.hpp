// NAME
//   readiness - what a stricter DMARC policy would lose: sources of a
//   domain's mail, their class, the projection and a recommendation
// SYNOPSIS
//   std::vector<dmarc::SourceSummary> s = dmarc::summarize_sources(records);
//   for (auto& x : s) { x.ptr = ...; x.domain_spf_authorises = ...; }   // the caller's DNS and SPF
//   dmarc::Readiness r = dmarc::assess(domain, records, s, days, thresholds);
// DESCRIPTION
//   A domain owner moving from p=none to quarantine to reject must first
//   find every sender of theirs whose mail does not align. From the
//   aggregate rows of the domain (dmarc/core/report.hpp), per source IP:
//   messages, aligned passes, the SPF domains and DKIM d= seen. Each source
//   gets one class, by this rule (the only place it is decided):
//     aligned                 at least 95% of its messages pass DMARC
//     forwarder               a forwarder or mailing list: a List-Id
//                             field, or a local trusted_forwarder,
//                             mailing_list or forwarded override, was
//                             recorded; or an aligned DKIM
//                             pass with SPF failing (the path changed, the
//                             signature survived); or a signature of the
//                             domain that failed (modified in transit) from
//                             a source the domain's SPF does not authorise
//     authorised_misaligned   the domain's own SPF record passes for the
//                             source IP (domain_spf_authorises, evaluated
//                             by the caller: only a receiver can), or a
//                             signature of the domain failed from such a
//                             source: the domain's own sender, misconfigured
//     unauthenticated         none of these: likely spoofing, even when it
//                             passes SPF and DKIM for an unrelated domain
//   The projection: under p=quarantine and p=reject, the messages that
//   fail DMARC would be quarantined or rejected (local overrides at other
//   receivers are not counted on); "legitimate" are those from sources not
//   unauthenticated, as a share of all legitimate-looking mail.
//   The recommendation against the thresholds: "not enough data" below
//   min_days of data or with no message; from none to quarantine, and from
//   quarantine to reject, when the legitimate share at risk is at most
//   max_legitimate_at_risk; otherwise stay (fix the sources listed first);
//   at reject: stay at reject.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/report.hpp"

namespace dmarc {

enum class SourceClass { Aligned, AuthorisedMisaligned, Forwarder, Unauthenticated };
std::string_view to_token(SourceClass c) noexcept;

struct SourceSummary {
  std::string ip;
  std::string ptr;      // the caller's PTR name ("" none)
  std::string ptr_org;  // its organizational domain ("" none)
  std::uint64_t messages = 0;
  std::uint64_t aligned_pass = 0;
  std::uint64_t failed = 0;  // messages that failed DMARC
  std::set<std::string> spf_domains;   // SPF pass or fail, the domains checked
  std::set<std::string> dkim_domains;  // d= seen
  std::set<std::string> spf_pass_domains, dkim_pass_domains;
  bool domain_dkim_failed = false;         // a signature of the domain (or below it) failed
  bool forwarder_override = false;         // trusted_forwarder / mailing_list / forwarded recorded
  bool aligned_dkim_spf_fail = false;      // an aligned DKIM pass with SPF failing
  bool domain_spf_authorises = false;      // filled by the caller
  SourceClass cls = SourceClass::Unauthenticated;  // filled by classify()
  std::string fix;                                 // what to do, for the ones that need it
};

// summarize_sources - one summary per source IP of RECORDS (one policy
// domain, DOMAIN), by messages, most first.
std::vector<SourceSummary> summarize_sources(std::string_view domain, const std::vector<AggregateRecord>& records);

// classify - the class of S (DESCRIPTION) and its fix text.
void classify(std::string_view domain, SourceSummary& s);

struct Thresholds {
  int min_days = 7;
  double max_legitimate_at_risk = 0.01;  // a share: 0.01 = 1%
};

struct Projection {
  std::uint64_t affected = 0;    // messages that would be quarantined / rejected
  std::uint64_t legitimate = 0;  // of them, from sources not unauthenticated
};

struct Readiness {
  std::string domain;
  ReportPeriod period;
  int days = 0;  // days with data
  Policy current = Policy::None;
  std::uint64_t messages = 0;
  std::uint64_t aligned_pass = 0;
  std::uint64_t legitimate_messages = 0;
  Projection quarantine, reject;
  double legitimate_at_risk = 0;  // reject.legitimate / legitimate_messages
  std::string recommendation;     // "stay at none", "go to quarantine", "go to reject", "stay at quarantine",
                                  // "stay at reject", "not enough data"
  std::vector<SourceSummary> sources;  // classified, most messages first
  struct Day {
    std::int64_t day = 0;
    std::uint64_t messages = 0;
    std::uint64_t aligned_pass = 0;
  };
  std::vector<Day> daily;  // the days with data, in order
};

// assess - the readiness of DOMAIN over PERIOD from RECORDS and the
// classified SOURCES (summarize_sources + the caller's DNS facts).
Readiness assess(std::string_view domain, const ReportPeriod& period, const std::vector<AggregateRecord>& records,
                 std::vector<SourceSummary> sources, const Thresholds& t);

}  // namespace dmarc
