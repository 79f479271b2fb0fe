// test_failure_report.cpp - when a failure report is due (fo=), and its
// fields from a verdict (dmarc/core/failure_report.hpp)
#include <catch2/catch.hpp>

#include "dmarc/core/dmarc_record.hpp"
#include "dmarc/core/failure_report.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;

namespace {

Verdict verdict(const std::string& record, Alignment dkim, Alignment spf) {
  Verdict v;
  auto r = parse_dmarc_record(record);
  REQUIRE(r);
  v.record = r.value();
  v.author_domain = "example.com";
  v.record_domain = "example.com";
  v.dkim_alignment = dkim;
  v.spf_alignment = spf;
  v.result = (dkim == Alignment::Pass || spf == Alignment::Pass) ? DmarcResult::Pass : DmarcResult::Fail;
  return v;
}

MessageFacts facts(AuthResult spf, std::vector<AuthResult> dkim) {
  MessageFacts f;
  f.queue_id = "QID1";
  f.client_ip = "192.0.2.7";
  f.mail_from = "bounce@evil.example";
  f.rcpt_to = {"bob@example.net"};
  SpfFacts s;
  s.result = spf;
  s.domain = "evil.example";
  f.spf = s;
  int i = 0;
  for (auto r : dkim) {
    DkimFacts d;
    d.result = r;
    d.domain = i == 0 ? "example.com" : "other.example";
    d.selector = "s" + std::to_string(i++);
    f.dkim.push_back(d);
  }
  return f;
}

}  // namespace

TEST_CASE("failure reports: fo=0 (default) asks when no mechanism aligned", "[failure]") {
  const std::string rec = "v=DMARC1; p=reject; ruf=mailto:ruf@example.com";
  CHECK(failure_report_due(verdict(rec, Alignment::Fail, Alignment::Fail), facts(AuthResult::Fail, {})));
  CHECK_FALSE(failure_report_due(verdict(rec, Alignment::Pass, Alignment::Fail), facts(AuthResult::Fail, {})));
  CHECK_FALSE(failure_report_due(verdict(rec, Alignment::Fail, Alignment::Pass), facts(AuthResult::Pass, {})));
}

TEST_CASE("failure reports: fo=1 asks when any mechanism did not align", "[failure]") {
  const std::string rec = "v=DMARC1; p=reject; fo=1";
  CHECK(failure_report_due(verdict(rec, Alignment::Pass, Alignment::Fail), facts(AuthResult::Fail, {})));
  CHECK(failure_report_due(verdict(rec, Alignment::Fail, Alignment::Pass), facts(AuthResult::Pass, {})));
  CHECK(failure_report_due(verdict(rec, Alignment::Fail, Alignment::Fail), facts(AuthResult::Fail, {})));
  CHECK_FALSE(failure_report_due(verdict(rec, Alignment::Pass, Alignment::Pass), facts(AuthResult::Pass, {})));
}

TEST_CASE("failure reports: fo=d asks when a DKIM signature failed, aligned or not", "[failure]") {
  const std::string rec = "v=DMARC1; p=reject; fo=d";
  // The message passes DMARC by SPF; a signature of another domain failed.
  Verdict pass = verdict(rec, Alignment::Fail, Alignment::Pass);
  CHECK(failure_report_due(pass, facts(AuthResult::Pass, {AuthResult::Pass, AuthResult::Fail})));
  CHECK(failure_report_due(pass, facts(AuthResult::Pass, {AuthResult::PermError})));
  CHECK_FALSE(failure_report_due(pass, facts(AuthResult::Pass, {AuthResult::Pass})));
  CHECK_FALSE(failure_report_due(pass, facts(AuthResult::Pass, {})));
  // fo=d alone does not ask for an all-fail without DKIM signatures.
  CHECK_FALSE(failure_report_due(verdict(rec, Alignment::Fail, Alignment::Fail), facts(AuthResult::Fail, {})));
}

TEST_CASE("failure reports: fo=s asks when SPF failed, aligned or not", "[failure]") {
  const std::string rec = "v=DMARC1; p=reject; fo=s";
  Verdict pass = verdict(rec, Alignment::Pass, Alignment::Fail);
  CHECK(failure_report_due(pass, facts(AuthResult::Fail, {AuthResult::Pass})));
  CHECK(failure_report_due(pass, facts(AuthResult::SoftFail, {AuthResult::Pass})));
  CHECK_FALSE(failure_report_due(pass, facts(AuthResult::Neutral, {AuthResult::Pass})));
  CHECK_FALSE(failure_report_due(pass, facts(AuthResult::Pass, {AuthResult::Pass})));
  // Combined options: any of them.
  const std::string both = "v=DMARC1; p=reject; fo=d:s";
  CHECK(failure_report_due(verdict(both, Alignment::Pass, Alignment::Pass), facts(AuthResult::Pass, {AuthResult::Fail})));
  CHECK(failure_report_due(verdict(both, Alignment::Pass, Alignment::Pass), facts(AuthResult::Fail, {AuthResult::Pass})));
}

TEST_CASE("failure reports: never for psd=y, nor without a record", "[failure]") {
  CHECK_FALSE(failure_report_due(verdict("v=DMARC1; p=reject; psd=y; fo=1", Alignment::Fail, Alignment::Fail),
                                 facts(AuthResult::Fail, {AuthResult::Fail})));
  Verdict none;
  none.result = DmarcResult::None;
  CHECK_FALSE(failure_report_due(none, facts(AuthResult::Fail, {})));
}

TEST_CASE("failure reports: Identity-Alignment, Delivery-Result and the fields of a verdict", "[failure]") {
  CHECK(identity_alignment(verdict("v=DMARC1; p=none", Alignment::Fail, Alignment::Fail)) == "none");
  CHECK(identity_alignment(verdict("v=DMARC1; p=none", Alignment::Pass, Alignment::Fail)) == "dkim");
  CHECK(identity_alignment(verdict("v=DMARC1; p=none", Alignment::Fail, Alignment::Pass)) == "spf");
  CHECK(identity_alignment(verdict("v=DMARC1; p=none", Alignment::Pass, Alignment::Pass)) == "dkim, spf");
  CHECK(delivery_result(Action::Accept, false) == "delivered");
  CHECK(delivery_result(Action::Quarantine, false) == "spam");
  CHECK(delivery_result(Action::Quarantine, true) == "policy");
  CHECK(delivery_result(Action::Reject, false) == "reject");

  Verdict v = verdict("v=DMARC1; p=reject", Alignment::Fail, Alignment::Fail);
  MessageFacts f = facts(AuthResult::Fail, {AuthResult::Fail, AuthResult::Fail});
  f.dkim[0].domain = "other.example";
  f.dkim[1].domain = "example.com";  // the author's signature is the one named
  MessageDecision d;
  d.action = Action::Reject;
  FeedbackReport r = feedback_for(f, v, d, "mx.example.net; dmarc=fail header.from=example.com", "dmarc-milter/0.1",
                                  "Mon, 07 Dec 2026 10:00:00 +0000");
  CHECK(r.feedback_type == "auth-failure");
  CHECK(r.auth_failure == "dmarc");
  CHECK(r.identity_alignment == "none");
  CHECK(r.authentication_results == std::vector<std::string>{"mx.example.net; dmarc=fail header.from=example.com"});
  CHECK(r.original_envelope_id == "QID1");
  CHECK(r.original_mail_from == "<bounce@evil.example>");
  CHECK(r.original_rcpt_to == std::vector<std::string>{"<bob@example.net>"});
  CHECK(r.source_ip == "192.0.2.7");
  CHECK(r.reported_domain == std::vector<std::string>{"example.com"});
  CHECK(r.delivery_result == "reject");
  CHECK(r.dkim_domain == "example.com");
  CHECK(r.dkim_selector == "s1");
  CHECK(r.dkim_identity == "@example.com");
  f.mail_from.clear();
  CHECK(feedback_for(f, v, d, "", "ua", "").original_mail_from == "<>");
}

TEST_CASE("failure reports: a burst of 10 000 is cut to the hourly limits, exactly", "[failure]") {
  FailureRateLimit limit(20, 50);
  const std::int64_t hour = 1796637600;  // 2026-12-07 10:00 UTC
  std::uint64_t admitted_a = 0, admitted_b = 0, admitted_total = 0;
  for (int i = 0; i < 10000; ++i) {
    bool a = limit.admit(i % 2 ? "A.example" : "a.example", hour + i % 3600);  // one domain, any case
    admitted_a += a;
  }
  CHECK(admitted_a == 20);
  for (int i = 0; i < 10000; ++i) {
    std::string d = "d" + std::to_string(i % 10) + ".example";
    bool ok = limit.admit(d, hour + 100);
    admitted_b += ok;
  }
  CHECK(admitted_b == 30);  // the total of 50 is reached
  admitted_total = admitted_a + admitted_b;
  CHECK(admitted_total == 50);
  // The next hour starts afresh; what another run sent this hour counts.
  CHECK(limit.admit("a.example", hour + 3600));
  limit.preload("b.example", hour + 3600, 20);
  CHECK_FALSE(limit.admit("b.example", hour + 3601));
  CHECK(limit.admit("c.example", hour + 3601));
  limit.preload("", hour + 3601, 47);  // the total: 2 admitted + 47 = 49 of 50
  CHECK(limit.admit("d.example", hour + 3602));
  CHECK_FALSE(limit.admit("e.example", hour + 3602));
  FailureRateLimit none(0, 100);
  CHECK_FALSE(none.admit("a.example", hour));
}

TEST_CASE("failure reports: the field list and its reader are inverse", "[failure]") {
  Verdict v = verdict("v=DMARC1; p=reject", Alignment::Fail, Alignment::Pass);
  MessageFacts f = facts(AuthResult::Pass, {AuthResult::Fail});
  MessageDecision d;
  FeedbackReport r = feedback_for(f, v, d, "mx.example.net; dmarc=pass", "ua/1", "Mon, 07 Dec 2026 10:00:00 +0000");
  r.incidents = 7;
  r.other = {{"X-Extra", "value"}};
  FeedbackReport back;
  back.feedback_type.clear();
  back.version.clear();
  for (auto& [n, val] : feedback_field_list(r)) REQUIRE_FALSE(apply_feedback_field(back, n, val));
  CHECK(feedback_field_list(back) == feedback_field_list(r));
  CHECK(back.incidents == 7);
  FeedbackReport bad;
  CHECK(apply_feedback_field(bad, "incidents", "many"));
  CHECK(apply_feedback_field(bad, "Incidents", "0"));
  REQUIRE_FALSE(apply_feedback_field(bad, "SOURCE-IP", "192.0.2.1 (mx.example.org)"));
  CHECK(bad.source_ip == "192.0.2.1");
}

TEST_CASE("failure reports: RFC 5322 dates", "[failure]") {
  CHECK(rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(rfc5322_date(1796637600) == "Mon, 07 Dec 2026 10:00:00 +0000");
  CHECK(rfc5322_date(951782400) == "Tue, 29 Feb 2000 00:00:00 +0000");
}

TEST_CASE("failure reports: the jobs a decided message gives", "[failure]") {
  test::StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; fo=1; ruf=mailto:ruf@example.com!2m,mailto:x@example.net");
  dns.add_txt("_dmarc.none.example", "v=DMARC1; p=none; ruf=mailto:ruf@none.example");
  dns.add_txt("_dmarc.noruf.example", "v=DMARC1; p=reject");
  DecideOptions o;
  o.authserv_id = "mx.example.net";
  o.enforcement.max_from_domains = 5;
  MessageFacts f = facts(AuthResult::Fail, {});
  f.from_fields = {" a@example.com, b@none.example, c@noruf.example"};
  f.header_counts[0] = 1;
  f.header_counts[1] = 1;
  MessageVerdict v = decide(dns, f, o);
  auto jobs = failure_jobs(f, v, "From: a@example.com\n", false, "dmarc-milter/test", 1796637600);
  REQUIRE(jobs.size() == 1);  // none.example is p=none, noruf.example has no ruf
  const FailureJob& j = jobs[0];
  CHECK(j.reported_domain == "example.com");
  CHECK(j.policy_domain == "example.com");
  CHECK(j.ruf == std::vector<std::string>{"mailto:ruf@example.com!2m", "mailto:x@example.net"});
  CHECK(j.feedback.arrival_date == "Mon, 07 Dec 2026 10:00:00 +0000");
  CHECK(j.feedback.user_agent == "dmarc-milter/test");
  REQUIRE(j.feedback.authentication_results.size() == 1);
  CHECK_THAT(j.feedback.authentication_results[0], Catch::Contains("dmarc=fail"));
  CHECK(j.original == "From: a@example.com\n");
  CHECK(j.status == FailureJobStatus::Pending);
  auto with_none = failure_jobs(f, v, "", true, "ua", 1796637600);
  CHECK(with_none.size() == 2);
  MessageVerdict unchecked = v;
  unchecked.checked = false;
  CHECK(failure_jobs(f, unchecked, "", true, "ua", 0).empty());
}

TEST_CASE("local forensic reports: own domains, what is kept, and the explanation an admin reads", "[failure][forensic]") {
  CHECK(is_own_domain({"example.com"}, "example.com"));
  CHECK(is_own_domain({"example.com"}, "Mail.Example.com"));
  CHECK_FALSE(is_own_domain({"example.com"}, "notexample.com"));
  CHECK_FALSE(is_own_domain({}, "example.com"));

  test::StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=none");
  dns.add_txt("_dmarc.other.example", "v=DMARC1; p=reject");
  DecideOptions o;
  o.authserv_id = "mx.example.net";
  // The CRM: SPF passes for its own domain, no DKIM; p=none lets it through.
  MessageFacts crm = facts(AuthResult::Pass, {});
  crm.mail_from = "bounce@crm.example";
  crm.spf->domain = "crm.example";
  crm.client_name = "mta.crm.example";
  crm.from_fields = {" news@example.com"};
  MessageVerdict v = decide(dns, crm, o);
  REQUIRE(v.verdicts.size() == 1);
  CHECK(v.decision.action == Action::Accept);
  auto jobs = local_forensic_jobs(crm, v, {"example.com"}, "From: news@example.com\n", "ua", 1796637600);
  REQUIRE(jobs.size() == 1);
  const FailureJob& j = jobs[0];
  CHECK(j.kind == FailureJobKind::Local);
  CHECK(j.reported_domain == "example.com");
  CHECK(j.ruf.empty());
  CHECK_THAT(j.text, Catch::Contains("Source IP:    192.0.2.7"));
  CHECK_THAT(j.text, Catch::Contains("MAIL FROM:    <bounce@crm.example>"));
  CHECK_THAT(j.text, Catch::Contains("SPF passed for crm.example, which is not within example.com"));
  CHECK_THAT(j.text, Catch::Contains("No DKIM signature passed"));
  CHECK_THAT(j.text, Catch::Contains("What happened:  accept"));
  CHECK_THAT(j.text, Catch::Contains("p=none"));
  CHECK_THAT(j.text, Catch::Contains("Under p=reject it would be rejected."));
  // Not an own domain, or passing: nothing.
  CHECK(local_forensic_jobs(crm, v, {"other.example"}, "", "ua", 0).empty());
  MessageFacts aligned = facts(AuthResult::Pass, {});
  aligned.mail_from = "bounce@example.com";
  aligned.spf->domain = "example.com";
  aligned.from_fields = {" news@example.com"};
  CHECK(local_forensic_jobs(aligned, decide(dns, aligned, o), {"example.com"}, "", "ua", 0).empty());
  // A bounce is named as one.
  MessageFacts bounce = crm;
  bounce.mail_from.clear();
  auto b = local_forensic_jobs(bounce, decide(dns, bounce, o), {"example.com"}, "", "ua", 0);
  REQUIRE(b.size() == 1);
  CHECK_THAT(b[0].text, Catch::Contains("a null-sender message: a bounce or an auto-reply"));
}

TEST_CASE("failure reports: SPF-DNS is left for the sender to complete", "[failure]") {
  Verdict v = verdict("v=DMARC1; p=reject", Alignment::Fail, Alignment::Fail);
  MessageDecision d;
  FeedbackReport r = feedback_for(facts(AuthResult::Fail, {}), v, d, "", "ua", "");
  CHECK(r.spf_dns == "txt : evil.example");
  CHECK(spf_dns_domain(r) == "evil.example");
  CHECK(feedback_for(facts(AuthResult::Pass, {}), v, d, "", "ua", "").spf_dns.empty());
  r.spf_dns = spf_dns_value("evil.example", "v=spf1 -all");
  CHECK(r.spf_dns == "txt : evil.example : \"v=spf1 -all\"");
  CHECK_FALSE(spf_dns_domain(r));  // complete: nothing left to do
}

TEST_CASE("local forensic reports: envelope and DNS text cannot forge lines of the explanation", "[failure][forensic]") {
  test::StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=none");
  DecideOptions o;
  MessageFacts f = facts(AuthResult::Fail, {});
  f.from_fields = {" news@example.com"};
  f.helo = "evil\nSPF:          pass for example.com";
  f.mail_from = "x\r\nWhat happened:  nothing@evil.example";
  f.rcpt_to = {std::string(5000, 'r') + "@example.net"};
  auto jobs = local_forensic_jobs(f, decide(dns, f, o), {"example.com"}, "", "ua", 0);
  REQUIRE(jobs.size() == 1);
  const std::string& t = jobs[0].text;
  CHECK_THAT(t, Catch::Contains("HELO:         evil?SPF:          pass for example.com\n"));
  CHECK(t.find("\nWhat happened:  nothing") == std::string::npos);
  std::size_t longest = 0, start = 0;
  for (std::size_t i = 0; i <= t.size(); ++i) {
    if (i == t.size() || t[i] == '\n') {
      longest = std::max(longest, i - start);
      start = i + 1;
    }
  }
  CHECK(longest <= 14 + 512);
}
