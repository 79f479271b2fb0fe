// NAME
//   aggregate_xml - the aggregate report document: written with libxml2's
//   xmlTextWriter, read back with libxml2, gzip with zlib
// SYNOPSIS
//   dmarc::AggregateReport r;  r.meta = ...; r.policy = ...; r.records = ...;
//   auto xml = dmarc::aggregate_xml(r, dmarc::ReportFormat::Rfc7489);
//   auto gz  = dmarc::gzip(xml.value());
//   auto back = dmarc::parse_aggregate_xml(dmarc::gunzip(gz.value()).value());
// STANDARDS
//   RFC 7489 Appendix C (no namespace, as consumers parse it today; every
//   element the schema requires: version, pct, fo, envelope_from, spf
//   scope), RFC 9990 (namespace urn:ietf:params:xml:ns:dmarc-2.0,
//   generator, np, testing, discovery_method, selector, disposition pass,
//   RFC 9990 override names). RFC 1952 (gzip).
// DESCRIPTION
//   aggregate_xml() never builds XML by string concatenation: every
//   element and text goes through xmlTextWriter, which escapes markup.
//   Text that XML 1.0 cannot hold (control characters, invalid UTF-8) is
//   replaced by U+FFFD first (xml_safe_text), so any domain or header text
//   gives a well-formed document. Numbers are written in decimal.
//   Mapping of the model (dmarc/core/report.hpp):
//     version                       1.0 in both formats
//     report_metadata               org_name, email, extra_contact_info (when
//                                   not ""), report_id, date_range, error
//                                   (rfc7489: one element per error; rfc9990
//                                   allows one: the errors joined by "; "),
//                                   rfc9990 generator (meta.generator, or
//                                   "dmarc-milter VERSION" when "")
//     policy_published              rfc7489: domain adkim aspf p sp pct fo,
//                                   sp = p when not published. rfc9990:
//                                   domain discovery_method p sp np fo adkim
//                                   aspf testing; no pct. RFC 9990 3 asks
//                                   for "the discovered or default value"
//                                   ("Unspecified tags have their default
//                                   values"), so sp (default p) and np
//                                   (default sp, RFC 9989 4.7) are always
//                                   written: the reader cannot tell a
//                                   published sp/np from a default one.
//     source_ip                     rfc7489: dotted quad, or IPv6 as eight
//                                   groups without "::" (the Appendix C
//                                   IPAddress pattern has no compressed
//                                   form); rfc9990: RFC 5952 text. An
//                                   IPv4-mapped address (::ffff:a.b.c.d)
//                                   is written as IPv4. A record whose
//                                   source_ip is not an IP address is left
//                                   out and an <error> names it; when no
//                                   record is left aggregate_xml fails.
//     policy_evaluated/disposition  AggregateRecord::disposition (rfc9990:
//                                   "pass" when the DMARC result is pass)
//     policy_evaluated/dkim|spf     pass when that alignment is Pass, else fail
//     reason                        each override: type and comment (when
//                                   not ""). A name the format lacks is
//                                   "other" with the name put before the
//                                   comment ("policy_test_mode: COMMENT",
//                                   or the bare name): rfc7489 lacks
//                                   policy_test_mode, rfc9990 lacks
//                                   forwarded and sampled_out.
//     identifiers                   envelope_to (when not ""), envelope_from
//                                   (always; "" for the null sender, RFC
//                                   9990 3 "MAY be existing but empty"),
//                                   header_from
//     auth_results/dkim             every DKIM result, at most
//                                   kMaxReportedDkim (rfc9990: selector
//                                   always; rfc7489: when not ""). softfail,
//                                   which DKIM has not, is written fail.
//     auth_results/spf              the SPF result. rfc7489: when SPF was
//                                   not checked, the envelope_from domain
//                                   (or header_from when "") with scope
//                                   mfrom and result none, as the schema
//                                   needs one; the SPF result "policy",
//                                   which Appendix C lacks, is written
//                                   neutral (no verdict the receiver took,
//                                   and not the error in the domain's
//                                   record that permerror would claim).
//                                   rfc9990: spf is left out when SPF was
//                                   not checked; a helo result is written
//                                   without scope (the schema allows only
//                                   mfrom) and with human_result
//                                   "scope: helo".
//   A report with no record fails: both schemas require one (record+).
//
//   parse_aggregate_xml() is lenient as a consumer must be: namespace-
//   agnostic (local names, ASCII case-insensitive), version optional,
//   unknown elements ignored, values trimmed and compared without case
//   (Yahoo's trailing TABs, "PASS"), numbers may carry a fraction of
//   zeros ("1337270400.0", as NetEase writes date_range), and the old SPF
//   names "unknown" and "error" read as temperror and permerror. A value that is present but
//   not understood (a disposition, count, result, p/sp/np, adkim/aspf,
//   pct, testing, discovery_method, date) refuses the document, naming
//   the record by its number, as does a record without source_ip, count
//   or disposition, and a document without report_metadata or
//   policy_published; an empty or unknown reason type is read as other
//   (an unknown name kept before the comment). A document without any
//   record is read (records empty), though the schemas require one. It fills what the model has: ReportMetadata,
//   PublishedPolicy (testing -> t, discovery_method -> discovery) and per
//   record source_ip (RFC 5952 text when it is an address), count,
//   disposition, result (pass when the disposition is "pass" or an
//   alignment passed, else fail), the alignments (a missing one: None),
//   reasons (an "other" written by aggregate_xml for a name the format
//   lacks is read back as that name), identifiers, the DKIM results and
//   the first SPF result (preferring scope mfrom); each record gets the
//   report's policy and the day of date_range/begin. requested and action
//   are not in a report and keep their defaults.
// SECURITY
//   parse_aggregate_xml() refuses documents over kMaxAggregateXmlSize and
//   any document with a DOCTYPE: the parse stops at the declaration, so no
//   entity is declared or expanded (no XXE, no "billion laughs"), and no
//   network access is made (XML_PARSE_NONET). gunzip() stops at MAX_OUT
//   octets of output (gzip bombs).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/report.hpp"

namespace dmarc {

// The largest document parse_aggregate_xml() reads (and gunzip()'s default).
inline constexpr std::size_t kMaxAggregateXmlSize = std::size_t{64} << 20;

struct ReportMetadata {
  std::string org_name;            // ReportOrgName
  std::string email;               // ReportSender
  std::string extra_contact_info;  // ReportContact, "" = none
  std::string report_id;
  std::string generator;           // rfc9990: "dmarc-milter VERSION"
  ReportPeriod period;
  std::vector<std::string> errors;
};

struct AggregateReport {
  ReportMetadata meta;
  PublishedPolicy policy;
  std::vector<AggregateRecord> records;  // merged: one per row
};

// aggregate_xml - the report as a UTF-8 XML document in FORMAT, or why
// not (no record; no record with a valid source_ip; libxml2 failed).
Expected<std::string, std::string> aggregate_xml(const AggregateReport& report, ReportFormat format);

// xml_safe_text - TEXT with invalid UTF-8 (RFC 3629: overlong forms,
// surrogates, over U+10FFFF, truncated sequences; each maximal ill-formed
// subpart one U+FFFD) and characters XML 1.0 2.2 cannot hold (C0 controls
// but TAB, LF, CR; NUL; U+FFFE, U+FFFF) replaced by U+FFFD.
std::string xml_safe_text(std::string_view text);

// gzip / gunzip - RFC 1952 through zlib. gzip writes one member; gunzip
// reads gzip only (not zlib or raw deflate), every member of a multi-member
// file, and refuses damaged, truncated or trailing data and output over
// MAX_OUT octets (it never holds more than MAX_OUT).
Expected<std::string, std::string> gzip(std::string_view data);
Expected<std::string, std::string> gunzip(std::string_view data, std::size_t max_out = kMaxAggregateXmlSize);

// parse_aggregate_xml - a report document read back (see DESCRIPTION).
Expected<AggregateReport, std::string> parse_aggregate_xml(std::string_view xml);

}  // namespace dmarc
