// test_failure_run.cpp - run_failures() against a real SQLite store, a
// static resolver for the ruf checks and sh as the mailer: destinations,
// the hourly limits over a burst, retries, --out, the fields in the mail.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/report/failure_mail.hpp"
#include "dmarc/report/failure_run.hpp"
#include "dmarc/report/mailer.hpp"
#include "dmarc/report/redact.hpp"
#include "support/static_resolver.hpp"
#include "mail_dir.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::slurp;
using dmarc::test::TempDir;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr std::int64_t kNow = 1796637600 + 1800;  // 2026-12-07 10:30 UTC



FailureJob job(const std::string& domain, std::vector<std::string> ruf, int n = 0) {
  FailureJob j;
  j.created = kNow - 60;
  j.reported_domain = domain;
  j.policy_domain = domain;
  j.ruf = std::move(ruf);
  j.feedback.user_agent = "dmarc-milter/test";
  j.feedback.auth_failure = "dmarc";
  j.feedback.identity_alignment = "none";
  j.feedback.authentication_results = {"mx.example.net; dmarc=fail header.from=" + domain};
  j.feedback.original_mail_from = "<bounce@evil.example>";
  j.feedback.source_ip = "192.0.2." + std::to_string(n % 250);
  j.feedback.reported_domain = {domain};
  j.feedback.delivery_result = "reject";
  j.original = "From: ceo@" + domain + "\nSubject: wire " + std::to_string(n) + "\n";
  return j;
}

struct Fixture {
  TempDir dir;
  std::shared_ptr<Store> store;
  test::StaticResolver dns;
  test::MailDir mails{dir.file("mails")};
  std::vector<std::string> log;
  Fixture() {
    auto s = open_store("sqlite:" + dir.file("r.db"));
    REQUIRE(s);
    store = s.value();
    dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    dns.add_txt("_dmarc.example.net", "v=DMARC1; p=none");
    dns.add_txt("_dmarc.example.org", "v=DMARC1; p=none");
    dns.add_txt("example.com._report._dmarc.forensics.example.net", "v=DMARC1");
  }
  FailureRunOptions options() const {
    FailureRunOptions o;
    o.now = kNow;
    o.org_name = "mx.example.net";
    o.sender = "dmarc-failures@mx.example.net";
    o.max_attempts = 2;
    return o;
  }
  std::unique_ptr<Mailer> file_mailer() const { return mails.mailer(); }
  FailureRunResult run(Mailer* m, const FailureRunOptions& o) {
    return run_failures(*store, dns, m, nullptr, o, [this](RunLogLevel, const std::string& s) { log.push_back(s); });
  }
  std::vector<std::pair<std::string, std::string>> sent() const { return mails.mails(); }
  std::string all_log() const {
    std::string s;
    for (const auto& l : log) s += l + "\n";
    return s;
  }
};

}  // namespace

TEST_CASE("run_failures: one ARF mail to the authorised ruf destinations, fields intact", "[run][failure]") {
  Fixture f;
  REQUIRE_FALSE(f.store->add_failure_jobs({job("example.com", {"mailto:ruf@example.com",
                                                                "mailto:fr@forensics.example.net",
                                                                "mailto:x@unauth.example.org", "https://x.example/"})}));
  auto m = f.file_mailer();
  FailureRunOptions o = f.options();
  o.bcc = {"audit@mx.example.net"};
  auto r = f.run(m.get(), o);
  INFO(f.all_log());
  CHECK(r.sent == 1);
  CHECK(r.exit_code() == 0);
  auto sent = f.sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].first == "ruf@example.com fr@forensics.example.net audit@mx.example.net");
  auto p = parse_failure_mail(sent[0].second);
  REQUIRE(p);
  CHECK(p.value().to == "ruf@example.com, fr@forensics.example.net");  // the Bcc is not in the header
  CHECK(p.value().subject == "DMARC failure report for example.com from 192.0.2.0");
  CHECK(p.value().feedback.auth_failure == "dmarc");
  CHECK(p.value().feedback.source_ip == "192.0.2.0");
  CHECK(p.value().feedback.delivery_result == "reject");
  CHECK(p.value().original_type == "text/rfc822-headers");
  CHECK_THAT(p.value().original, Catch::Contains("Subject: wire 0"));
  CHECK_THAT(p.value().text, Catch::Contains("claiming to be from example.com"));
  CHECK_THAT(f.all_log(), Catch::Contains("x@unauth.example.org: external destination not authorised"));
  CHECK(f.store->pending_failure_jobs(10).value().empty());
  CHECK(f.store->failure_reports_sent(FailureJobKind::Ruf, "example.com", kNow - 3600).value() == 1);
  // Nothing is sent twice.
  CHECK(f.run(m.get(), o).sent == 0);
  CHECK(f.sent().size() == 1);
}

TEST_CASE("run_failures: a burst of 10 000 sends exactly the hourly limits and counts the rest", "[run][failure]") {
  Fixture f;
  std::vector<FailureJob> burst;
  for (int i = 0; i < 10000; ++i) burst.push_back(job(i % 4 ? "example.com" : "example.org", {"mailto:ruf@example.com"}, i));
  for (auto& j : burst) {
    if (j.reported_domain == "example.org") {
      j.ruf = {"mailto:ruf@example.org"};
      j.policy_domain = "example.org";
    }
  }
  REQUIRE_FALSE(f.store->add_failure_jobs(burst));
  auto m = f.file_mailer();
  FailureRunOptions o = f.options();
  o.rate_domain = 7;
  o.rate_total = 10;
  auto r = f.run(m.get(), o);
  CHECK(r.sent == 10);  // 7 for example.com, then the total cuts example.org at 3
  CHECK(r.dropped == 9990);
  int com = 0, org = 0;
  for (const auto& [rcpt, mail] : f.sent()) (rcpt == "ruf@example.com" ? com : org)++;
  CHECK(com == 7);
  CHECK(org == 3);
  CHECK_THAT(f.all_log(), Catch::Contains("example.com: 7493 failure report(s) over the hourly limits"));
  // A later run in the same hour starts from what was sent: nothing more.
  REQUIRE_FALSE(f.store->add_failure_jobs({job("example.com", {"mailto:ruf@example.com"})}));
  auto again = f.run(m.get(), o);
  CHECK(again.sent == 0);
  CHECK(again.dropped == 1);
  // The next hour, one more goes.
  REQUIRE_FALSE(f.store->add_failure_jobs({job("example.com", {"mailto:ruf@example.com"})}));
  o.now += 3600;
  CHECK(f.run(m.get(), o).sent == 1);
}

TEST_CASE("run_failures: temporary failures retried up to ReportMaxAttempts; --out writes and marks nothing",
          "[run][failure]") {
  Fixture f;
  REQUIRE_FALSE(f.store->add_failure_jobs({job("example.com", {"mailto:ruf@example.com"})}));
  SECTION("--out") {
    FailureRunOptions o = f.options();
    o.out_dir = f.dir.path();
    auto r = f.run(nullptr, o);
    CHECK(r.sent == 1);
    auto pending = f.store->pending_failure_jobs(10).value();
    REQUIRE(pending.size() == 1);
    std::string eml = f.dir.file("failure-" + std::to_string(pending[0].id) + ".eml");
    REQUIRE(fs::exists(eml));
    auto p = parse_failure_mail(slurp(eml));
    REQUIRE(p);
    CHECK(p.value().feedback.reported_domain == std::vector<std::string>{"example.com"});
  }
  SECTION("a failing MTA") {
    auto failing = command_mailer({"/bin/sh", "-c", "cat >/dev/null; exit 75"}, milliseconds(5000));
    auto r1 = f.run(failing.get(), f.options());
    CHECK(r1.deferred == 1);
    CHECK(r1.exit_code() == 75);
    auto r2 = f.run(failing.get(), f.options());
    CHECK(r2.failed == 1);
    CHECK(f.store->pending_failure_jobs(10).value().empty());
    CHECK_THAT(f.all_log(), Catch::Contains("given up"));
  }
  SECTION("a DNS tempfail on an external destination") {
    REQUIRE_FALSE(f.store->add_failure_jobs({job("example.com", {"mailto:fr@flaky.example.net"})}));
    f.dns.fail("example.com._report._dmarc.flaky.example.net", DnsStatus::TempFail);
    auto m = f.file_mailer();
    auto r = f.run(m.get(), f.options());
    CHECK(r.sent == 1);
    CHECK(r.deferred == 1);
    CHECK(f.store->pending_failure_jobs(10).value().size() == 1);
  }
}

TEST_CASE("run_failures: local forensic reports go to the Maildir with the source's PTR, bounded per day",
          "[run][failure][forensic]") {
  Fixture f;
  f.dns.add("7.2.0.192.in-addr.arpa", RRType::PTR, "mta.crm.example");
  f.dns.add("mta.crm.example", RRType::A, "192.0.2.7");
  std::vector<FailureJob> jobs;
  for (int i = 0; i < 4; ++i) {
    FailureJob j = job("example.com", {}, 7);
    j.kind = FailureJobKind::Local;
    j.text = "A message claiming to be from example.com failed DMARC.\n\nSource IP:    192.0.2.7\nHELO:  x\n";
    jobs.push_back(j);
  }
  REQUIRE_FALSE(f.store->add_failure_jobs(jobs));
  FailureRunOptions o = f.options();
  o.forensic_maildir = f.dir.file("Forensic");
  o.forensic_max_per_day = 3;
  auto m = f.file_mailer();
  auto r = f.run(m.get(), o);
  INFO(f.all_log());
  CHECK(r.sent == 3);
  CHECK(r.dropped == 1);
  CHECK(f.sent().empty());  // no ForensicMailTo: nothing mailed
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(o.forensic_maildir + "/new")) files.push_back(e.path().string());
  REQUIRE(files.size() == 3);
  CHECK(fs::is_empty(o.forensic_maildir + "/tmp"));
  auto p = parse_failure_mail(slurp(files[0]));
  REQUIRE(p);
  CHECK_THAT(p.value().subject, Catch::StartsWith("DMARC forensic report: example.com failed DMARC from 192.0.2.7"));
  CHECK_THAT(p.value().text, Catch::Contains("Source IP:    192.0.2.7\nPTR:          mta.crm.example (forward-confirmed)"));
  CHECK(p.value().feedback.auth_failure == "dmarc");
  CHECK_THAT(f.all_log(), Catch::Contains("1 forensic report(s) over ForensicMaxPerDay"));
  // Mailed as well when ForensicMailTo is set; the day's count carries over.
  REQUIRE_FALSE(f.store->add_failure_jobs({jobs[0]}));
  o.forensic_mail_to = {"postmaster@mx.example.net"};
  o.forensic_max_per_day = 4;
  CHECK(f.run(m.get(), o).sent == 1);
  auto sent = f.sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].first == "postmaster@mx.example.net");
  REQUIRE_FALSE(f.store->add_failure_jobs({jobs[0]}));
  CHECK(f.run(m.get(), o).dropped == 1);
}

TEST_CASE("redaction (RFC 6590): recipients' local parts become keyed tokens, the same for the same address",
          "[failure][redact]") {
  std::string a = redact_address("Bob@example.net", "secret");
  CHECK(a.size() == 2 + 16 + std::string("@example.net").size());
  CHECK(a.rfind("r-", 0) == 0);
  CHECK_THAT(a, Catch::EndsWith("@example.net"));
  CHECK(redact_address("bob@example.net", "secret") == a);  // case-insensitive: the same user
  CHECK(redact_address("carol@example.net", "secret") != a);
  CHECK(redact_address("bob@example.net", "other key") != a);
  CHECK(redact_addresses("\"Bob B.\" <bob@example.net>, carol@example.net", "secret") ==
        "\"Bob B.\" <" + a + ">, " + redact_address("carol@example.net", "secret"));

  FailureJob j = job("example.com", {"mailto:ruf@example.com"});
  j.feedback.original_rcpt_to = {"<bob@example.net>"};
  j.original = "From: ceo@example.com\nTo: Bob <bob@example.net>,\n  carol@example.net\nCc: dave@example.net\n"
               "Subject: mail for bob@example.net\n";
  redact_failure_job(j, "secret");
  CHECK(j.feedback.original_rcpt_to == std::vector<std::string>{"<" + a + ">"});
  CHECK_THAT(j.original, Catch::Contains("From: ceo@example.com\n"));  // the sender is kept
  CHECK_THAT(j.original, Catch::Contains("To: Bob <" + a + ">,\n  " + redact_address("carol@example.net", "secret")));
  CHECK_THAT(j.original, Catch::Contains("Cc: " + redact_address("dave@example.net", "secret")));
  CHECK_THAT(j.original, Catch::Contains("Subject: mail for bob@example.net"));  // not an address field

  // Through a run: the mail carries the tokens, the store keeps the original.
  Fixture f;
  FailureJob q = job("example.com", {"mailto:ruf@example.com"});
  q.feedback.original_rcpt_to = {"<bob@example.net>"};
  REQUIRE_FALSE(f.store->add_failure_jobs({q}));
  FailureRunOptions o = f.options();
  o.redact_key = "secret";
  auto m = f.file_mailer();
  REQUIRE(f.run(m.get(), o).sent == 1);
  auto p = parse_failure_mail(f.sent().at(0).second);
  REQUIRE(p);
  CHECK(p.value().feedback.original_rcpt_to == std::vector<std::string>{"<" + a + ">"});
}

TEST_CASE("run_failures: SPF-DNS carries the SPF record as DNS has it, or is left out", "[run][failure]") {
  Fixture f;
  f.dns.add_txt("evil.example", "v=spf1 ip4:203.0.113.0/24 \"-all");
  FailureJob a = job("example.com", {"mailto:ruf@example.com"}, 1);
  a.feedback.spf_dns = "txt : evil.example";
  FailureJob b = job("example.com", {"mailto:ruf@example.com"}, 2);
  b.feedback.spf_dns = "txt : nospf.example";
  REQUIRE_FALSE(f.store->add_failure_jobs({a, b}));
  auto m = f.file_mailer();
  REQUIRE(f.run(m.get(), f.options()).sent == 2);
  std::map<std::string, std::string> by_ip;
  for (const auto& [rcpt, mail] : f.sent()) {
    auto p = parse_failure_mail(mail);
    REQUIRE(p);
    by_ip[p.value().feedback.source_ip] = p.value().feedback.spf_dns;
  }
  CHECK(by_ip["192.0.2.1"] == "txt : evil.example : \"v=spf1 ip4:203.0.113.0/24 \\\"-all\"");
  CHECK(by_ip["192.0.2.2"].empty());
}
