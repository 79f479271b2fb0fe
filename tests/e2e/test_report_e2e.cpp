// test_report_e2e.cpp - aggregate reports end to end
//
// World: NSD serves rpt.example (p=reject, rua= an internal address, an
// authorised external one, an unauthorised one and one authorised by a
// wildcard), auth.example (which authorises rpt.example's reports),
// unauth.example (which does not) and wild.example (*._report._dmarc).
// dmarc-milter runs in a private Postfix with a real SQLite store;
// messages go in over SMTP. Then the built dmarc-report sends the day's
// reports through Postfix's sendmail(1) into a second private Postfix, the
// sink; its mails are unpacked and checked against what was sent. A
// second case kills dmarc-report (SIGKILL, its process group) while a
// report is being handed over and checks that the rerun sends exactly the
// missing one. Runs as root (Postfix's master needs it).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/core/report.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "dmarc/report/failure_mail.hpp"
#include "dmarc/report/report_mail.hpp"
#include "support/dkim_signer.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"
#include "support/postfix_instance.hpp"
#include "support/smtp_client.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

using namespace dmarc;
using namespace dmarc::test;
namespace fs = std::filesystem;

namespace {

const std::string kKey = std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.pem";
const std::string kReportBin = std::string(DMARC_BINARY_DIR) + "/dmarc-report";

std::string key_record() {
  // The public half of tests/data/dkim/keys/rsa2048.pem, as in the e2e zones.
  std::ifstream f(std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones/reject.example.zone");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("e2e._domainkey", 0) == 0) return line.substr(line.find("IN TXT") + 6);
  }
  FAIL("no e2e key in reject.example.zone");
  return {};
}

std::string zone(const std::string& origin, const std::string& body) {
  return "$ORIGIN " + origin + ".\n$TTL 300\n@ IN SOA ns." + origin + ". hostmaster." + origin +
         ". ( 1 3600 600 86400 60 )\n@ IN NS ns." + origin + ".\nns IN A 192.0.2.53\n" + body;
}

NsdServerOptions zones() {
  NsdServerOptions o;
  o.zone_dir = std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones";
  o.extra_zones["rpt.example"] = zone(
      "rpt.example",
      "@ IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
      "_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@rpt.example,mailto:ext@auth.example,"
      "mailto:ext@unauth.example,mailto:any@wild.example; ruf=mailto:forensic@rpt.example\"\n"
      "e2e._domainkey IN TXT " + key_record() + "\n");
  o.extra_zones["auth.example"] = zone("auth.example",
                                       "_dmarc IN TXT \"v=DMARC1; p=none\"\n"
                                       "rpt.example._report._dmarc IN TXT \"v=DMARC1\"\n");
  // One of "our own" domains, still at p=none (local forensic reports).
  o.extra_zones["own.example"] = zone("own.example",
                                      "@ IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
                                      "_dmarc IN TXT \"v=DMARC1; p=none\"\n");
  o.extra_zones["unauth.example"] = zone("unauth.example", "_dmarc IN TXT \"v=DMARC1; p=none\"\n");
  // Authorises every domain's reports with a DNS wildcard (RFC 7489 7.1).
  o.extra_zones["wild.example"] = zone("wild.example",
                                       "_dmarc IN TXT \"v=DMARC1; p=none\"\n"
                                       "*._report._dmarc IN TXT \"v=DMARC1\"\n");
  return o;
}


struct World {
  TempDir dir;
  NsdServer nsd{zones()};
  std::string common;
  MilterProcess milter;
  PostfixInstance mx;
  PostfixInstance sink;

  explicit World(const std::string& extra = "")
      : common("Syslog no\nLogLevel info\nAuthservID mx.e2e.example\nNameservers 127.0.0.1:" +
               std::to_string(nsd.port()) +
               "\nDNSTimeout 1\nDNSRetries 1\nIgnoreHosts 127.0.0.1\n"
               "ReportStore sqlite:" + dir.file("reports.db") + "\n"
               "ReportOrgName mx.e2e.example\nReportSender dmarc-reports@mx.e2e.example\n"
               "IgnoreMailTo postmaster@e2e.example\n" + extra),
        milter(common),
        mx(mx_options(milter)),
        sink(sink_options()) {}

  static PostfixOptions mx_options(const MilterProcess& m) {
    PostfixOptions o;
    o.milter = m.postfix_address();
    o.hostname = "mx.e2e.example";
    o.main_cf = {"local_header_rewrite_clients ="};
    return o;
  }
  static PostfixOptions sink_options() {
    PostfixOptions o;
    o.hostname = "sink.e2e.example";
    return o;
  }
  // A dmarc-report configuration: the milter's, with ReportCommand.
  std::string report_config(const std::string& command) {
    std::string path = dir.file("report-" + std::to_string(++configs) + ".conf");
    std::ofstream(path) << common << "ReportCommand " << command << "\n";
    return path;
  }
  int configs = 0;
};

int g_serial = 0;

struct Msg {
  std::string ip = "192.0.2.10";
  std::string mail_from = "alice@rpt.example";
  std::string rcpt = "bob@e2e.example";
  bool sign = false;
  std::string from_domain = "rpt.example";
};

SmtpOutcome send(World& w, const Msg& c) {
  std::string subject = "rpt-" + std::to_string(++g_serial);
  std::string m = "From: Alice <alice@" + c.from_domain + ">\nTo: " + c.rcpt + "\nSubject: " + subject +
                  "\nDate: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <" + subject + "@rpt.example>\n\nHello.\n";
  if (c.sign) m = dkim_sign_message(m, "rpt.example", "e2e", kKey);
  SmtpMessage s;
  XclientAttributes x;
  x.addr = c.ip;
  x.name = "[UNAVAILABLE]";
  x.helo = "mail.rpt.example";
  s.xclient = x;
  s.helo = "mail.rpt.example";
  s.mail_from = c.mail_from;
  s.rcpt_to = {c.rcpt};
  s.data = m;
  return send_mail(w.mx.port(), s);
}

// run_report - dmarc-report aggregate in its own process group; returns
// the exit status, or -1 when KILL_WHEN says so first (then the group is
// killed with SIGKILL).
int run_report(const std::vector<std::string>& args, std::string* output,
               const std::function<bool()>& kill_when = nullptr, bool subcommand_given = false) {
  std::string out_path = (fs::temp_directory_path() / ("dmarc-report-out-" + std::to_string(::getpid()))).string();
  std::vector<std::string> words = {kReportBin};
  if (!subcommand_given) words.push_back("aggregate");
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  REQUIRE(rc == 0);
  int status = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool killed = false;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if ((kill_when && kill_when()) || std::chrono::steady_clock::now() > end) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream f(out_path);
  std::stringstream ss;
  ss << f.rdbuf();
  *output = ss.str();
  fs::remove(out_path);
  if (killed) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// run_command - a shell command's output (stdout and stderr) and exit status.
std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int w = pclose(p);
  status = WIFEXITED(w) ? WEXITSTATUS(w) : -1;
  return out;
}

// The period from the start of today (UTC) to a second ago.
std::vector<std::string> today_args(const std::string& config) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::int64_t begin = utc_day(now) * kSecondsPerDay;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  return {"-c", config, "--begin", std::to_string(begin), "--end", std::to_string(now)};
}

// Reports delivered to the sink: (recipient, policy domain) -> the report.
std::multimap<std::pair<std::string, std::string>, AggregateReport> reports(const PostfixInstance& sink) {
  std::multimap<std::pair<std::string, std::string>, AggregateReport> out;
  for (const auto& m : sink.delivered()) {
    auto p = parse_report_mail(m);
    REQUIRE(p);
    REQUIRE(p.value().parts.size() == 2);
    auto xml = gunzip(p.value().parts[1].data);
    REQUIRE(xml);
    auto r = parse_aggregate_xml(xml.value());
    REQUIRE(r);
    auto rcpt = header_values(m, "Delivered-To");
    REQUIRE(rcpt.size() == 1);
    out.emplace(std::make_pair(rcpt[0], r.value().policy.domain), r.value());
  }
  return out;
}

}  // namespace

TEST_CASE("e2e: messages through Postfix and the milter become aggregate reports in the sink", "[e2e][report]") {
  World w;
  // 3 aligned SPF passes from 192.0.2.10, 2 spoofs from 198.51.100.7 (SPF
  // fail, no DKIM: rejected), 1 DKIM-signed from 203.0.113.9 (SPF fail,
  // DKIM pass), and one to IgnoreMailTo (not recorded).
  for (int i = 0; i < 3; ++i) REQUIRE(send(w, Msg{}).accepted());
  for (int i = 0; i < 2; ++i) {
    Msg spoof;
    spoof.ip = "198.51.100.7";
    auto o = send(w, spoof);
    INFO(o.transcript_text());
    CHECK(o.final_reply.code == 550);
  }
  Msg signed_msg;
  signed_msg.ip = "203.0.113.9";
  signed_msg.sign = true;
  REQUIRE(send(w, signed_msg).accepted());
  Msg ignored;
  ignored.rcpt = "postmaster@e2e.example";
  REQUIRE(send(w, ignored).accepted());
  w.mx.wait_delivered(5, std::chrono::seconds(30));
  // SIGTERM flushes the recorder.
  CHECK(w.milter.stop() == 0);
  INFO(w.milter.log());
  CHECK_THAT(w.milter.log(), Catch::Contains("6 record(s) written, 0 dropped, 0 lost"));

  std::string out;
  std::string cfg = w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi");
  std::vector<std::string> args = today_args(cfg);
  int rc = run_report(args, &out);
  INFO(out << w.sink.log());
  CHECK(rc == 1);  // the unauthorised destination was given up
  CHECK_THAT(out, Catch::Contains("ext@unauth.example: external destination not authorised"));
  w.sink.wait_delivered(3, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto got = reports(w.sink);
  REQUIRE(got.size() == 3);
  REQUIRE(got.count({"dmarc@rpt.example", "rpt.example"}) == 1);
  REQUIRE(got.count({"ext@auth.example", "rpt.example"}) == 1);
  REQUIRE(got.count({"any@wild.example", "rpt.example"}) == 1);
  for (const auto& [key, rep] : got) {
    INFO(key.first);
    CHECK(rep.meta.org_name == "mx.e2e.example");
    CHECK(rep.policy.p == Policy::Reject);
    std::map<std::string, const AggregateRecord*> by_ip;
    std::uint64_t total = 0;
    for (const auto& r : rep.records) {
      by_ip[r.source_ip] = &r;
      total += r.count;
    }
    CHECK(total == 6);
    REQUIRE(by_ip.count("192.0.2.10"));
    REQUIRE(by_ip.count("198.51.100.7"));
    REQUIRE(by_ip.count("203.0.113.9"));
    const AggregateRecord& pass = *by_ip["192.0.2.10"];
    CHECK(pass.count == 3);
    CHECK(pass.disposition == Disposition::None);
    CHECK(pass.spf_alignment == Alignment::Pass);
    REQUIRE(pass.spf);
    CHECK(pass.spf->result == AuthResult::Pass);
    CHECK(pass.envelope_to == "e2e.example");
    const AggregateRecord& spoof = *by_ip["198.51.100.7"];
    CHECK(spoof.count == 2);
    CHECK(spoof.disposition == Disposition::Reject);
    CHECK(spoof.spf->result == AuthResult::Fail);
    CHECK(spoof.dkim.empty());
    const AggregateRecord& dk = *by_ip["203.0.113.9"];
    CHECK(dk.count == 1);
    CHECK(dk.disposition == Disposition::None);
    CHECK(dk.dkim_alignment == Alignment::Pass);
    REQUIRE(dk.dkim.size() == 1);
    CHECK(dk.dkim[0].domain == "rpt.example");
    CHECK(dk.dkim[0].selector == "e2e");
    CHECK(dk.dkim[0].result == AuthResult::Pass);
  }
  // The report mails themselves: From, Subject, the attachment's name.
  for (const auto& m : w.sink.delivered()) {
    CHECK(header_values(m, "Return-Path") == std::vector<std::string>{"<dmarc-reports@mx.e2e.example>"});
    auto p = parse_report_mail(m).value();
    CHECK_THAT(p.subject, Catch::StartsWith("Report Domain: rpt.example Submitter: mx.e2e.example Report-ID: <"));
    CHECK_THAT(p.parts[1].file_name, Catch::StartsWith("mx.e2e.example!rpt.example!") && Catch::EndsWith(".xml.gz"));
  }
  // Every delivered report validates against the RFC 7489 Appendix C schema.
  for (const auto& m : w.sink.delivered()) {
    auto p = parse_report_mail(m).value();
    std::string xml_path = w.dir.file("delivered.xml");
    std::ofstream(xml_path) << gunzip(p.parts[1].data).value();
    int st = 0;
    std::string lint = run_command("xmllint --noout --schema " + std::string(DMARC_CONFORMANCE_DIR) +
                                       "/schema/rfc7489-appendix-c.no-namespace.derived.xsd " + xml_path,
                                   st);
    INFO(lint);
    CHECK(st == 0);
  }
  // The same day in RFC 9990 format, written with --out from the command line:
  // nothing is sent or recorded, and the document validates against that XSD.
  std::string out_dir = w.dir.file("out");
  fs::create_directory(out_dir);
  std::string cfg9990 = w.report_config("/bin/false\nReportFormat rfc9990");
  std::vector<std::string> out_args = args;
  out_args[1] = cfg9990;
  out_args.push_back("--out");
  out_args.push_back(out_dir);
  CHECK(run_report(out_args, &out) == 0);
  std::string base = out_dir + "/" + report_file_name("mx.e2e.example", "rpt.example", ReportPeriod{std::stoll(args[3]), std::stoll(args[5])}, "");
  REQUIRE(fs::exists(base + ".xml.gz"));
  REQUIRE(fs::exists(base + ".eml"));
  {
    std::ifstream gzf(base + ".xml.gz", std::ios::binary);
    std::stringstream gzs;
    gzs << gzf.rdbuf();
    auto xml = gunzip(gzs.str());
    REQUIRE(xml);
    CHECK_THAT(xml.value(), Catch::Contains("urn:ietf:params:xml:ns:dmarc-2.0"));
    std::string xml_path = w.dir.file("out.xml");
    std::ofstream(xml_path) << xml.value();
    int st = 0;
    std::string lint = run_command(
        "xmllint --noout --schema " + std::string(DMARC_CONFORMANCE_DIR) + "/schema/rfc9990-dmarc-xml-0.2.xsd " + xml_path,
        st);
    INFO(lint);
    CHECK(st == 0);
    CHECK(parse_aggregate_xml(xml.value()).value().records.size() == 3);
  }
  // A second run over the same period sends nothing again.
  rc = run_report(args, &out);
  CHECK(rc == 0);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(w.sink.delivered().size() == 3);
}

TEST_CASE("e2e: dmarc-report killed while handing over a report; the rerun sends exactly the missing one",
          "[e2e][report]") {
  World w;
  for (int i = 0; i < 2; ++i) REQUIRE(send(w, Msg{}).accepted());
  w.mx.wait_delivered(2, std::chrono::seconds(30));
  REQUIRE(w.milter.stop() == 0);
  // The first mail goes through; the second hangs (an MTA that stalls).
  std::string calls = w.dir.file("calls");
  std::string script = w.dir.file("stall.sh");
  std::ofstream(script) << "#!/bin/sh\necho x >> " << calls << "\n"
                        << "if [ $(wc -l < " << calls << ") -ge 2 ]; then sleep 300; exit 75; fi\n"
                        << "exec /usr/sbin/sendmail -C " << w.sink.config_dir() << " -f dmarc-reports@mx.e2e.example -t -oi\n";
  fs::permissions(script, fs::perms::owner_all);
  std::string out;
  // Both runs cover the same period (a report is per domain and period).
  std::vector<std::string> args = today_args(w.report_config(script));
  int rc = run_report(args, &out, [&] {
    std::ifstream f(calls);
    std::string l;
    int n = 0;
    while (std::getline(f, l)) ++n;
    return n >= 2;
  });
  INFO(out);
  REQUIRE(rc == -1);  // killed
  w.sink.wait_delivered(1, std::chrono::seconds(30));
  args[1] = w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi");
  rc = run_report(args, &out);
  INFO(out << w.sink.log());
  CHECK(rc == 1);  // the unauthorised one
  w.sink.wait_delivered(3, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto got = reports(w.sink);
  CHECK(got.size() == 3);
  CHECK(got.count({"dmarc@rpt.example", "rpt.example"}) == 1);
  CHECK(got.count({"ext@auth.example", "rpt.example"}) == 1);
  CHECK(got.count({"any@wild.example", "rpt.example"}) == 1);
}

TEST_CASE("e2e: SIGHUP with another ReportStore records the next messages there; the first keeps its rows",
          "[e2e][report]") {
  World w;
  REQUIRE(send(w, Msg{}).accepted());
  w.mx.wait_delivered(1, std::chrono::seconds(30));
  std::string first = w.dir.file("reports.db"), second = w.dir.file("second.db");
  std::string cfg = w.common;
  cfg.replace(cfg.find(first), first.size(), second);
  w.milter.rewrite_config(cfg);
  w.milter.reload();
  REQUIRE(w.milter.wait_log("report store: sqlite:" + second));
  for (int i = 0; i < 2; ++i) REQUIRE(send(w, Msg{}).accepted());
  w.mx.wait_delivered(3, std::chrono::seconds(30));
  REQUIRE(w.milter.stop() == 0);
  INFO(w.milter.log());
  auto count = [](const std::string& db) {
    auto s = open_store("sqlite:" + db);
    REQUIRE(s);
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    auto recs = s.value()->records("rpt.example", utc_day(now.count()) - 1, utc_day(now.count()));
    REQUIRE(recs);
    std::uint64_t n = 0;
    for (const auto& r : recs.value()) n += r.count;
    return n;
  };
  CHECK(count(first) == 1);
  CHECK(count(second) == 2);
}

TEST_CASE("e2e: SIGKILL of the milter loses at most the last batch window of records", "[e2e][report]") {
  World w;
  for (int i = 0; i < 4; ++i) REQUIRE(send(w, Msg{}).accepted());
  w.mx.wait_delivered(4, std::chrono::seconds(30));
  // Older than one batch window (1 s): committed by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  REQUIRE(::kill(w.milter.pid(), SIGKILL) == 0);
  CHECK(w.milter.stop() == 128 + SIGKILL);
  auto s = open_store("sqlite:" + w.dir.file("reports.db"));
  REQUIRE(s);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto recs = s.value()->records("rpt.example", utc_day(now.count()) - 1, utc_day(now.count()));
  REQUIRE(recs);
  std::uint64_t n = 0;
  for (const auto& r : recs.value()) n += r.count;
  CHECK(n == 4);
}

TEST_CASE("e2e: a spoof with FailureReports on becomes an ARF report at the sink", "[e2e][report][failure]") {
  World w("FailureReports yes\n");
  Msg spoof;
  spoof.ip = "198.51.100.7";
  auto o = send(w, spoof);
  CHECK(o.final_reply.code == 550);
  REQUIRE(send(w, Msg{}).accepted());  // aligned: no failure report
  w.mx.wait_delivered(1, std::chrono::seconds(30));
  REQUIRE(w.milter.stop() == 0);
  INFO(w.milter.log());
  std::string out;
  int rc = run_report({"failures", "-c", w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi")},
                      &out, nullptr, /*subcommand_given=*/true);
  INFO(out << w.sink.log());
  CHECK(rc == 0);
  auto got = w.sink.wait_delivered(1, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  REQUIRE(w.sink.delivered().size() == 1);
  auto p = parse_failure_mail(got[0]);
  REQUIRE(p);
  const FeedbackReport& f = p.value().feedback;
  CHECK(header_values(got[0], "Delivered-To") == std::vector<std::string>{"forensic@rpt.example"});
  CHECK(f.feedback_type == "auth-failure");
  CHECK(f.auth_failure == "dmarc");
  CHECK(f.source_ip == "198.51.100.7");
  CHECK(f.reported_domain == std::vector<std::string>{"rpt.example"});
  CHECK(f.delivery_result == "reject");
  CHECK(f.identity_alignment == "none");
  CHECK(f.original_mail_from == "<alice@rpt.example>");
  CHECK(f.original_rcpt_to == std::vector<std::string>{"<bob@e2e.example>"});
  REQUIRE(f.authentication_results.size() == 1);
  CHECK_THAT(f.authentication_results[0], Catch::Contains("mx.e2e.example") && Catch::Contains("dmarc=fail"));
  CHECK(p.value().original_type == "text/rfc822-headers");
  CHECK_THAT(p.value().original, Catch::Contains("From: Alice <alice@rpt.example>"));
}

TEST_CASE("e2e: dmarc-report runs never overlap: a second one waits for the lock", "[e2e][report][failure]") {
  World w("FailureReports yes\n");
  Msg spoof;
  spoof.ip = "198.51.100.7";
  CHECK(send(w, spoof).final_reply.code == 550);
  // SIGTERM flushes the recorder: the job is in the store.
  REQUIRE(w.milter.stop() == 0);
  std::string cfg = w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi");

  // Another run holds the lock: ours waits for it and sends nothing meanwhile.
  std::string lock = w.dir.file("reports.db.lock");
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0640);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  std::string out;
  auto held_since = std::chrono::steady_clock::now();
  bool released = false;
  int rc = run_report({"failures", "-c", cfg}, &out,
                      [&] {
                        if (!released && std::chrono::steady_clock::now() - held_since > std::chrono::seconds(2)) {
                          CHECK(w.sink.delivered().empty());
                          ::flock(fd, LOCK_UN);
                          released = true;
                        }
                        return false;
                      },
                      true);
  ::close(fd);
  INFO(out);
  CHECK(released);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("waiting for another dmarc-report run"));
  w.sink.wait_delivered(1, std::chrono::seconds(30));
}

TEST_CASE("e2e: dmarc-report run sends queued failure reports within its interval and stops on SIGTERM",
          "[e2e][report][failure]") {
  World w("FailureReports yes\n");
  Msg spoof;
  spoof.ip = "198.51.100.7";
  CHECK(send(w, spoof).final_reply.code == 550);
  REQUIRE(w.milter.stop() == 0);
  std::string cfg = w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi");
  std::string out_path = w.dir.file("run.out");
  std::vector<std::string> words = {kReportBin, "run", "-c", cfg, "--failure-interval", "1", "--aggregate-delay",
                                    "86399"};
  std::vector<char*> argv;
  for (auto& x : words) argv.push_back(x.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  struct Reap {
    pid_t p;
    ~Reap() {
      if (p > 0 && ::waitpid(p, nullptr, WNOHANG) == 0) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
    }
  } reap{pid};
  auto got = w.sink.wait_delivered(1, std::chrono::seconds(30));
  CHECK(parse_failure_mail(got[0]).value().feedback.source_ip == "198.51.100.7");
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = -1;
  for (int i = 0; i < 200 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reap.p = -1;
  std::ifstream f(out_path);
  std::stringstream ss;
  ss << f.rdbuf();
  INFO(ss.str());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(ss.str(), Catch::Contains("run: stopped"));
}

TEST_CASE("e2e: a spoof of an own domain at p=none is kept as a local forensic report in the Maildir",
          "[e2e][report][forensic]") {
  TempDir maildir_parent;
  std::string maildir = maildir_parent.file("Forensic");
  World w("OwnDomains own.example\nForensicMaildir " + maildir + "\n");
  Msg spoof;
  spoof.ip = "198.51.100.7";
  spoof.mail_from = "alice@own.example";
  spoof.from_domain = "own.example";
  REQUIRE(send(w, spoof).accepted());  // p=none: delivered, and kept for the admin
  Msg good;
  good.mail_from = "alice@own.example";
  good.from_domain = "own.example";
  REQUIRE(send(w, good).accepted());  // aligned SPF pass: no report
  w.mx.wait_delivered(2, std::chrono::seconds(30));
  REQUIRE(w.milter.stop() == 0);
  std::string out;
  int rc = run_report({"failures", "-c", w.report_config("/bin/false")}, &out, nullptr, true);
  INFO(out);
  CHECK(rc == 0);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(maildir + "/new")) files.push_back(e.path().string());
  REQUIRE(files.size() == 1);
  std::ifstream f(files[0], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  auto p = parse_failure_mail(ss.str());
  REQUIRE(p);
  CHECK(p.value().feedback.source_ip == "198.51.100.7");
  CHECK(p.value().feedback.reported_domain == std::vector<std::string>{"own.example"});
  CHECK(p.value().feedback.delivery_result == "delivered");
  CHECK_THAT(p.value().text, Catch::Contains("SPF:          fail for own.example"));
  CHECK_THAT(p.value().text, Catch::Contains("Under p=reject it would be rejected."));
  CHECK_THAT(p.value().original, Catch::Contains("From: Alice <alice@own.example>"));
}

TEST_CASE("e2e: FailureReportContent message puts the whole spoof into the ARF report", "[e2e][report][failure]") {
  World w("FailureReports yes\nFailureReportContent message\n");
  Msg spoof;
  spoof.ip = "198.51.100.7";
  CHECK(send(w, spoof).final_reply.code == 550);
  REQUIRE(w.milter.stop() == 0);
  std::string out;
  int rc = run_report({"failures", "-c", w.report_config("/usr/sbin/sendmail -C " + w.sink.config_dir() + " -t -oi")},
                      &out, nullptr, true);
  INFO(out);
  CHECK(rc == 0);
  auto got = w.sink.wait_delivered(1, std::chrono::seconds(30));
  auto p = parse_failure_mail(got[0]);
  REQUIRE(p);
  CHECK(p.value().original_type == "message/rfc822");
  CHECK_THAT(p.value().original, Catch::Contains("From: Alice <alice@rpt.example>") && Catch::Contains("Hello."));
}
