// test_failure_mail.cpp - AFRF failure reports (GMime): built and parsed
// back field by field, the original as headers or whole, header
// injection, and every sample of ../shared/conformance/failure-samples
// read with the same code (stalwart's expected parses compared field by
// field).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dmarc/core/domain.hpp"
#include "dmarc/report/failure_mail.hpp"
#include "support/postfix_instance.hpp"

using namespace dmarc;
namespace fs = std::filesystem;

namespace {

const std::string kSamples = DMARC_CONFORMANCE_DIR "/failure-samples";

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Blanks collapsed: folded values compare equal to their unfolded form.
std::string squash(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool blank = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (blank) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

FeedbackReport full_report() {
  FeedbackReport f;
  f.user_agent = "dmarc-milter/0.1.0";
  f.auth_failure = "dmarc";
  f.identity_alignment = "none";
  f.authentication_results = {"mx.example.net; dmarc=fail (p=reject dis=reject) header.from=example.com; "
                              "spf=fail smtp.mailfrom=evil.example; dkim=fail header.d=example.com header.s=s1 "
                              "header.b=abcdefgh"};
  f.original_envelope_id = "4XyZ1";
  f.original_mail_from = "<bounce@evil.example>";
  f.original_rcpt_to = {"<bob@example.net>", "<carol@example.net>"};
  f.arrival_date = "Mon, 07 Dec 2026 10:00:00 +0000";
  f.source_ip = "192.0.2.7";
  f.reporting_mta = "dns; mx.example.net";
  f.reported_domain = {"example.com"};
  f.delivery_result = "reject";
  f.dkim_domain = "example.com";
  f.dkim_identity = "@example.com";
  f.dkim_selector = "s1";
  f.incidents = 3;
  return f;
}

FailureMail mail_with(const FeedbackReport& f) {
  FailureMail m;
  m.from = "dmarc-failures@mx.example.net";
  m.to = {"ruf@example.com"};
  m.subject = "DMARC failure report for example.com from 192.0.2.7";
  m.message_id = "fail.1@mx.example.net";
  m.date = 1796637600;
  m.text = "A message claiming to be from example.com failed DMARC.\n";
  m.feedback = f;
  m.original = "From: ceo@example.com\nTo: bob@example.net\nSubject: urgent wire transfer\n"
               "Date: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <x@evil.example>\n";
  return m;
}

void require_same(const FeedbackReport& a, const FeedbackReport& b) {
  CHECK(a.feedback_type == b.feedback_type);
  CHECK(a.version == b.version);
  CHECK(a.user_agent == b.user_agent);
  CHECK(a.auth_failure == b.auth_failure);
  CHECK(a.identity_alignment == b.identity_alignment);
  REQUIRE(a.authentication_results.size() == b.authentication_results.size());
  for (std::size_t i = 0; i < a.authentication_results.size(); ++i)
    CHECK(squash(a.authentication_results[i]) == squash(b.authentication_results[i]));
  CHECK(a.original_envelope_id == b.original_envelope_id);
  CHECK(a.original_mail_from == b.original_mail_from);
  CHECK(a.original_rcpt_to == b.original_rcpt_to);
  CHECK(a.arrival_date == b.arrival_date);
  CHECK(a.source_ip == b.source_ip);
  CHECK(a.reporting_mta == b.reporting_mta);
  CHECK(a.reported_domain == b.reported_domain);
  CHECK(a.reported_uri == b.reported_uri);
  CHECK(a.delivery_result == b.delivery_result);
  CHECK(a.dkim_domain == b.dkim_domain);
  CHECK(a.dkim_identity == b.dkim_identity);
  CHECK(a.dkim_selector == b.dkim_selector);
  CHECK(a.spf_dns == b.spf_dns);
  CHECK(a.incidents == b.incidents);
}

}  // namespace

TEST_CASE("failure report: built as ARF and read back field by field", "[failure]") {
  FeedbackReport f = full_report();
  auto built = build_failure_mail(mail_with(f));
  REQUIRE(built);
  const std::string& text = built.value();
  CHECK(text.find('\r') == std::string::npos);
  auto ct = test::header_values(text, "Content-Type");
  REQUIRE(ct.size() == 1);
  CHECK_THAT(ct[0], Catch::Contains("multipart/report") && Catch::Contains("report-type=feedback-report"));
  CHECK_THAT(text, Catch::Contains("Content-Type: message/feedback-report"));
  CHECK_THAT(text, Catch::Contains("Content-Type: text/rfc822-headers"));
  CHECK_THAT(text, Catch::Contains("\nFeedback-Type: auth-failure\n"));
  CHECK_THAT(text, Catch::Contains("\nIdentity-Alignment: none\n"));
  CHECK_THAT(text, Catch::Contains("\nIncidents: 3\n"));

  auto p = parse_failure_mail(text);
  REQUIRE(p);
  require_same(p.value().feedback, f);
  CHECK(p.value().feedback.other.empty());
  CHECK(p.value().subject == "DMARC failure report for example.com from 192.0.2.7");
  CHECK_THAT(p.value().text, Catch::Contains("failed DMARC"));
  CHECK(p.value().original_type == "text/rfc822-headers");
  CHECK_THAT(p.value().original, Catch::Contains("Subject: urgent wire transfer"));
  // One incident is the default and not written.
  f.incidents = 1;
  CHECK(format_feedback_fields(f).find("Incidents") == std::string::npos);
}

TEST_CASE("failure report: the whole original as message/rfc822", "[failure]") {
  FailureMail m = mail_with(full_report());
  m.whole_message = true;
  m.original += "\nThe body of the spoof.\n";
  auto built = build_failure_mail(m);
  REQUIRE(built);
  auto p = parse_failure_mail(built.value());
  REQUIRE(p);
  CHECK(p.value().original_type == "message/rfc822");
  CHECK_THAT(p.value().original, Catch::Contains("Subject: urgent wire transfer") &&
                                     Catch::Contains("The body of the spoof."));
  CHECK(p.value().feedback.auth_failure == "dmarc");
}

TEST_CASE("failure report: line breaks in values cannot add fields", "[failure]") {
  FeedbackReport f = full_report();
  f.original_mail_from = "<a@evil.example>\r\nDelivery-Result: delivered";
  f.user_agent = "x\nReported-Domain: victim.example";
  f.authentication_results = {"mx.example.net; dmarc=fail\r\n\r\nInjected: yes"};
  auto built = build_failure_mail(mail_with(f));
  REQUIRE(built);
  auto p = parse_failure_mail(built.value());
  REQUIRE(p);
  CHECK(p.value().feedback.delivery_result == "reject");
  CHECK(p.value().feedback.reported_domain == std::vector<std::string>{"example.com"});
  CHECK(p.value().feedback.other.empty());
  CHECK(p.value().feedback.authentication_results.size() == 1);
  FailureMail bad = mail_with(full_report());
  bad.to = {"ruf@example.com>, other@example.org"};
  CHECK_FALSE(build_failure_mail(bad));
}

TEST_CASE("failure report samples (stalwart mail-auth): parsed as its expected parse says", "[failure][conformance]") {
  int n = 0;
  for (int i = 1; i <= 5; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "%03d", i);
    std::string base = kSamples + "/stalwart-mail-auth/" + name;
    INFO(base);
    auto p = parse_failure_mail(slurp(base + ".eml"));
    REQUIRE(p);
    const FeedbackReport& f = p.value().feedback;
    auto j = nlohmann::json::parse(slurp(base + ".json"));
    auto str = [&](const char* key) { return j[key].is_null() ? std::string() : j[key].get<std::string>(); };
    auto list = [&](const char* key) {
      std::vector<std::string> out;
      for (const auto& e : j[key]) out.push_back(e.get<std::string>());
      return out;
    };
    std::string type = str("feedback_type");
    CHECK(f.feedback_type == (type == "AuthFailure" ? "auth-failure" : ascii_lowercase(type)));
    CHECK(f.user_agent == str("user_agent"));
    CHECK(f.version == std::to_string(j["version"].get<int>()));
    // mail-auth says "Unspecified" for a report without Auth-Failure.
    std::string af = j.contains("auth_failure") && !j["auth_failure"].is_null() ? ascii_lowercase(str("auth_failure")) : "";
    CHECK(f.auth_failure == (af == "unspecified" ? "" : af));
    CHECK(f.original_envelope_id == str("original_envelope_id"));
    CHECK(f.original_mail_from == str("original_mail_from"));
    if (!j["original_rcpt_to"].is_null()) CHECK(f.original_rcpt_to == std::vector<std::string>{str("original_rcpt_to")});
    CHECK(f.source_ip == str("source_ip"));
    // Deliberate difference: we keep Reporting-MTA as written ("dns; NAME",
    // RFC 5965 3.2 mta-name-type and name); mail-auth keeps the name alone.
    std::string mta = f.reporting_mta;
    if (auto semi = mta.find(';'); semi != std::string::npos) mta = squash(mta.substr(semi + 1));
    CHECK(mta == str("reporting_mta"));
    CHECK(f.reported_domain == list("reported_domain"));
    CHECK(f.reported_uri == list("reported_uri"));
    CHECK(f.incidents == j["incidents"].get<std::uint64_t>());
    CHECK(f.dkim_domain == str("dkim_domain"));
    CHECK(f.dkim_identity == str("dkim_identity"));
    CHECK(f.dkim_selector == str("dkim_selector"));
    auto ar = list("authentication_results");
    REQUIRE(f.authentication_results.size() == ar.size());
    for (std::size_t k = 0; k < ar.size(); ++k) CHECK(squash(f.authentication_results[k]) == squash(ar[k]));
    if (!j["headers"].is_null()) {
      CHECK(p.value().original_type == "text/rfc822-headers");
      CHECK(squash(p.value().original) == squash(str("headers")));
    }
    ++n;
  }
  CHECK(n == 5);
}

TEST_CASE("failure report samples (parsedmarc): real reports, base64 feedback parts, a report without ARF",
          "[failure][conformance]") {
  for (const char* name : {"dmarc_ruf_report_linkedin.eml", "dmarc_ruf_report_linkedin.crlf.eml"}) {
    INFO(name);
    auto p = parse_failure_mail(slurp(kSamples + "/parsedmarc/" + name));
    REQUIRE(p);
    const FeedbackReport& f = p.value().feedback;
    CHECK(f.feedback_type == "auth-failure");
    CHECK(f.auth_failure == "dmarc");
    CHECK(f.user_agent == "Lua/1.0");
    CHECK(f.source_ip == "10.10.10.10");
    CHECK(f.original_mail_from.empty());
    CHECK(f.original_rcpt_to == std::vector<std::string>{"recipient@linkedin.com"});
    CHECK(f.reported_domain == std::vector<std::string>{"example.com"});
    CHECK(f.delivery_result == "delivered");
  }
  {
    auto p = parse_failure_mail(
        slurp(kSamples + "/parsedmarc/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, "
                         "ip=10.10.10.10).eml"));
    REQUIRE(p);
    CHECK(p.value().feedback.auth_failure == "dmarc");
    CHECK(p.value().feedback.original_mail_from == "sharepoint@domain.de");
    CHECK(p.value().feedback.reported_domain == std::vector<std::string>{"domain.de"});
    CHECK(p.value().original_type == "message/rfc822");
  }
  {
    // The feedback part is base64 with CRLF inside.
    auto p = parse_failure_mail(slurp(kSamples + "/parsedmarc/[Netease DMARC Failure Report] Rent Reminder.eml"));
    REQUIRE(p);
    const FeedbackReport& f = p.value().feedback;
    CHECK(f.feedback_type == "auth-failure");
    CHECK(f.user_agent == "NtesDmarcReporter/1.0");
    CHECK(f.source_ip == "167.89.69.24");
    CHECK(f.reported_domain == std::vector<std::string>{"cardinal.com"});
    CHECK(f.original_envelope_id == "N8CowEApcUPo6q1bnXlMAA--.44392S3");
    CHECK(f.identity_alignment == "spf,dkim");
    CHECK(f.dkim_domain == "entrata.com");
  }
  auto none = parse_failure_mail(slurp(kSamples + "/parsedmarc/exim_plain_text_only_no_arf_part.eml"));
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Catch::Contains("not") );
}
