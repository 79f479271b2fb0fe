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
//   gives a well-formed document.
//   Mapping of the model (dmarc/core/report.hpp):
//     policy_evaluated/disposition  AggregateRecord::disposition (rfc9990:
//                                   "pass" when the DMARC result is pass)
//     policy_evaluated/dkim|spf     pass when that alignment is Pass, else fail
//     reason                        each override: type and comment; in
//                                   rfc7489 a name that format lacks is "other"
//     identifiers                   envelope_to (when known), envelope_from
//                                   (always; "" for the null sender), header_from
//     auth_results/dkim             every DKIM result (rfc9990: selector always)
//     auth_results/spf              the SPF result; when SPF was not checked,
//                                   the envelope_from domain (or header_from)
//                                   with scope mfrom and result none, as the
//                                   schema needs one
//   parse_aggregate_xml() is lenient as a consumer must be: namespace-
//   agnostic, version optional, unknown elements ignored; it fills what the
//   model has and is used to check a report round trip.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/report.hpp"

namespace dmarc {

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

// aggregate_xml - the report as a UTF-8 XML document.
Expected<std::string, std::string> aggregate_xml(const AggregateReport& report, ReportFormat format);

// xml_safe_text - TEXT with invalid UTF-8 and characters XML 1.0 cannot
// hold replaced by U+FFFD.
std::string xml_safe_text(std::string_view text);

// gzip / gunzip - RFC 1952 through zlib. gunzip refuses output over MAX_OUT.
Expected<std::string, std::string> gzip(std::string_view data);
Expected<std::string, std::string> gunzip(std::string_view data, std::size_t max_out = 64u << 20);

// parse_aggregate_xml - a report document read back (see DESCRIPTION).
Expected<AggregateReport, std::string> parse_aggregate_xml(std::string_view xml);

}  // namespace dmarc
