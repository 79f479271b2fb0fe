// test_aggregate_run.cpp - run_aggregate() against a real SQLite store, a
// static resolver for the destination checks, and a real program as the
// mailer (sh writing each mail to a file): destinations, states, retries,
// interrupted runs, !size, NoReportsList, --out, expiry. The mails are
// unpacked and the reports read back.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/report/aggregate_run.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "dmarc/report/mailer.hpp"
#include "dmarc/report/report_mail.hpp"
#include "support/static_resolver.hpp"
#include "mail_dir.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::slurp;
using dmarc::test::TempDir;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr std::int64_t kDay = 20400;
constexpr std::int64_t kNow = (kDay + 1) * kSecondsPerDay + 3600;



AggregateRecord row(const std::string& domain, const std::string& ip, std::vector<std::string> rua,
                    Disposition disp = Disposition::None) {
  AggregateRecord r;
  r.day = kDay;
  r.policy.domain = domain;
  r.policy.p = Policy::Reject;
  r.policy.rua = std::move(rua);
  r.source_ip = ip;
  r.header_from = domain;
  r.envelope_from = domain;
  r.result = disp == Disposition::None ? DmarcResult::Pass : DmarcResult::Fail;
  r.disposition = disp;
  r.requested = disp;
  r.dkim_alignment = disp == Disposition::None ? Alignment::Pass : Alignment::Fail;
  r.spf_alignment = Alignment::Fail;
  r.dkim = {DkimAuthResult{domain, "s1", disp == Disposition::None ? AuthResult::Pass : AuthResult::Fail}};
  r.spf = SpfAuthResult{domain, SpfScope::MailFrom, AuthResult::Fail};
  r.last_seen = kDay * kSecondsPerDay + 100;
  return r;
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
    dns.add_txt("example.com._report._dmarc.reports.example.net", "v=DMARC1");
  }
  AggregateRunOptions options() const {
    AggregateRunOptions o;
    o.period = day_period(kDay);
    o.now = kNow;
    o.org_name = "mx.example.net";
    o.sender = "dmarc-reports@mx.example.net";
    o.max_attempts = 3;
    return o;
  }
  std::unique_ptr<Mailer> file_mailer() const { return mails.mailer(); }
  AggregateRunResult run(Mailer* m, const AggregateRunOptions& o) {
    return run_aggregate(*store, dns, m, nullptr, o, [this](RunLogLevel, const std::string& s) { log.push_back(s); });
  }
  AggregateRunResult run(Mailer* m) { return run(m, options()); }
  // The mails sent so far: recipient -> mail text.
  std::multimap<std::string, std::string> sent() const {
    std::multimap<std::string, std::string> out;
    for (auto& [rcpt, mail] : mails.mails()) out.emplace(rcpt, mail);
    return out;
  }
  std::string all_log() const {
    std::string s;
    for (const auto& l : log) s += l + "\n";
    return s;
  }
};

AggregateReport report_of(const std::string& mail) {
  auto p = parse_report_mail(mail);
  REQUIRE(p);
  REQUIRE(p.value().parts.size() == 2);
  auto xml = gunzip(p.value().parts[1].data);
  REQUIRE(xml);
  auto r = parse_aggregate_xml(xml.value());
  REQUIRE(r);
  return r.value();
}

}  // namespace

TEST_CASE("run_aggregate: internal and authorised destinations get the report; an unauthorised one is dropped",
          "[run]") {
  Fixture f;
  std::vector<std::string> rua = {"mailto:dmarc@example.com", "mailto:rua@reports.example.net",
                                  "mailto:x@unauth.example.org", "https://example.com/rua"};
  std::vector<AggregateRecord> rows;
  for (int i = 0; i < 7; ++i) rows.push_back(row("example.com", "192.0.2.1", rua));
  for (int i = 0; i < 3; ++i) rows.push_back(row("example.com", "198.51.100.9", rua, Disposition::Reject));
  rows.push_back(row("other.example", "203.0.113.5", {}));  // no rua: no report
  REQUIRE_FALSE(f.store->add(rows));
  auto m = f.file_mailer();
  auto r = f.run(m.get());
  INFO(f.all_log());
  CHECK(r.sent == 2);
  CHECK(r.failed == 1);
  CHECK(r.exit_code() == 1);
  auto sent = f.sent();
  REQUIRE(sent.size() == 2);
  REQUIRE(sent.count("dmarc@example.com") == 1);
  REQUIRE(sent.count("rua@reports.example.net") == 1);
  CHECK_THAT(f.all_log(), Catch::Contains("not authorised") && Catch::Contains("https://example.com/rua"));
  const std::string& mail = sent.find("dmarc@example.com")->second;
  auto parsed = parse_report_mail(mail).value();
  CHECK(parsed.subject == "Report Domain: example.com Submitter: mx.example.net Report-ID: <" +
                              report_id("example.com", day_period(kDay)) + ">");
  CHECK(parsed.parts[1].file_name == report_file_name("mx.example.net", "example.com", day_period(kDay)));
  AggregateReport rep = report_of(mail);
  CHECK(rep.meta.report_id == report_id("example.com", day_period(kDay)));
  CHECK(rep.meta.org_name == "mx.example.net");
  CHECK(rep.policy.domain == "example.com");
  REQUIRE(rep.records.size() == 2);
  std::map<std::string, AggregateRecord> by_ip;
  for (const auto& x : rep.records) by_ip[x.source_ip] = x;
  CHECK(by_ip["192.0.2.1"].count == 7);
  CHECK(by_ip["192.0.2.1"].disposition == Disposition::None);
  CHECK(by_ip["198.51.100.9"].count == 3);
  CHECK(by_ip["198.51.100.9"].disposition == Disposition::Reject);
  CHECK(by_ip["198.51.100.9"].dkim.at(0).result == AuthResult::Fail);

  // States: two sent, one failed; a second run sends nothing again.
  auto states = f.store->report_states("example.com", day_period(kDay)).value();
  REQUIRE(states.size() == 3);
  for (const auto& s : states) {
    INFO(s.destination);
    CHECK(s.status == (s.destination == "x@unauth.example.org" ? ReportStatus::Failed : ReportStatus::Sent));
  }
  auto again = f.run(m.get());
  CHECK(again.sent == 0);
  CHECK(again.skipped == 3);
  CHECK(again.exit_code() == 0);
  CHECK(f.sent().size() == 2);
}

TEST_CASE("run_aggregate: a DNS tempfail is retried on the next run; a failing mailer is given up after "
          "ReportMaxAttempts", "[run]") {
  Fixture f;
  f.dns.fail("example.com._report._dmarc.reports.example.net", DnsStatus::TempFail);
  REQUIRE_FALSE(f.store->add({row("example.com", "192.0.2.1", {"mailto:rua@reports.example.net"})}));
  auto m = f.file_mailer();
  auto r = f.run(m.get());
  CHECK(r.deferred == 1);
  CHECK(r.exit_code() == 75);
  CHECK(f.sent().empty());
  test::StaticResolver healed;
  healed.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
  healed.add_txt("_dmarc.example.net", "v=DMARC1; p=none");
  healed.add_txt("example.com._report._dmarc.reports.example.net", "v=DMARC1; some text");
  auto r2 = run_aggregate(*f.store, healed, m.get(), nullptr, f.options(), [](RunLogLevel, const std::string&) {});
  CHECK(r2.sent == 1);
  CHECK(f.sent().size() == 1);

  // Another domain whose only destination's MTA keeps failing.
  REQUIRE_FALSE(f.store->add({row("example.org", "192.0.2.2", {"mailto:rua@example.org"})}));
  auto failing = command_mailer({"/bin/sh", "-c", "cat >/dev/null; echo 'queue full' >&2; exit 75"}, milliseconds(5000));
  auto o = f.options();
  o.domain = "example.org";
  CHECK(f.run(failing.get(), o).deferred == 1);
  CHECK(f.run(failing.get(), o).deferred == 1);
  auto last = f.run(failing.get(), o);
  CHECK(last.failed == 1);
  CHECK(last.exit_code() == 1);
  auto st = f.store->report_states("example.org", day_period(kDay)).value();
  REQUIRE(st.size() == 1);
  CHECK(st[0].status == ReportStatus::Failed);
  CHECK(st[0].attempts == 3);
  CHECK_THAT(st[0].last_error, Catch::Contains("queue full"));
  CHECK_THAT(f.all_log(), Catch::Contains("given up"));
  // Given up is final.
  auto m2 = f.file_mailer();
  CHECK(f.run(m2.get(), o).sent == 0);
}

TEST_CASE("run_aggregate: a run killed while sending is completed by the next, without a second copy", "[run]") {
  Fixture f;
  std::vector<AggregateRecord> rows;
  for (const char* d : {"a.example.com", "b.example.com", "c.example.com"}) {
    rows.push_back(row(d, "192.0.2.1", {"mailto:dmarc@example.com"}));
  }
  REQUIRE_FALSE(f.store->add(rows));
  // The run "dies" at b: its state was written Sending, the mail never went.
  auto m = f.file_mailer();
  auto o = f.options();
  o.domain = "a.example.com";
  REQUIRE(f.run(m.get(), o).sent == 1);
  ReportState st;
  st.policy_domain = "b.example.com";
  st.period = day_period(kDay);
  st.destination = "dmarc@example.com";
  st.status = ReportStatus::Sending;
  st.attempts = 1;
  REQUIRE_FALSE(f.store->put_report_state(st));
  auto r = f.run(m.get());
  CHECK(r.sent == 2);      // b and c
  CHECK(r.skipped == 1);   // a, already sent
  auto sent = f.sent();
  CHECK(sent.size() == 3);
  std::map<std::string, int> per_domain;
  for (const auto& [rcpt, mail] : sent) per_domain[report_of(mail).policy.domain]++;
  CHECK(per_domain == std::map<std::string, int>{{"a.example.com", 1}, {"b.example.com", 1}, {"c.example.com", 1}});
}

TEST_CASE("run_aggregate: !size, NoReportsList, --out, expiry", "[run]") {
  Fixture f;
  REQUIRE_FALSE(f.store->add({row("example.com", "192.0.2.1",
                                  {"mailto:small@example.com!1k", "mailto:never@example.com", "mailto:ok@example.com"})}));
  AggregateRecord old = row("example.com", "192.0.2.1", {"mailto:ok@example.com"});
  old.day = kDay - 40;
  REQUIRE_FALSE(f.store->add({old}));

  SECTION("--out writes the report and the mail, records and sends nothing") {
    auto o = f.options();
    o.out_dir = f.dir.path();
    o.no_reports = {"never@example.com"};
    auto r = f.run(nullptr, o);
    CHECK(r.sent == 1);
    std::string base = f.dir.file(report_file_name("mx.example.net", "example.com", day_period(kDay), ""));
    REQUIRE(fs::exists(base + ".xml.gz"));
    REQUIRE(fs::exists(base + ".eml"));
    auto xml = gunzip(slurp(base + ".xml.gz"));
    REQUIRE(xml);
    CHECK(parse_aggregate_xml(xml.value()).value().records.at(0).count == 1);
    auto mail = parse_report_mail(slurp(base + ".eml")).value();
    CHECK(mail.to == "small@example.com, ok@example.com");
    CHECK(f.store->report_states("example.com", day_period(kDay)).value().empty());
    CHECK(f.store->records("example.com", kDay - 40, kDay - 40).value().size() == 1);  // nothing expired
  }
  SECTION("sending: over !size is not sent, NoReportsList is skipped, old rows expire") {
    auto o = f.options();
    o.no_reports = {"never@example.com"};
    auto m = f.file_mailer();
    auto r = f.run(m.get(), o);
    INFO(f.all_log());
    CHECK(r.sent == 1);
    CHECK(r.failed == 1);
    auto sent = f.sent();
    REQUIRE(sent.size() == 1);
    CHECK(sent.begin()->first == "ok@example.com");
    CHECK_THAT(f.all_log(), Catch::Contains("!size") && Catch::Contains("NoReportsList"));
    CHECK(f.store->records("example.com", kDay - 40, kDay - 40).value().empty());
    CHECK(f.store->records("example.com", kDay, kDay).value().size() == 1);
  }
}

TEST_CASE("run_aggregate: DNS text in the log cannot start a line of its own", "[run]") {
  Fixture f;
  REQUIRE_FALSE(f.store->add({row("example.com", "192.0.2.1", {"https://x.example/\ndmarc-report: FORGED\x1b[2J"})}));
  auto m = f.file_mailer();
  f.run(m.get());
  bool seen = false;
  for (const auto& l : f.log) {
    CHECK(l.find('\n') == std::string::npos);
    CHECK(l.find('\x1b') == std::string::npos);
    seen = seen || l.find("https://x.example/?dmarc-report: FORGED?[2J") != std::string::npos;
  }
  CHECK(seen);
  CHECK(log_safe(std::string(5000, 'a')).size() == 2048 + 3);
  CHECK(run_exit_code(false, 0, 1) == 75);
  CHECK(run_exit_code(true, 1, 1) == 74);
}
