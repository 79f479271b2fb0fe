// test_report_mail.cpp - the report mail (GMime 3): structure, round trip
// of binary attachments, RFC 2047 encoding, header injection, bad input.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>

#include "dmarc/report/report_mail.hpp"
#include "support/postfix_instance.hpp"

using namespace dmarc;

namespace {

ReportMail sample_mail() {
  ReportMail m;
  m.from = "dmarc-reports@mx.example.net";
  m.from_name = "mx.example.net DMARC reports";
  m.to = {"rua@example.com"};
  m.subject = "Report Domain: example.com Submitter: mx.example.net Report-ID: <1.2@dmarc-milter>";
  m.message_id = "1.2.rua@mx.example.net";
  m.date = 1765000000;
  m.text = "This is an aggregate DMARC report.\n";
  m.attachment_name = "mx.example.net!example.com!1764892800!1764979199.xml.gz";
  std::mt19937 rng(7);
  for (int i = 0; i < 70000; ++i) m.attachment += static_cast<char>(rng() & 0xff);
  return m;
}

}  // namespace

TEST_CASE("report mail: structure and a byte-exact attachment", "[mail]") {
  ReportMail m = sample_mail();
  auto built = build_report_mail(m);
  REQUIRE(built);
  const std::string& text = built.value();
  CHECK(text.find('\r') == std::string::npos);  // LF line ends; the MTA converts
  std::istringstream lines(text);
  std::string line;
  std::size_t longest = 0;
  while (std::getline(lines, line)) longest = std::max(longest, line.size());
  CHECK(longest <= 998);  // RFC 5322 2.1.1
  for (const char* h : {"From", "To", "Subject", "Date", "Message-Id", "MIME-Version", "Content-Type"}) {
    INFO(h);
    CHECK(test::header_values(text, h).size() == 1);
  }
  CHECK_THAT(test::header_values(text, "Content-Type")[0], Catch::Contains("multipart/mixed"));

  auto parsed = parse_report_mail(text);
  REQUIRE(parsed);
  const ParsedMail& p = parsed.value();
  CHECK_THAT(p.from, Catch::Contains("dmarc-reports@mx.example.net"));
  CHECK(p.to == "rua@example.com");
  CHECK(p.subject == m.subject);
  CHECK(p.message_id == m.message_id);
  CHECK_THAT(p.date, Catch::Contains("2025"));
  REQUIRE(p.parts.size() == 2);
  CHECK(p.parts[0].content_type == "text/plain");
  CHECK_THAT(p.parts[0].data, Catch::Contains("aggregate DMARC report"));
  CHECK(p.parts[1].content_type == "application/gzip");
  CHECK(p.parts[1].file_name == m.attachment_name);
  CHECK(p.parts[1].data == m.attachment);
  CHECK_THAT(text, Catch::Contains("Content-Transfer-Encoding: base64"));
  CHECK_THAT(text, Catch::Contains("Content-Disposition: attachment"));
}

TEST_CASE("report mail: non-ASCII header text is RFC 2047 encoded and decodes back", "[mail]") {
  ReportMail m = sample_mail();
  m.from_name = "Berichte f\xc3\xbcr DMARC";
  m.subject = "Report Domain: b\xc3\xbc" "cher.example Submitter: mx.example.net Report-ID: <x>";
  auto built = build_report_mail(m);
  REQUIRE(built);
  std::string head = built.value().substr(0, built.value().find("\n\n"));
  for (unsigned char c : head) CHECK(c < 0x80);
  CHECK_THAT(head, Catch::Contains("=?"));
  auto p = parse_report_mail(built.value());
  REQUIRE(p);
  CHECK(p.value().subject == m.subject);
  CHECK_THAT(p.value().from, Catch::Contains("f\xc3\xbcr"));
}

TEST_CASE("report mail: line breaks in header text cannot add fields", "[mail]") {
  ReportMail m = sample_mail();
  m.subject = "Report Domain: evil.example\r\nBcc: victim@example.org\nX-Injected: 1";
  m.from_name = "name\r\nReply-To: x@example.org";
  m.attachment_name = "a\nContent-Type: text/html\n.xml.gz";
  m.message_id = "id\r\nX-Other: 2";
  auto built = build_report_mail(m);
  REQUIRE(built);
  const std::string& text = built.value();
  for (const char* h : {"Bcc", "X-Injected", "Reply-To", "X-Other"}) {
    INFO(h);
    CHECK(test::header_values(text, h).empty());
  }
  auto p = parse_report_mail(text);
  REQUIRE(p);
  REQUIRE(p.value().parts.size() == 2);
  CHECK(p.value().parts[1].content_type == "application/gzip");
  CHECK(p.value().parts[1].data == m.attachment);
}

TEST_CASE("report mail: bad addresses are refused, not written", "[mail]") {
  for (std::string bad : {"", "no-at-sign", "a b@example.com", "x@example.com>, y@example.org",
                          "\"q\"@example.com", "x@example.com\r\nBcc: y@example.org"}) {
    INFO(bad);
    ReportMail m = sample_mail();
    m.from = bad;
    CHECK_FALSE(build_report_mail(m));
    m = sample_mail();
    m.to = {bad};
    CHECK_FALSE(build_report_mail(m));
  }
  ReportMail none = sample_mail();
  none.to.clear();
  CHECK_FALSE(build_report_mail(none));
}

TEST_CASE("parse_report_mail: garbage gives an error or an empty mail, never a crash", "[mail]") {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string junk;
    std::size_t n = rng() % 3000;
    for (std::size_t i = 0; i < n; ++i) junk += static_cast<char>(rng() & 0xff);
    if (round % 3 == 0) junk = "Content-Type: multipart/mixed; boundary=x\n\n--x\n" + junk;
    auto p = parse_report_mail(junk);
    if (p) CHECK(p.value().parts.size() <= 1 + n);
  }
  auto empty = parse_report_mail("");
  if (empty) CHECK(empty.value().parts.size() <= 1);
}
