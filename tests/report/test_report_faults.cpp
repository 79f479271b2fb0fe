// test_report_faults.cpp - fault injection for dmarc-report's aggregate
// run (issue 16 item 3): the report command crashing (SIGSEGV, SIGKILL of
// itself) or hanging in the middle of a run of several reports, failing for
// one recipient of several, exiting 0 without reading its input, and
// dmarc-report itself killed (SIGKILL) in the middle of a run and run again.
// Real SQLite store, real programs as the mailer (/bin/sh writing each mail
// into a directory the test counts). The run killed while Postfix's
// sendmail hangs is tests/e2e/test_report_e2e.cpp (counted at a sink
// Postfix).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/report/aggregate_run.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "dmarc/report/mailer.hpp"
#include "dmarc/report/report_mail.hpp"
#include "mail_dir.hpp"
#include "support/static_resolver.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::TempDir;
using std::chrono::milliseconds;

namespace {

constexpr std::int64_t kDay = 20400;
constexpr std::int64_t kNow = (kDay + 1) * kSecondsPerDay + 3600;

AggregateRecord frow(const std::string& domain, std::vector<std::string> rua) {
  AggregateRecord r;
  r.day = kDay;
  r.policy.domain = domain;
  r.policy.p = Policy::Reject;
  r.policy.rua = std::move(rua);
  r.source_ip = "192.0.2.1";
  r.header_from = domain;
  r.envelope_from = domain;
  r.result = DmarcResult::Pass;
  r.dkim_alignment = Alignment::Pass;
  r.spf_alignment = Alignment::Fail;
  r.dkim = {DkimAuthResult{domain, "s1", AuthResult::Pass}};
  r.spf = SpfAuthResult{domain, SpfScope::MailFrom, AuthResult::Fail};
  r.last_seen = kDay * kSecondsPerDay + 100;
  return r;
}

struct World {
  TempDir dir;
  std::string db = dir.file("r.db");
  std::string mail_dir = dir.file("mails");
  test::MailDir mails{mail_dir};
  test::StaticResolver dns;
  std::vector<std::string> log;
  World() {
    dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    dns.add_txt("example.com._report._dmarc.reports.example.net", "v=DMARC1");
  }
  std::shared_ptr<Store> store() {
    auto s = open_store("sqlite:" + db);
    REQUIRE(s);
    return s.value();
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
  AggregateRunResult run(Mailer& m) {
    auto s = store();
    return run_aggregate(*s, dns, &m, nullptr, options(), [this](RunLogLevel, const std::string& l) { log.push_back(l); });
  }
  // A mailer that is MailDir's, except for mail to a recipient matching
  // PATTERN (sh case syntax), where it runs FAULT instead of delivering.
  std::unique_ptr<Mailer> faulty(const std::string& pattern, const std::string& fault,
                                 milliseconds timeout = milliseconds(10000)) const {
    return command_mailer({"/bin/sh", "-c",
                           "case \"$*\" in " + pattern + ") " + fault + ";; esac; f=$(mktemp " + mail_dir +
                               "/mail.XXXXXX); cat > $f; echo \"$@\" > $f.rcpt"},
                          timeout);
  }
  // recipient -> number of mails delivered to it.
  std::map<std::string, int> delivered() const {
    std::map<std::string, int> out;
    for (const auto& [rcpt, mail] : mails.mails()) out[rcpt]++;
    return out;
  }
  // Message-ID -> number of mails delivered with it.
  std::map<std::string, int> message_ids() const {
    std::map<std::string, int> out;
    for (const auto& [rcpt, mail] : mails.mails()) {
      auto p = parse_report_mail(mail);
      REQUIRE(p);
      out[p.value().message_id]++;
    }
    return out;
  }
  std::string all_log() const {
    std::string s;
    for (const auto& l : log) s += l + "\n";
    return s;
  }
  ReportStatus status(const std::string& domain, const std::string& rcpt) {
    auto st = store()->report_states(domain, day_period(kDay));
    REQUIRE(st);
    for (const auto& s : st.value())
      if (s.destination == rcpt) return s.status;
    FAIL("no report state for " << domain << " to " << rcpt);
    return ReportStatus::Failed;
  }
  // Three domains, one report (one destination) each.
  void three_domains() {
    std::vector<AggregateRecord> rows;
    for (const char* d : {"a.example.com", "b.example.com", "c.example.com"})
      rows.push_back(frow(d, {std::string("mailto:rua@") + d}));
    REQUIRE_FALSE(store()->add(rows));
  }
};

const std::map<std::string, int> kOneEach = {
    {"rua@a.example.com", 1}, {"rua@b.example.com", 1}, {"rua@c.example.com", 1}};

}  // namespace

TEST_CASE("report faults: the command crashes or hangs on one report of a run: the others are sent, that one is "
          "retried on the next run, nothing is sent twice",
          "[run][faults]") {
  World w;
  w.three_domains();
  struct Fault {
    const char* name;
    std::string script, expect;
    milliseconds timeout;
  };
  // The command for b's report: killed by SIGSEGV after reading the mail,
  // by SIGKILL before, or hanging until killed at its timeout.
  const Fault f = GENERATE(values<Fault>({
      {"SIGSEGV", "cat >/dev/null; kill -SEGV $$", "killed by signal 11", milliseconds(10000)},
      {"SIGKILL", "kill -KILL $$", "killed by signal 9", milliseconds(10000)},
      {"hang", "sleep 300", "no exit within 1500 ms; killed", milliseconds(1500)},
  }));
  INFO("fault: " << f.name);
  const std::string& fault = f.script;
  const std::string& expect = f.expect;
  const milliseconds timeout = f.timeout;
  auto bad = w.faulty("*@b.example.com*", fault, timeout);
  auto start = std::chrono::steady_clock::now();
  auto r = w.run(*bad);
  INFO(w.all_log());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));  // a hang is bounded
  CHECK(::waitpid(-1, nullptr, WNOHANG) <= 0);  // no child of ours is left
  CHECK(r.sent == 2);
  CHECK(r.deferred == 1);
  CHECK(r.exit_code() == 75);
  CHECK(w.delivered() == std::map<std::string, int>{{"rua@a.example.com", 1}, {"rua@c.example.com", 1}});
  CHECK(w.status("b.example.com", "rua@b.example.com") == ReportStatus::Pending);
  CHECK_THAT(w.all_log(), Catch::Contains("rua@b.example.com") && Catch::Contains(expect) &&
                              Catch::Contains("the next run tries again"));
  // The next run, the command healed: only b goes, once.
  auto good = w.mails.mailer();
  auto r2 = w.run(*good);
  CHECK(r2.sent == 1);
  CHECK(r2.skipped == 2);
  CHECK(r2.exit_code() == 0);
  CHECK(w.delivered() == kOneEach);
  // And a third run sends nothing.
  CHECK(w.run(*good).sent == 0);
  CHECK(w.delivered() == kOneEach);
}

TEST_CASE("report faults: the command fails for one recipient of several: the others are sent; temporary is "
          "retried, permanent is given up",
          "[run][faults]") {
  World w;
  REQUIRE_FALSE(w.store()->add({frow("example.com", {"mailto:one@example.com", "mailto:rua@reports.example.net",
                                                     "mailto:two@example.com"})}));
  // exit 75 (EX_TEMPFAIL) is temporary, 67 (EX_NOUSER) permanent.
  const int code = GENERATE(75, 67);
  const ReportStatus after = code == 75 ? ReportStatus::Pending : ReportStatus::Failed;
  auto bad = w.faulty("*two@example.com*", "cat >/dev/null; echo 'no such user' >&2; exit " + std::to_string(code));
  auto r = w.run(*bad);
  INFO(w.all_log());
  CHECK(r.sent == 2);
  CHECK(w.delivered() == std::map<std::string, int>{{"one@example.com", 1}, {"rua@reports.example.net", 1}});
  CHECK(w.status("example.com", "two@example.com") == after);
  CHECK_THAT(w.all_log(), Catch::Contains("exit status " + std::to_string(code)) && Catch::Contains("no such user"));
  auto good = w.mails.mailer();
  auto r2 = w.run(*good);
  std::map<std::string, int> expected{{"one@example.com", 1}, {"rua@reports.example.net", 1}};
  if (code == 75) {
    CHECK(r2.sent == 1);
    expected["two@example.com"] = 1;
  } else {
    CHECK(r2.sent == 0);  // given up is final
  }
  CHECK(w.delivered() == expected);
}

TEST_CASE("report faults: a command that exits 0 without reading its input", "[mailer][faults]") {
  auto quits = command_mailer({"/bin/sh", "-c", "exit 0"}, milliseconds(10000));
  // A mail larger than the pipe's buffer: the write fails, the mail is
  // known not taken (temporary: the run retries it).
  std::string big(1024 * 1024, 'x');
  auto err = quits->send("f@example.net", {"t@example.com"}, big);
  REQUIRE(err);
  CHECK(err->temporary);
  CHECK_THAT(err->message, Catch::Contains("exited before reading the whole message"));
  // A mail that fits in the pipe's buffer (64 KiB on Linux) is written
  // whole before the command exits: its exit status 0 is all there is to
  // go by, and it counts as sent. Documented, not detectable.
  auto small = quits->send("f@example.net", {"t@example.com"}, std::string(1000, 'x'));
  CHECK_FALSE(small);
}

TEST_CASE("report faults: dmarc-report killed (SIGKILL) in the middle of a run, then run again", "[run][faults]") {
  World w;
  w.three_domains();
  // The run is a child process; the command for b's report kills it
  // (SIGKILL to the command's parent) - before the mail is taken, or after.
  const bool after_delivery = GENERATE(false, true);
  INFO((after_delivery ? "killed after the command took b's mail" : "killed before the command took b's mail"));
  const std::string fault =
      after_delivery ? "f=$(mktemp " + w.mail_dir + "/mail.XXXXXX); cat > $f; echo \"$@\" > $f.rcpt; kill -KILL $PPID; exit 0"
                     : "kill -KILL $PPID; sleep 5; exit 1";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto s = open_store("sqlite:" + w.db);
    if (!s) ::_exit(3);
    auto m = w.faulty("*@b.example.com*", fault);
    auto r = run_aggregate(*s.value(), w.dns, m.get(), nullptr, w.options(), [](RunLogLevel, const std::string&) {});
    ::_exit(r.exit_code() == 0 ? 4 : 5);  // not killed: the fault did not happen
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  // Runs go through the policy domains in order: a was sent, b is Sending
  // (handed over, no answer recorded), c never started.
  CHECK(w.status("a.example.com", "rua@a.example.com") == ReportStatus::Sent);
  CHECK(w.status("b.example.com", "rua@b.example.com") == ReportStatus::Sending);
  auto good = w.mails.mailer();
  auto r = w.run(*good);
  INFO(w.all_log());
  CHECK(r.sent == 2);  // b (again) and c
  CHECK(r.skipped == 1);
  CHECK(r.exit_code() == 0);
  auto got = w.delivered();
  if (!after_delivery) {
    CHECK(got == kOneEach);  // none lost, none twice
  } else {
    // The kill fell between the MTA taking b and the Sent state: the rerun
    // cannot know, and sends b again - the same Message-ID, so the receiver
    // sees a duplicate of one message. None lost.
    CHECK(got == std::map<std::string, int>{
                     {"rua@a.example.com", 1}, {"rua@b.example.com", 2}, {"rua@c.example.com", 1}});
    auto ids = w.message_ids();
    CHECK(ids.size() == 3);
    int twice = 0;
    for (const auto& [id, n] : ids) twice += n == 2;
    CHECK(twice == 1);
  }
  CHECK(w.run(*good).sent == 0);
}
