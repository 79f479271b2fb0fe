// NAME
//   report - aggregate report model: records, periods, names, destinations
// SYNOPSIS
//   std::vector<dmarc::AggregateRecord> recs = dmarc::aggregate_records(facts, verdict, now);
//   std::string key = dmarc::record_key(recs[0]);        // the aggregation key
//   dmarc::ReportPeriod day = dmarc::day_period(dmarc::utc_day(now) - 1);
//   std::string id = dmarc::report_id("example.com", day);
// STANDARDS
//   RFC 7489 7.2 and Appendix C (aggregate report, its file name 7.2.1.1,
//   its Subject 7.2.1.1), RFC 7489 7.1 and RFC 9990 4 (verifying external
//   destinations: <policy-domain>._report._dmarc.<host> TXT "v=DMARC1"),
//   RFC 9990 3 (record content; override names; the order of DKIM results).
// DESCRIPTION
//   AggregateRecord is one evaluated message as a report row will show it,
//   for one author domain with a DMARC record. The store adds records with
//   equal record_key() (and equal day and policy domain) into one row with
//   a count, so storage grows with distinct tuples, not messages.
//   Everything here is pure: no I/O, no clock (the caller passes NOW).
//   The key fields:
//     day               UTC day, days since 1970-01-01
//     policy            the record as published where it was found: its
//                       domain (the policy domain), p, sp, np, adkim, aspf,
//                       pct, fo, t, psd, the discovery method, and rua
//     source_ip         the client address
//     header_from       the author domain (RFC5322.From)
//     envelope_from     the RFC5321.MailFrom domain ("" for <>)
//     envelope_to       the domain of the first RCPT TO ("" when none)
//     result            the DMARC result
//     requested         the disposition the policy asked for (after t= and
//                       pct; none for a pass)
//     disposition       what was applied after local overrides
//     dkim_alignment, spf_alignment
//                       the DMARC result per mechanism (pass only when an
//                       aligned identifier passed)
//     overrides         reasons (RFC 9990 names) with their comment
//     dkim              every DKIM result, in header order (RFC 9990 3:
//                       all signatures evaluated), at most kMaxReportedDkim
//     spf               the SPF result with its domain and scope
//     action            what dmarc-milter did with the message
//     list_id           whether it carried a List-Id field (readiness: a
//                       mailing list); not in the report XML
//   count and last_seen are not part of the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/decide.hpp"
#include "dmarc/core/dmarc_record.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/message_policy.hpp"

namespace dmarc {

inline constexpr std::size_t kMaxReportedDkim = 100;
inline constexpr std::int64_t kSecondsPerDay = 86400;

// The policy record as published where it was found.
struct PublishedPolicy {
  std::string domain;  // the policy domain: where the record was found
  Policy p = Policy::None;
  std::optional<Policy> sp;  // as published
  std::optional<Policy> np;  // as published (RFC 9989)
  AlignmentMode adkim = AlignmentMode::Relaxed;
  AlignmentMode aspf = AlignmentMode::Relaxed;
  int pct = 100;
  std::string fo = "0";
  bool t = false;
  PsdFlag psd = PsdFlag::Unspecified;
  DiscoveryMethod discovery = DiscoveryMethod::TreeWalk;
  std::vector<std::string> rua;  // the rua URIs as published, with any !size
  bool operator==(const PublishedPolicy&) const = default;
};

struct DkimAuthResult {
  std::string domain;    // d=
  std::string selector;  // s=
  AuthResult result = AuthResult::None;
  bool operator==(const DkimAuthResult&) const = default;
};

struct SpfAuthResult {
  std::string domain;  // the MAIL FROM domain, or the HELO name
  SpfScope scope = SpfScope::MailFrom;
  AuthResult result = AuthResult::None;
  bool operator==(const SpfAuthResult&) const = default;
};

struct AggregateRecord {
  std::int64_t day = 0;
  PublishedPolicy policy;
  std::string source_ip;
  std::string header_from;
  std::string envelope_from;
  std::string envelope_to;
  DmarcResult result = DmarcResult::None;
  Disposition requested = Disposition::None;
  Disposition disposition = Disposition::None;
  Alignment dkim_alignment = Alignment::None;
  Alignment spf_alignment = Alignment::None;
  std::vector<PolicyOverride> overrides;
  std::vector<DkimAuthResult> dkim;
  std::optional<SpfAuthResult> spf;
  Action action = Action::Accept;
  bool list_id = false;  // the message came with a List-Id field (a mailing list)
  // Not part of the key:
  std::uint64_t count = 1;
  std::int64_t last_seen = 0;  // epoch seconds of the latest message
};

// utc_day - the UTC day (days since 1970-01-01) of epoch seconds T.
std::int64_t utc_day(std::int64_t t) noexcept;
// format_day / parse_day - "YYYY-MM-DD" for a UTC day.
std::string format_day(std::int64_t day);
std::optional<std::int64_t> parse_day(std::string_view text) noexcept;

// aggregate_records - one record per verdict with a DMARC record (the
// author domains that have a policy), at NOW (epoch seconds). Messages
// not checked give none.
std::vector<AggregateRecord> aggregate_records(const MessageFacts& facts, const MessageVerdict& verdict,
                                               std::int64_t now);

// record_key - the canonical text of every key field except day and the
// policy domain (those are columns of their own): equal keys aggregate.
// Untrusted text is escaped, so distinct records never share a key.
std::string record_key(const AggregateRecord& r);

// encode_fields / decode_fields - a list of lists of strings as one text
// ('\t' between fields, '\n' between entries, '\\' escapes; one entry of
// one empty field is "\\e", as "" is no entry), for store
// columns that hold a list (dkim results, overrides, rua).
std::string encode_fields(const std::vector<std::vector<std::string>>& entries);
std::vector<std::vector<std::string>> decode_fields(std::string_view text);

// The token codecs the store and the report use.
std::optional<DmarcResult> parse_dmarc_result(std::string_view s) noexcept;
std::optional<Disposition> parse_disposition(std::string_view s) noexcept;
std::optional<Alignment> parse_alignment(std::string_view s) noexcept;
std::optional<OverrideReason> parse_override_reason(std::string_view s) noexcept;
std::optional<Action> parse_action(std::string_view s) noexcept;
std::optional<AlignmentMode> parse_alignment_mode(std::string_view s) noexcept;
std::optional<PsdFlag> parse_psd_flag(std::string_view s) noexcept;
std::optional<DiscoveryMethod> parse_discovery(std::string_view s) noexcept;
std::string_view to_token(SpfScope s) noexcept;  // "mfrom", "helo"
std::optional<SpfScope> parse_spf_scope(std::string_view s) noexcept;

// merge_records - records equal but for their day (and count, last_seen)
// become one, counts added (saturating at UINT64_MAX), for a report over
// several days. Order: by source_ip, then key.
std::vector<AggregateRecord> merge_records(std::vector<AggregateRecord> records);

// A report period: [begin, end] in epoch seconds, end inclusive (as the
// XML date_range and the file name show it; a day is 00:00:00-23:59:59).
struct ReportPeriod {
  std::int64_t begin = 0;
  std::int64_t end = 0;  // inclusive
  // first_day / last_day - the UTC days whose rows belong to the period:
  // the days that start within [begin, end].
  std::int64_t first_day() const noexcept;
  std::int64_t last_day() const noexcept;
  bool operator==(const ReportPeriod&) const = default;
};
ReportPeriod day_period(std::int64_t day) noexcept;

enum class ReportFormat { Rfc7489, Rfc9990 };
std::string_view to_token(ReportFormat f) noexcept;  // "rfc7489", "rfc9990"

// report_id - unique and stable per (policy domain, period): the same
// inputs give the same id on every host and every run.
std::string report_id(std::string_view policy_domain, const ReportPeriod& period);

// report_file_name - RFC 7489 7.2.1.1: receiver "!" policy-domain "!"
// begin "!" end ".xml.gz" (EXT, without the dot: "xml.gz", "xml").
// Characters a file name should not hold are replaced by '_'.
std::string report_file_name(std::string_view receiver, std::string_view policy_domain, const ReportPeriod& period,
                             std::string_view ext = "xml.gz");

// report_subject - RFC 7489 7.2.1.1:
// "Report Domain: D Submitter: S Report-ID: <ID>".
std::string report_subject(std::string_view policy_domain, std::string_view submitter, std::string_view id);

// A destination: one usable rua URI.
struct ReportDestination {
  std::string uri;           // as published
  std::string address;       // the mailto address
  std::string host;          // its domain, lower case
  std::uint64_t max_size = 0;  // !size, octets; 0: no limit
  bool operator==(const ReportDestination&) const = default;
};

// uri_with_size - a rua/ruf URI as published: its text and any !size
// limit, in its largest exact unit ("mailto:a@example.com!10m"), so that
// report_destinations() reads the limit back.
std::string uri_with_size(const ReportUri& u);

// report_destinations - the mailto destinations of RUA (others are put in
// SKIPPED with why), duplicates dropped, at most kMaxReportUris.
std::vector<ReportDestination> report_destinations(const std::vector<std::string>& rua,
                                                   std::vector<std::string>* skipped = nullptr);

// needs_authorization - RFC 7489 7.1 / RFC 9990 4: a destination whose
// host is not within the policy domain's organizational domain must be
// authorised by the host. ORG_OF gives the organizational domain of a
// name (tree walk or PSL, as the mode is).
bool needs_authorization(std::string_view policy_org_domain, std::string_view destination_org_domain) noexcept;
// authorization_name - "<policy-domain>._report._dmarc.<host>".
std::string authorization_name(std::string_view policy_domain, std::string_view host);
// is_authorization - TXT strings at that name authorise when one of them
// starts with "v=DMARC1" (RFC 7489 7.1 step 3).
bool is_authorization(const std::vector<std::string>& txt) noexcept;

enum class AuthorizationStatus { Authorized, Unauthorized, TempFail };
std::string_view to_token(AuthorizationStatus s) noexcept;
// check_authorization - the DNS part of the check, through RESOLVER.
AuthorizationStatus check_authorization(Resolver& resolver, std::string_view policy_domain, std::string_view host,
                                        std::string* why = nullptr);

// in_list - ADDRESS (or its domain) is in LIST (IgnoreMailTo,
// NoReportsList: addresses or domains, case-insensitive; a domain entry
// also covers its subdomains).
bool in_address_list(const std::vector<std::string>& list, std::string_view address) noexcept;

// The state of one report to one destination, as the store keeps it.
enum class ReportStatus { Pending, Sending, Sent, Failed };
std::string_view to_token(ReportStatus s) noexcept;
std::optional<ReportStatus> parse_report_status(std::string_view s) noexcept;

struct ReportState {
  std::string policy_domain;
  ReportPeriod period;
  std::string destination;  // the mailto address
  ReportStatus status = ReportStatus::Pending;
  int attempts = 0;
  std::string last_error;
  std::string report_id;
  std::int64_t updated = 0;  // epoch seconds
};

}  // namespace dmarc
