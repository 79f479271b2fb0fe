// test_mailer.cpp - ReportCommand and ReportSMTP against real programs:
// /bin/sh scripts for exit statuses, hangs and early exits, Postfix's
// sendmail(1) and a private Postfix as the SMTP sink.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dmarc/report/mailer.hpp"
#include "dmarc/report/report_mail.hpp"
#include "support/postfix_instance.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::slurp;
using dmarc::test::TempDir;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {



std::unique_ptr<Mailer> sh(const std::string& script, milliseconds timeout = milliseconds(10000)) {
  return command_mailer({"/bin/sh", "-c", script}, timeout);
}

std::string report_message(const std::string& from, const std::string& to, const std::string& subject) {
  ReportMail m;
  m.from = from;
  m.to = {to};
  m.subject = subject;
  m.message_id = "test." + subject + "@mx.example.net";
  m.date = 1765000000;
  m.text = "A report.\n.\nA line with only a dot above.\n";
  m.attachment_name = "r.xml.gz";
  m.attachment = std::string(5000, '\x01') + "\n.\n" + std::string(5000, '\xfe');
  auto b = build_report_mail(m);
  REQUIRE(b);
  return b.value();
}

}  // namespace

TEST_CASE("split_command: words, quotes, escapes; no shell", "[mailer]") {
  CHECK(split_command("/usr/sbin/sendmail -t -oi").value() ==
        std::vector<std::string>{"/usr/sbin/sendmail", "-t", "-oi"});
  CHECK(split_command("  /bin/x  'a b'  \"c \\\" d\" e\\ f ''").value() ==
        std::vector<std::string>{"/bin/x", "a b", "c \" d", "e f", ""});
  CHECK_FALSE(split_command(""));
  CHECK_FALSE(split_command("   "));
  CHECK_FALSE(split_command("/bin/x 'open"));
  CHECK_FALSE(split_command("/bin/x \\"));
  auto rel = split_command("sendmail -t");
  REQUIRE_FALSE(rel);
  CHECK_THAT(rel.error(), Catch::Contains("absolute"));
}

TEST_CASE("command mailer: the message on stdin, recipients as arguments without -t", "[mailer]") {
  TempDir d;
  std::string out = d.file("msg"), args = d.file("args");
  auto m = sh("cat > " + out + "; echo \"$@\" > " + args);
  std::string msg = "Subject: x\n\nbody\n";
  auto err = m->send("from@example.net", {"rua@example.com", "b@example.org"}, msg);
  INFO((err ? err->message : std::string()));
  REQUIRE_FALSE(err);
  CHECK(slurp(out) == msg);
  CHECK(slurp(args) == "rua@example.com b@example.org\n");  // $0 is the "--"
  CHECK(m->describe() == "command /bin/sh -c cat > " + out + "; echo \"$@\" > " + args);
}

TEST_CASE("command mailer: exit statuses, output in the error, permanence", "[mailer]") {
  auto temp = sh("cat >/dev/null; echo 'queue file write error' >&2; exit 75")->send("f@example.net", {"t@example.com"}, "x\n");
  REQUIRE(temp);
  CHECK(temp->temporary);
  CHECK_THAT(temp->message, Catch::Contains("exit status 75") && Catch::Contains("queue file write error"));
  for (int code : {65, 67, 68}) {
    auto perm = sh("cat >/dev/null; exit " + std::to_string(code))->send("f@example.net", {"t@example.com"}, "x\n");
    REQUIRE(perm);
    CHECK_FALSE(perm->temporary);
  }
  auto sig = sh("cat >/dev/null; kill -9 $$")->send("f@example.net", {"t@example.com"}, "x\n");
  REQUIRE(sig);
  CHECK_THAT(sig->message, Catch::Contains("signal 9"));
  auto missing = command_mailer({"/nonexistent/sendmail", "-t"}, milliseconds(1000))->send("f@e.net", {"t@e.com"}, "x");
  REQUIRE(missing);
  CHECK_THAT(missing->message, Catch::Contains("/nonexistent/sendmail"));
  // A flood of output is cut, not kept whole.
  auto loud = sh("cat >/dev/null; head -c 1000000 /dev/zero | tr '\\0' y; exit 1")->send("f@e.net", {"t@e.com"}, "x");
  REQUIRE(loud);
  CHECK(loud->message.size() < 5000);
}

TEST_CASE("command mailer: a hanging command is killed at the timeout", "[mailer]") {
  auto start = std::chrono::steady_clock::now();
  auto err = sh("sleep 60", milliseconds(700))->send("f@example.net", {"t@example.com"}, "x\n");
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(err);
  CHECK(err->temporary);
  CHECK_THAT(err->message, Catch::Contains("killed"));
  CHECK(took < std::chrono::seconds(5));
  // Nothing is left behind: no child of ours remains.
  CHECK(::waitpid(-1, nullptr, WNOHANG) <= 0);
}

TEST_CASE("command mailer: a command that exits without reading does not kill us", "[mailer]") {
  std::string big(8 * 1024 * 1024, 'a');
  auto err = sh("exit 0")->send("f@example.net", {"t@example.com"}, big);
  REQUIRE(err);  // it did not take the mail
  CHECK(err->temporary);
  CHECK_THAT(err->message, Catch::Contains("before reading the whole message"));
  // A command that leaves a background process holding its output returns
  // when the command itself exits.
  auto start = std::chrono::steady_clock::now();
  auto bg = sh("cat >/dev/null; sleep 30 & exit 0", milliseconds(20000))->send("f@e.net", {"t@e.com"}, "x\n");
  CHECK_FALSE(bg);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("command mailer: Postfix's sendmail -t delivers a report mail with our envelope sender",
          "[mailer][postfix]") {
  test::PostfixInstance sink;
  std::string msg = report_message("dmarc-reports@mx.example.net", "rua@example.com", "cmd");
  auto m = command_mailer({"/usr/sbin/sendmail", "-C", sink.config_dir(), "-t", "-oi"}, milliseconds(30000));
  auto err = m->send("dmarc-reports@mx.example.net", {"rua@example.com"}, msg);
  INFO((err ? err->message : std::string()) << sink.log());
  REQUIRE_FALSE(err);
  auto got = sink.wait_delivered(1, std::chrono::seconds(30));
  CHECK(test::header_values(got[0], "Return-Path") == std::vector<std::string>{"<dmarc-reports@mx.example.net>"});
  CHECK(test::header_values(got[0], "Delivered-To") == std::vector<std::string>{"rua@example.com"});
  auto p = parse_report_mail(got[0]);
  REQUIRE(p);
  REQUIRE(p.value().parts.size() == 2);
  CHECK(p.value().parts[1].data == parse_report_mail(msg).value().parts[1].data);
  CHECK_THAT(p.value().parts[0].data, Catch::Contains("\n.\nA line with only a dot"));
}

TEST_CASE("smtp mailer: delivery, 5xx permanent, 4xx and refused connections temporary",
          "[mailer][postfix]") {
  test::PostfixOptions o;
  o.main_cf = {"smtpd_recipient_restrictions = check_recipient_access regexp:${config_directory}/rcpt, permit"};
  o.files["rcpt"] = "/^never@/ 550 5.1.1 no such user\n/^later@/ 450 4.2.0 try again later\n";
  test::PostfixInstance sink(o);
  std::string hp = "127.0.0.1:" + std::to_string(sink.port());
  auto m = smtp_mailer(hp, "reports.example.net", milliseconds(30000));
  CHECK(m->describe() == "smtp " + hp);
  std::string msg = report_message("dmarc-reports@mx.example.net", "rua@example.com", "smtp");
  auto err = m->send("dmarc-reports@mx.example.net", {"rua@example.com"}, msg);
  INFO((err ? err->message : std::string()) << sink.log());
  REQUIRE_FALSE(err);
  auto got = sink.wait_delivered(1, std::chrono::seconds(30));
  CHECK(test::header_values(got[0], "Return-Path") == std::vector<std::string>{"<dmarc-reports@mx.example.net>"});
  CHECK_THAT(test::header_values(got[0], "Received").back(), Catch::Contains("reports.example.net"));
  auto p = parse_report_mail(got[0]);
  REQUIRE(p);
  REQUIRE(p.value().parts.size() == 2);
  CHECK(p.value().parts[1].data == parse_report_mail(msg).value().parts[1].data);
  CHECK_THAT(p.value().parts[0].data, Catch::Contains("\n.\nA line with only a dot"));

  auto perm = m->send("dmarc-reports@mx.example.net", {"never@example.com"}, msg);
  REQUIRE(perm);
  CHECK_FALSE(perm->temporary);
  CHECK_THAT(perm->message, Catch::Contains("550"));
  auto temp = m->send("dmarc-reports@mx.example.net", {"later@example.com"}, msg);
  REQUIRE(temp);
  CHECK(temp->temporary);

  // A port nobody listens on.
  auto closed = smtp_mailer("127.0.0.1:1", "x.example", milliseconds(5000))->send("a@b.example", {"c@d.example"}, msg);
  REQUIRE(closed);
  CHECK(closed->temporary);
}
