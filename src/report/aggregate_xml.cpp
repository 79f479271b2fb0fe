// NAME
//   aggregate_xml.cpp - the aggregate report written with xmlTextWriter,
//   and xml_safe_text
// STANDARDS
//   RFC 7489 7.2.1.1 and Appendix C (the schema without namespace, as in
//   ../shared/conformance/schema/rfc7489-appendix-c.no-namespace.derived.xsd),
//   RFC 9990 3 and its schema (dmarc-xml-0.2.xsd, namespace
//   urn:ietf:params:xml:ns:dmarc-2.0), XML 1.0 2.2 (Char), RFC 3629
//   (UTF-8), RFC 4291 2.2 and RFC 5952 (IPv6 text).
// DESCRIPTION
//   See dmarc/report/aggregate_xml.hpp for the mapping of the model onto
//   each format. Every xmlTextWriter call is checked; the first failure
//   ends the document with an error, never a truncated document.
#include "dmarc/report/aggregate_xml.hpp"

#include <libxml/xmlwriter.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmarc/adapters/c_handle.hpp"
#include "dmarc/build_config.hpp"
#include "dmarc/core/ip_net.hpp"
#include "report/aggregate_libxml.hpp"

namespace dmarc {

namespace {

constexpr const char* kNamespace9990 = "urn:ietf:params:xml:ns:dmarc-2.0";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

using report_detail::Writer;
using report_detail::XmlBuffer;
using report_detail::XmlWriter;
using report_detail::xc;

bool is_v4_mapped(const IpAddress& a) {
  if (!a.v6) return false;
  for (int i = 0; i < 10; ++i)
    if (a.bytes[static_cast<std::size_t>(i)] != 0) return false;
  return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

// report_ip - the source_ip text for FORMAT, or nullopt when TEXT is not
// an IP address. RFC 7489's IPAddress pattern has IPv6 only as eight
// groups of hex digits, so that format writes every group ("::" never).
std::optional<std::string> report_ip(std::string_view text, ReportFormat format) {
  std::optional<IpAddress> ip = parse_ip(text);
  if (!ip) return std::nullopt;
  if (is_v4_mapped(*ip)) {
    IpAddress v4;
    for (std::size_t i = 0; i < 4; ++i) v4.bytes[i] = ip->bytes[12 + i];
    return v4.str();
  }
  if (!ip->v6 || format == ReportFormat::Rfc9990) return ip->str();
  std::string out;
  for (std::size_t g = 0; g < 8; ++g) {
    char buf[8];
    unsigned v = (static_cast<unsigned>(ip->bytes[2 * g]) << 8) | ip->bytes[2 * g + 1];
    std::snprintf(buf, sizeof buf, "%x", v);
    if (g) out += ':';
    out += buf;
  }
  return out;
}

// DKIM results as RFC 8601 2.7.1 names them (both schemas): softfail is
// an SPF result only.
std::string_view dkim_token(AuthResult r) {
  return r == AuthResult::SoftFail ? to_token(AuthResult::Fail) : to_token(r);
}

// SPF results: RFC 7489 Appendix C has no "policy" (see the header).
std::string_view spf_token(AuthResult r, ReportFormat format) {
  if (r == AuthResult::Policy && format == ReportFormat::Rfc7489) return to_token(AuthResult::Neutral);
  return to_token(r);
}

bool format_has(OverrideReason r, ReportFormat format) {
  if (format == ReportFormat::Rfc7489) return r != OverrideReason::PolicyTestMode;
  return r != OverrideReason::Forwarded && r != OverrideReason::SampledOut;
}

std::string_view alignment_token(Alignment a) { return a == Alignment::Pass ? "pass" : "fail"; }

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

void write_metadata(Writer& w, const ReportMetadata& m, const std::vector<std::string>& errors, ReportFormat format) {
  // RFC 7489: a sequence, this order; RFC 9990: xs:all, the same order.
  w.start("report_metadata");
  w.element("org_name", m.org_name);
  w.element("email", m.email);
  if (!m.extra_contact_info.empty()) w.element("extra_contact_info", m.extra_contact_info);
  w.element("report_id", m.report_id);
  w.start("date_range");
  w.element("begin", std::to_string(m.period.begin));
  w.element("end", std::to_string(m.period.end));
  w.end();
  if (format == ReportFormat::Rfc7489) {
    for (const auto& e : errors) w.element("error", e);
  } else {
    if (!errors.empty()) w.element("error", join(errors, "; "));  // maxOccurs 1
    w.element("generator", m.generator.empty() ? std::string("dmarc-milter ") + build::kVersion : m.generator);
  }
  w.end();
}

void write_policy(Writer& w, const PublishedPolicy& p, ReportFormat format) {
  const Policy sp = p.sp.value_or(p.p);
  const Policy np = p.np.value_or(sp);  // RFC 9989 4.7
  const std::string fo = p.fo.empty() ? "0" : p.fo;
  w.start("policy_published");
  w.element("domain", p.domain);
  if (format == ReportFormat::Rfc7489) {
    w.element("adkim", to_token(p.adkim));
    w.element("aspf", to_token(p.aspf));
    w.element("p", to_token(p.p));
    w.element("sp", to_token(sp));
    w.element("pct", std::to_string(p.pct));
    w.element("fo", fo);
  } else {
    w.element("discovery_method", to_token(p.discovery));
    w.element("p", to_token(p.p));
    w.element("sp", to_token(sp));
    w.element("np", to_token(np));
    w.element("fo", fo);
    w.element("adkim", to_token(p.adkim));
    w.element("aspf", to_token(p.aspf));
    w.element("testing", p.t ? "y" : "n");
  }
  w.end();
}

void write_record(Writer& w, const AggregateRecord& r, const std::string& ip, ReportFormat format) {
  w.start("record");
  w.start("row");
  w.element("source_ip", ip);
  w.element("count", std::to_string(r.count));
  w.start("policy_evaluated");  // a sequence in both formats
  if (format == ReportFormat::Rfc9990 && r.result == DmarcResult::Pass)
    w.element("disposition", "pass");
  else
    w.element("disposition", to_token(r.disposition));
  w.element("dkim", alignment_token(r.dkim_alignment));
  w.element("spf", alignment_token(r.spf_alignment));
  for (const auto& o : r.overrides) {
    w.start("reason");
    std::string comment = o.comment;
    if (format_has(o.reason, format)) {
      w.element("type", to_token(o.reason));
    } else {
      w.element("type", to_token(OverrideReason::Other));
      comment = std::string(to_token(o.reason)) + (comment.empty() ? "" : ": " + comment);
    }
    if (!comment.empty()) w.element("comment", comment);
    w.end();
  }
  w.end();  // policy_evaluated
  w.end();  // row

  w.start("identifiers");
  if (format == ReportFormat::Rfc7489) {
    if (!r.envelope_to.empty()) w.element("envelope_to", r.envelope_to);
    w.element("envelope_from", r.envelope_from);
    w.element("header_from", r.header_from);
  } else {
    w.element("header_from", r.header_from);
    w.element("envelope_from", r.envelope_from);
    if (!r.envelope_to.empty()) w.element("envelope_to", r.envelope_to);
  }
  w.end();

  w.start("auth_results");  // a sequence: dkim*, then spf
  std::size_t n = 0;
  for (const auto& d : r.dkim) {
    if (n++ == kMaxReportedDkim) break;  // RFC 9990 3: no more than 100
    w.start("dkim");
    w.element("domain", d.domain);
    if (format == ReportFormat::Rfc9990 || !d.selector.empty()) w.element("selector", d.selector);
    w.element("result", dkim_token(d.result));
    w.end();
  }
  if (r.spf) {
    w.start("spf");
    w.element("domain", r.spf->domain);
    if (format == ReportFormat::Rfc7489 || r.spf->scope == SpfScope::MailFrom)
      w.element("scope", to_token(r.spf->scope));
    w.element("result", spf_token(r.spf->result, format));
    if (format == ReportFormat::Rfc9990 && r.spf->scope == SpfScope::Helo) w.element("human_result", "scope: helo");
    w.end();
  } else if (format == ReportFormat::Rfc7489) {
    // Appendix C: "There will always be at least one SPF result."
    w.start("spf");
    w.element("domain", r.envelope_from.empty() ? r.header_from : r.envelope_from);
    w.element("scope", to_token(SpfScope::MailFrom));
    w.element("result", to_token(AuthResult::None));
    w.end();
  }
  w.end();  // auth_results
  w.end();  // record
}

}  // namespace

Expected<std::string, std::string> aggregate_xml(const AggregateReport& report, ReportFormat format) {
  // The rows first: a source_ip that is not an address would make the
  // document invalid (RFC 7489 IPAddress; RFC 9990 3 "IPv4address or
  // IPv6address"), so such a record is left out and named in an error.
  std::vector<std::string> errors = report.meta.errors;
  std::vector<std::pair<const AggregateRecord*, std::string>> rows;
  rows.reserve(report.records.size());
  for (const auto& r : report.records) {
    if (auto ip = report_ip(r.source_ip, format)) {
      rows.emplace_back(&r, std::move(*ip));
    } else {
      errors.push_back("a record was left out: its source_ip \"" + r.source_ip.substr(0, 64) +
                       "\" is not an IP address");
    }
  }
  if (report.records.empty()) return Unexpected(std::string("aggregate report: no record (the schema needs one)"));
  if (rows.empty())
    return Unexpected(std::string("aggregate report: no record with a valid source_ip (first: \"") +
                      xml_safe_text(report.records.front().source_ip) + "\")");

  report_detail::init_libxml();
  XmlBuffer buf(xmlBufferCreate());
  if (!buf) return Unexpected(std::string("aggregate report: out of memory"));
  XmlWriter xw(xmlNewTextWriterMemory(buf.get(), 0));
  if (!xw) return Unexpected(std::string("aggregate report: cannot create the XML writer"));
  Writer w(xw.get());
  w.check(xmlTextWriterSetIndent(xw.get(), 1));
  w.check(xmlTextWriterSetIndentString(xw.get(), xc("  ")));
  w.check(xmlTextWriterStartDocument(xw.get(), "1.0", "UTF-8", nullptr));
  if (format == ReportFormat::Rfc9990)
    w.start_ns("feedback", kNamespace9990);  // a default namespace: children qualified
  else
    w.start("feedback");
  w.element("version", "1.0");
  write_metadata(w, report.meta, errors, format);
  write_policy(w, report.policy, format);
  for (const auto& [rec, ip] : rows) write_record(w, *rec, ip, format);
  w.end();  // feedback
  if (w.ok()) w.check(xmlTextWriterEndDocument(xw.get()));
  if (w.ok()) w.check(xmlTextWriterFlush(xw.get()));
  if (!w.ok()) return Unexpected(std::string("aggregate report: the XML writer failed"));
  xw.reset();  // flushes into buf
  const xmlChar* content = xmlBufferContent(buf.get());
  int len = xmlBufferLength(buf.get());
  if (!content || len <= 0) return Unexpected(std::string("aggregate report: empty document"));
  return std::string(reinterpret_cast<const char*>(content), static_cast<std::size_t>(len));
}

std::string xml_safe_text(std::string_view text) {
  // RFC 3629 4 (well-formed sequences; no surrogates, nothing over
  // U+10FFFF, no overlong forms) and XML 1.0 2.2: Char ::= #x9 | #xA | #xD
  // | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. Each maximal
  // ill-formed subpart becomes one U+FFFD (Unicode 15, 3.9 "U+FFFD
  // Substitution of Maximal Subparts").
  std::string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c >= 0x20 || c == 0x09 || c == 0x0A || c == 0x0D)
        out += static_cast<char>(c);
      else
        out += kReplacement;
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second octet
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing over U+10FFFF
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    std::size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) break;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (k < len) {  // ill-formed: replace the valid prefix read so far
      out += kReplacement;
      i += k;
      continue;
    }
    if (cp == 0xFFFE || cp == 0xFFFF)
      out += kReplacement;
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace dmarc
