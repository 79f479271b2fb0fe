// NAME
//   dmarc_record - parse a DMARC policy record (the TXT at _dmarc.<domain>)
// STANDARDS
//   RFC 7489 6.3 (general record format), 6.4 (formal definition), 6.6.3
//   (policy discovery: invalid p / missing p with a usable rua);
//   RFC 9989 4.7 (tags np, psd, t; pct, rf, ri removed).
// DESCRIPTION
//   parse_dmarc_record() accepts one TXT record, already concatenated from
//   its character-strings, and returns the record with every default
//   applied, or why it is not a usable DMARC record.
//   - "v=DMARC1" must be the first tag, exactly (RFC 7489 6.4 ABNF is
//     case-sensitive for the value); otherwise NotDmarc.
//   - p, sp, np: none | quarantine | reject, case-insensitive. An invalid
//     or missing p (or an invalid sp/np) makes the record act as "p=none"
//     when rua holds at least one usable mailto: URI (RFC 7489 6.6.3,
//     RFC 9989 4.7), or when the record is a PSD record (psd=y, which need
//     not carry p, RFC 9989); otherwise the record is invalid.
//   - Syntax errors in any other tag are discarded in favour of the default
//     (RFC 7489 6.3), and noted in problems so the check tool can show them.
//   - Unknown tags are ignored (RFC 7489 6.3, RFC 9989 4.7) and noted.
//   - A tag given twice keeps its first value (noted).
//   - "\;" (a backslash stored by some DNS editors before ';') is read
//     as ';' and noted.
//   pct, rf and ri are kept for RFC 7489 mode and reports; the policy code
//   uses pct only in RFC 7489 mode.
// DIAGNOSTICS
//   RecordError for unusable records; RecordProblem list for tags that were
//   discarded or ignored.
// SECURITY
//   Input is untrusted DNS data; records over kMaxRecordLength octets are
//   refused before parsing, and the URI lists are capped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc {

inline constexpr std::size_t kMaxRecordLength = 8192;
inline constexpr std::size_t kMaxReportUris = 16;

enum class Policy { None, Quarantine, Reject };
enum class AlignmentMode { Relaxed, Strict };
// RFC 9989 psd tag: y (a Public Suffix Domain), n (an Organizational
// Domain), u or absent (unspecified).
enum class PsdFlag { Unspecified, Yes, No };

std::string_view to_token(Policy p) noexcept;
std::string_view to_token(AlignmentMode m) noexcept;
std::string_view to_token(PsdFlag f) noexcept;
std::optional<Policy> parse_policy_token(std::string_view s) noexcept;

struct ReportUri {
  std::string uri;              // as published, whitespace trimmed
  std::uint64_t max_size = 0;   // octets, 0 = no limit ("!10m" -> 10 MiB)
  bool is_mailto() const;       // "mailto:" scheme with an address
  std::string mailto_address() const;  // the address, "" if not mailto
};

// RFC 7489 6.3 fo: when to send failure reports.
struct FailureOptions {
  bool all_fail = true;   // "0": all mechanisms failed to produce an aligned pass
  bool any_fail = false;  // "1": any mechanism failed
  bool dkim = false;      // "d": a DKIM signature failed
  bool spf = false;       // "s": SPF failed
  std::string text = "0"; // normalised, e.g. "d:s"
};

enum class ProblemSeverity { Info, Warning };

struct RecordProblem {
  ProblemSeverity severity = ProblemSeverity::Warning;
  std::string tag;      // the tag concerned ("" for the record as a whole)
  std::string message;  // human-readable, for logs and the check tool
};

struct DmarcRecord {
  Policy p = Policy::None;
  bool p_from_rua_rule = false;  // p=none because p was missing/invalid and rua usable
  std::optional<Policy> sp;      // as published
  std::optional<Policy> np;      // as published (RFC 9989)
  AlignmentMode adkim = AlignmentMode::Relaxed;
  AlignmentMode aspf = AlignmentMode::Relaxed;
  FailureOptions fo;
  std::vector<ReportUri> rua;
  std::vector<ReportUri> ruf;
  bool t = false;                // RFC 9989 test mode
  PsdFlag psd = PsdFlag::Unspecified;
  int pct = 100;                 // RFC 7489 only
  std::string rf = "afrf";       // RFC 7489 only
  std::uint32_t ri = 86400;      // RFC 7489 only
  bool pct_present = false;
  std::vector<RecordProblem> problems;

  // sp defaults to p; np defaults to sp (RFC 9989 4.7).
  Policy subdomain_policy() const { return sp.value_or(p); }
  Policy nonexistent_policy() const { return np.value_or(subdomain_policy()); }
};

enum class RecordError {
  Empty,            // no text
  TooLong,          // over kMaxRecordLength
  NotDmarc,         // does not start with v=DMARC1: not a DMARC record at all
  InvalidPolicy,    // p/sp/np invalid and no usable rua
  MissingPolicy,    // no p and no usable rua
};
std::string_view to_token(RecordError e) noexcept;

struct RecordParseError {
  RecordError code;
  std::string detail;
};

// is_dmarc_record - does TXT start with "v=DMARC1" (so that it counts as a
// DMARC record for the one-record rule of RFC 7489 6.6.3 step 2)?
bool is_dmarc_record(std::string_view txt) noexcept;

Expected<DmarcRecord, RecordParseError> parse_dmarc_record(std::string_view txt);

}  // namespace dmarc
