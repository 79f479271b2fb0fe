// fuzz_report - hostile domains and header text through the report builders:
// the AFRF failure report (feedback_for, src/core/failure_report.cpp;
// build_failure_mail, src/report/failure_mail.cpp) and the aggregate report
// XML (aggregate_xml, src/report/aggregate_xml.cpp).
//
// Input: consumed with libFuzzer's FuzzedDataProvider: strings (a backslash
// followed by another byte ends one; "\\" is one backslash) in the order the
// code below takes them, then the small numbers (enums, flags) from the end
// of the input. Every byte, NUL, CR, LF and invalid UTF-8 included, reaches
// every string.
//
// Invariants:
//   - no crash, no leak;
//   - failure report: build_failure_mail() gives a message or an error
//     (only for what new_message refuses: a From or To that is no plain
//     address, no recipient); a built message parses with GMime, its top
//     level has exactly the header fields we write (From, To, Subject,
//     Date, Message-ID, MIME-Version, Content-Type: none injected), each
//     once; parse_failure_mail() reads it back with every feedback field we
//     wrote (one line, white space runs as one space) and none we did not
//     (no field injected into the message/feedback-report part), the
//     subject on one line, and the original header text back unchanged;
//   - aggregate report: aggregate_xml() gives a document or fails only
//     when no record is left (each record without an IP address is left
//     out); the document parses with libxml2 without a DTD, validates
//     against the format's XSD (../shared/conformance/schema: the derived
//     no-namespace RFC 7489 Appendix C schema, the RFC 9990 schema) and
//     parse_aggregate_xml() reads it back with as many records, and every
//     header_from and policy domain as xml_safe_text made it.
#include <fuzzer/FuzzedDataProvider.h>

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/failure_report.hpp"
#include "dmarc/core/ip_net.hpp"
#include "dmarc/core/report.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "dmarc/report/failure_mail.hpp"
#include "report/gmime_util.hpp"

using namespace dmarc;

namespace {

// Counts for FUZZ_REPORT_VERBOSE (is every check reached?).
std::size_t n_mail = 0, n_mail_built = 0, n_xml = 0, n_validated = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_report: property violated: %s\n", what);
    std::abort();
  }
}

// norm - what a header field value becomes on one line: controls and
// white space runs as one space, trimmed.
std::string norm(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    bool space = c < 0x20 || c == 0x7f || c == ' ';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool utf8(std::string_view s) { return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr); }

// literal - text a header field carries and a reader gives back as it was:
// UTF-8 without "=?" (RFC 2047 encoded-word syntax, which GMime writes as
// it is and every reader, ours included, decodes; see the report of issue
// 16: such text reads back decoded, never with CR, LF or NUL).
bool literal(std::string_view s) { return utf8(s) && s.find("=?") == std::string_view::npos; }

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

// ---- failure report ---------------------------------------------------------

void failure_report(FuzzedDataProvider& in) {
  ++n_mail;
  MessageFacts facts;
  // The client address comes from the MTA's socket: always an address.
  static const char* const kClients[] = {"192.0.2.7", "2001:db8::25", "::ffff:198.51.100.9", ""};
  facts.client_ip = kClients[in.ConsumeIntegralInRange(0, 3)];
  facts.helo = in.ConsumeRandomLengthString(300);
  facts.mail_from = in.ConsumeRandomLengthString(400);
  facts.queue_id = in.ConsumeRandomLengthString(40);
  int rcpts = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < rcpts; ++i) facts.rcpt_to.push_back(in.ConsumeRandomLengthString(300));
  facts.from_fields.push_back(in.ConsumeRandomLengthString(600));
  DkimFacts dk;
  dk.domain = in.ConsumeRandomLengthString(300);
  dk.selector = in.ConsumeRandomLengthString(100);
  dk.result = static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7));
  if (in.ConsumeBool()) facts.dkim.push_back(dk);
  SpfFacts spf;
  spf.domain = in.ConsumeRandomLengthString(300);
  spf.identity = in.ConsumeRandomLengthString(300);
  spf.result = static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7));
  if (in.ConsumeBool()) facts.spf = spf;

  Verdict v;
  v.result = DmarcResult::Fail;
  v.author_domain = in.ConsumeRandomLengthString(300);
  v.record_domain = in.ConsumeRandomLengthString(300);
  v.dkim_domain = in.ConsumeRandomLengthString(300);
  v.dkim_selector = in.ConsumeRandomLengthString(100);
  v.spf_domain = in.ConsumeRandomLengthString(300);
  v.dkim_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
  v.spf_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
  MessageDecision d;
  d.action = static_cast<Action>(in.ConsumeIntegralInRange(0, 3));
  d.hold = in.ConsumeBool();
  std::string ar = in.ConsumeRandomLengthString(1000);
  std::string ua = in.ConsumeRandomLengthString(100);
  std::string arrival = in.ConsumeRandomLengthString(100);

  FailureMail m;
  m.feedback = feedback_for(facts, v, d, ar, ua, arrival);
  m.from = in.ConsumeBool() ? in.ConsumeRandomLengthString(100) : "dmarc-reports@mx.test.example";
  m.from_name = in.ConsumeRandomLengthString(200);
  m.to.push_back(in.ConsumeBool() ? in.ConsumeRandomLengthString(100) : "ruf@example.net");
  m.subject = "DMARC failure report for " + v.author_domain + " from " + m.feedback.source_ip;
  m.message_id = in.ConsumeRandomLengthString(100);
  m.date = in.ConsumeIntegralInRange<std::int64_t>(0, 4102444800);
  m.text = in.ConsumeRandomLengthString(2000);
  // The header section as Session keeps it: CR removed, LF line ends.
  std::string original;
  for (char c : in.ConsumeRandomLengthString(8000))
    if (c != '\r') original += c;
  m.original = original;
  m.whole_message = false;

  auto built = build_failure_mail(m);
  if (!built) {
    bool plain = gmime::plain_address(m.from) && !m.to.empty();
    for (const auto& t : m.to) plain = plain && gmime::plain_address(t);
    check(!plain, "build_failure_mail refused a report with plain addresses");
    return;
  }
  const std::string& text = *built;
  ++n_mail_built;

  gmime::GPtr<GMimeMessage> msg = gmime::parse_message(text);
  check(msg != nullptr, "the report does not parse with GMime");
  // The header section as written: every line a field or a continuation.
  std::map<std::string, int> seen;
  std::size_t end = text.find("\n\n");
  check(end != std::string::npos, "no end of the header section");
  std::size_t pos = 0;
  while (pos < end) {
    std::size_t lf = text.find('\n', pos);
    std::string_view line(text.data() + pos, lf - pos);
    pos = lf + 1;
    if (line[0] == ' ' || line[0] == '\t') continue;
    std::size_t colon = line.find(':');
    check(colon != std::string_view::npos && colon > 0, "a header line that is neither a field nor a continuation");
    std::string name(line.substr(0, colon));
    for (char& c : name) {
      check(c > 0x20 && c < 0x7f, "a field name with a control or non-ASCII octet");
      c = static_cast<char>(g_ascii_tolower(c));
    }
    ++seen[name];
  }
  static const std::map<std::string, int> kTop = {{"from", 1}, {"to", 1}, {"subject", 1}, {"date", 1},
                                                  {"message-id", 1}, {"mime-version", 1}, {"content-type", 1}};
  std::map<std::string, int> want = kTop;
  if (norm(m.message_id).empty()) want.erase("message-id");
  if (seen != want) {
    for (const auto& [n, c] : seen) std::fprintf(stderr, "fuzz_report: top-level field %s x%d\n", n.c_str(), c);
  }
  check(seen == want, "top-level header fields other than ours (injected or missing)");

  auto back = parse_failure_mail(text);
  check(back.has_value(), "our failure report does not read back");
  const ParsedFailureReport& p = *back;
  check(p.subject.find('\n') == std::string::npos && p.subject.find('\r') == std::string::npos,
        "subject not on one line");
  // Text that is not UTF-8 is written as GMime can (encoded words of the
  // "utf-8" charset it is declared to be) and may read back otherwise, and
  // so may text with encoded-word syntax (literal()); the rest must come
  // back as it was.
  if (literal(m.subject)) check(norm(p.subject) == norm(m.subject), "subject does not read back");
  check(p.feedback.other.empty(), "a feedback field we did not write (injected)");
  std::vector<std::pair<std::string, std::string>> wrote = feedback_field_list(m.feedback);
  std::vector<std::pair<std::string, std::string>> read = feedback_field_list(p.feedback);
  std::vector<std::pair<std::string, std::string>> wrote_n, read_n;
  for (auto& [n, val] : wrote) {
    std::string one = norm(val);
    if (!one.empty()) wrote_n.emplace_back(n, literal(val) ? one : "(not literal)");
  }
  for (std::size_t i = 0; i < read.size(); ++i) {
    const auto& [n, val] = read[i];
    check(val.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos, "a feedback field read with CR, LF or NUL");
    if (norm(val).empty()) continue;
    // Match a field written as not literal() by position and name alone.
    bool as_written = read_n.size() < wrote_n.size() && wrote_n[read_n.size()].second == "(not literal)" &&
                      wrote_n[read_n.size()].first == n;
    read_n.emplace_back(n, as_written ? "(not literal)" : norm(val));
  }
  if (wrote_n != read_n) {
    for (const auto& [n, val] : wrote_n) std::fprintf(stderr, "wrote %s: [%s]\n", n.c_str(), val.c_str());
    for (const auto& [n, val] : read_n) std::fprintf(stderr, "read  %s: [%s]\n", n.c_str(), val.c_str());
  }
  check(wrote_n == read_n, "feedback fields do not read back as written");
  check(p.original_type == "text/rfc822-headers", "the original is not text/rfc822-headers");
  auto strip_end = [](std::string s) {
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  };
  check(strip_end(p.original) == strip_end(m.original), "the original header text does not read back unchanged");
}

// ---- aggregate report -------------------------------------------------------

xmlSchemaPtr load_schema(const std::string& path) {
  std::ifstream probe(path);
  if (!probe) {
    std::fprintf(stderr, "fuzz_report: no schema %s: documents are only parsed\n", path.c_str());
    return nullptr;
  }
  xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path.c_str());
  xmlSchemaPtr s = xmlSchemaParse(pc);
  xmlSchemaFreeParserCtxt(pc);
  if (!s) {
    std::fprintf(stderr, "fuzz_report: schema %s does not compile\n", path.c_str());
    std::abort();
  }
  return s;
}

void silent(void*, const char*, ...) {}

void aggregate_report(FuzzedDataProvider& in) {
  static xmlSchemaPtr xsd7489 = load_schema(DMARC_CONFORMANCE_DIR "/schema/rfc7489-appendix-c.no-namespace.derived.xsd");
  static xmlSchemaPtr xsd9990 = load_schema(DMARC_CONFORMANCE_DIR "/schema/rfc9990-dmarc-xml-0.2.xsd");
  AggregateReport r;
  r.meta.org_name = in.ConsumeRandomLengthString(200);
  r.meta.email = in.ConsumeRandomLengthString(200);
  r.meta.extra_contact_info = in.ConsumeRandomLengthString(200);
  r.meta.report_id = in.ConsumeRandomLengthString(100);
  r.meta.generator = in.ConsumeRandomLengthString(100);
  r.meta.period.begin = in.ConsumeIntegralInRange<std::int64_t>(0, 4102444800);
  r.meta.period.end = r.meta.period.begin + 86399;
  int errors = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < errors; ++i) r.meta.errors.push_back(in.ConsumeRandomLengthString(200));
  r.policy.domain = in.ConsumeRandomLengthString(300);
  r.policy.p = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  if (in.ConsumeBool()) r.policy.sp = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  if (in.ConsumeBool()) r.policy.np = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  r.policy.adkim = in.ConsumeBool() ? AlignmentMode::Strict : AlignmentMode::Relaxed;
  r.policy.pct = in.ConsumeIntegralInRange(0, 100);
  r.policy.fo = in.ConsumeRandomLengthString(20);
  r.policy.t = in.ConsumeBool();
  r.policy.discovery = in.ConsumeBool() ? DiscoveryMethod::Psl : DiscoveryMethod::TreeWalk;
  int records = in.ConsumeIntegralInRange(1, 3);
  std::size_t with_ip = 0;
  for (int i = 0; i < records; ++i) {
    AggregateRecord a;
    a.policy = r.policy;
    static const char* const kIps[] = {"192.0.2.1", "2001:db8::1", "::ffff:198.51.100.7", "fe80::1:2:3:4"};
    int ip = in.ConsumeIntegralInRange(0, 4);
    a.source_ip = ip < 4 ? kIps[ip] : in.ConsumeRandomLengthString(64);
    if (parse_ip(a.source_ip)) ++with_ip;
    a.header_from = in.ConsumeRandomLengthString(300);
    a.envelope_from = in.ConsumeRandomLengthString(300);
    a.envelope_to = in.ConsumeRandomLengthString(300);
    a.result = static_cast<DmarcResult>(in.ConsumeIntegralInRange(0, 4));
    a.disposition = static_cast<Disposition>(in.ConsumeIntegralInRange(0, 2));
    a.dkim_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
    a.spf_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
    if (in.ConsumeBool())
      a.overrides.push_back({static_cast<OverrideReason>(in.ConsumeIntegralInRange(0, 6)), in.ConsumeRandomLengthString(200)});
    int dkims = in.ConsumeIntegralInRange(0, 2);
    for (int k = 0; k < dkims; ++k)
      a.dkim.push_back({in.ConsumeRandomLengthString(300), in.ConsumeRandomLengthString(100),
                        static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7))});
    if (in.ConsumeBool())
      a.spf = SpfAuthResult{in.ConsumeRandomLengthString(300), in.ConsumeBool() ? SpfScope::Helo : SpfScope::MailFrom,
                            static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7))};
    a.count = in.ConsumeIntegral<std::uint64_t>();
    r.records.push_back(std::move(a));
  }
  for (ReportFormat fmt : {ReportFormat::Rfc7489, ReportFormat::Rfc9990}) {
    auto xml = aggregate_xml(r, fmt);
    if (!xml) {
      check(with_ip == 0, "aggregate_xml failed with a record left");
      continue;
    }
    check(with_ip > 0, "aggregate_xml wrote a report without a record");
    ++n_xml;
    xmlDocPtr doc = xmlReadMemory(xml->data(), static_cast<int>(xml->size()), "report.xml", nullptr,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    check(doc != nullptr, "the aggregate report is not well-formed XML");
    check(doc->intSubset == nullptr, "the aggregate report has a DTD");
    xmlSchemaPtr schema = fmt == ReportFormat::Rfc7489 ? xsd7489 : xsd9990;
    if (schema) {
      xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
      xmlSchemaSetValidErrors(vc, silent, silent, nullptr);
      int rc = xmlSchemaValidateDoc(vc, doc);
      xmlSchemaFreeValidCtxt(vc);
      if (rc != 0) std::fprintf(stderr, "fuzz_report: %s\n", xml->c_str());
      check(rc == 0, "the aggregate report does not validate against its XSD");
      ++n_validated;
    }
    xmlFreeDoc(doc);
    auto back = parse_aggregate_xml(*xml);
    check(back.has_value(), "our aggregate report does not read back");
    check(back->records.size() == with_ip, "records lost or added on the way back");
    check(trim(back->policy.domain) == trim(xml_safe_text(r.policy.domain)), "policy domain does not read back");
    std::size_t k = 0;
    for (const auto& a : r.records) {
      if (!parse_ip(a.source_ip)) continue;
      // parse_aggregate_xml orders nothing: records come back in document order.
      check(trim(back->records[k].header_from) == trim(xml_safe_text(a.header_from)), "header_from does not read back");
      ++k;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  xmlInitParser();
  xmlSetGenericErrorFunc(nullptr, silent);
  if (std::getenv("FUZZ_REPORT_VERBOSE"))
    std::atexit([] {
      std::fprintf(stderr, "fuzz_report: %zu failure reports, %zu built; %zu XML documents, %zu validated\n", n_mail,
                   n_mail_built, n_xml, n_validated);
    });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return -1;
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    failure_report(in);
  else
    aggregate_report(in);
  return 0;
}
