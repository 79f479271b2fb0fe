// test_postfix_harness.cpp - the end-to-end harness itself: a private
// Postfix (tests/support/postfix_instance), the SMTP client
// (tests/support/smtp_client) and a scripted milter (e2e/milter_stub).
//
// These cases check what the dmarc-milter end-to-end tests rely on: mail
// is delivered and readable, XCLIENT sets the client Postfix and milters
// see, smtpd_milters is consulted, milter replies / headers / quarantine
// reach the client, the delivered message and the hold queue, SMTP AUTH
// (XCLIENT LOGIN and a real AUTH PLAIN) reaches milters as {auth_authen},
// and an instance leaves nothing behind. Runs as root (Postfix's master).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/milter_stub.hpp"
#include "support/postfix_instance.hpp"
#include "support/smtp_client.hpp"

namespace fs = std::filesystem;
using dmarc::test::header_values;
using dmarc::test::MilterStub;
using dmarc::test::MilterStubOptions;
using dmarc::test::PostfixInstance;
using dmarc::test::PostfixOptions;
using dmarc::test::send_mail;
using dmarc::test::SmtpMessage;
using dmarc::test::SmtpOutcome;
using dmarc::test::XclientAttributes;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string message_text(const std::string& subject, const std::string& extra_body = {}) {
  return "From: Alice <alice@example.org>\n"
         "To: bob@example.net\n"
         "Subject: " + subject + "\n"
         "Message-ID: <" + subject.substr(0, subject.find(' ')) + "@example.org>\n"
         "\n"
         "Hello Bob.\n" + extra_body;
}

SmtpMessage simple_message(const std::string& subject) {
  SmtpMessage m;
  m.mail_from = "alice@example.org";
  m.rcpt_to = {"bob@example.net"};
  m.data = message_text(subject);
  return m;
}

XclientAttributes client(const std::string& addr, const std::string& name, const std::string& helo) {
  XclientAttributes x;
  x.addr = addr;
  x.name = name;
  x.helo = helo;
  return x;
}

// closed_port - a TCP port on 127.0.0.1 where nothing listens.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  ::close(fd);
  return ntohs(sa.sin_port);
}

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string etc_main_cf() {
  std::ifstream in("/etc/postfix/main.cf");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// the_session - the milter session of the SMTP client presenting itself as ADDR.
const dmarc::test::MilterSession* session_for(const std::vector<dmarc::test::MilterSession>& sessions,
                                              const std::string& addr) {
  for (const auto& s : sessions) {
    if (s.addr == addr && s.messages > 0) return &s;
  }
  return nullptr;
}

}  // namespace

// --- pure helpers ------------------------------------------------------------------

TEST_CASE("smtp_client: DATA bytes are CRLF, dot-stuffed and terminated", "[e2e][harness]") {
  using dmarc::test::smtp_data_bytes;
  CHECK(smtp_data_bytes("a\nb\n") == "a\r\nb\r\n.\r\n");
  CHECK(smtp_data_bytes("a\r\nb") == "a\r\nb\r\n.\r\n");
  CHECK(smtp_data_bytes(".x\n..y\nz.\n.") == "..x\r\n...y\r\nz.\r\n..\r\n.\r\n");
  CHECK(smtp_data_bytes("") == ".\r\n");
}

TEST_CASE("smtp_client: xtext, base64, enhanced status codes", "[e2e][harness]") {
  using dmarc::test::base64;
  using dmarc::test::SmtpReply;
  using dmarc::test::xtext;
  CHECK(xtext("mail.example.org") == "mail.example.org");
  CHECK(xtext("a b+c=d") == "a+20b+2Bc+3Dd");
  CHECK(base64(std::string("\0alice\0pw", 9)) == "AGFsaWNlAHB3");
  CHECK(base64("ab") == "YWI=");
  SmtpReply r;
  r.code = 550;
  r.lines = {"5.7.1 rejected by DMARC policy", "more"};
  CHECK(r.enhanced() == "5.7.1");
  CHECK(r.str() == "550-5.7.1 rejected by DMARC policy\n550 more");
  r.lines = {"Ok"};
  CHECK(r.enhanced().empty());
}

TEST_CASE("message helpers unfold header fields", "[e2e][harness]") {
  const std::string m =
      "Received: from a\r\n\tby b\r\nSubject: one\r\nX-Long: first\r\n  second\r\nsubject:two\r\n\r\nSubject: body\r\n";
  CHECK(header_values(m, "Subject") == std::vector<std::string>{"one", "two"});
  CHECK(header_values(m, "x-long") == std::vector<std::string>{"first  second"});
  CHECK(header_values(m, "Received") == std::vector<std::string>{"from a\tby b"});
  CHECK(dmarc::test::header_names(m) == std::vector<std::string>{"Received", "Subject", "X-Long", "subject"});
  CHECK(dmarc::test::message_body(m) == "Subject: body\r\n");
}

// --- Postfix --------------------------------------------------------------------------

TEST_CASE("without a milter a message is delivered with readable headers", "[e2e][harness][postfix]") {
  PostfixInstance postfix;
  INFO(postfix.dir());
  SmtpMessage m = simple_message("plain delivery");
  m.data = message_text("plain delivery", ".a line starting with a dot\n");
  m.rcpt_to = {"bob@example.net", "carol@example.com"};
  const SmtpOutcome out = send_mail(postfix.port(), m);
  INFO(out.transcript_text());
  REQUIRE(out.accepted());
  CHECK(out.rcpt_replies.size() == 2);
  const std::string id = out.queue_id();
  REQUIRE_FALSE(id.empty());

  // virtual(8) writes one copy per recipient.
  const std::vector<std::string> mail = postfix.wait_delivered(2);
  INFO(postfix.log());
  REQUIRE(mail.size() == 2);
  std::vector<std::string> delivered_to;
  for (const auto& msg : mail) {
    CHECK(header_values(msg, "Subject") == std::vector<std::string>{"plain delivery"});
    CHECK(header_values(msg, "Return-Path") == std::vector<std::string>{"<alice@example.org>"});
    CHECK(header_values(msg, "From") == std::vector<std::string>{"Alice <alice@example.org>"});
    const auto received = header_values(msg, "Received");
    REQUIRE(received.size() == 1);
    CHECK_THAT(received[0], Contains("by mx.e2e.test (Postfix) with ESMTP id " + id));
    // Dot-stuffing undone by the server: the body line is as written.
    CHECK(dmarc::test::message_body(msg) == "Hello Bob.\n.a line starting with a dot\n");
    for (const auto& v : header_values(msg, "Delivered-To")) delivered_to.push_back(v);
  }
  std::sort(delivered_to.begin(), delivered_to.end());
  CHECK(delivered_to == std::vector<std::string>{"bob@example.net", "carol@example.com"});
  CHECK(postfix.queue().empty());
}

TEST_CASE("XCLIENT sets the client address, name and HELO Postfix records", "[e2e][harness][postfix]") {
  PostfixInstance postfix;
  SmtpMessage m = simple_message("xclient v4");
  m.xclient = client("198.51.100.7", "mail.example.org", "helo.example.org");
  SmtpOutcome out = send_mail(postfix.port(), m);
  INFO(out.transcript_text());
  REQUIRE(out.accepted());
  std::vector<std::string> mail = postfix.wait_delivered(1);
  INFO(postfix.log());
  auto received = header_values(mail[0], "Received");
  REQUIRE(received.size() == 1);
  CHECK_THAT(received[0], StartsWith("from helo.example.org (mail.example.org [198.51.100.7])"));

  // An unknown client name, as Postfix shows one that has no (verified) PTR.
  m = simple_message("xclient unknown");
  m.xclient = client("192.0.2.55", "[UNAVAILABLE]", "nowhere.example");
  out = send_mail(postfix.port(), m);
  INFO(out.transcript_text());
  REQUIRE(out.accepted());
  mail = postfix.wait_delivered(2);
  received = header_values(mail[1], "Received");
  REQUIRE(received.size() == 1);
  CHECK_THAT(received[0], StartsWith("from nowhere.example (unknown [192.0.2.55])"));

  // IPv6, where the kernel has it (Postfix then runs with inet_protocols = all).
  if (fs::exists("/proc/net/if_inet6")) {
    m = simple_message("xclient v6");
    m.xclient = client("IPV6:2001:db8::7", "mail6.example.org", "mail6.example.org");
    out = send_mail(postfix.port(), m);
    INFO(out.transcript_text());
    REQUIRE(out.accepted());
    mail = postfix.wait_delivered(3);
    received = header_values(mail[2], "Received");
    REQUIRE(received.size() == 1);
    CHECK_THAT(received[0], StartsWith("from mail6.example.org (mail6.example.org [IPv6:2001:db8::7])"));
  } else {
    WARN("no IPv6 in this kernel: XCLIENT ADDR=IPV6:... not checked");
  }
}

TEST_CASE("an unreachable milter with milter_default_action=tempfail gives 451", "[e2e][harness][postfix]") {
  const std::uint16_t nobody = closed_port();
  PostfixOptions o;
  o.milter = "inet:127.0.0.1:" + std::to_string(nobody);
  SECTION("tempfail (the default)") {
    PostfixInstance postfix(o);
    REQUIRE(postfix.postconf("smtpd_milters") == o.milter);
    SmtpMessage m = simple_message("no milter there");
    m.xclient = client("203.0.113.9", "mail.example.org", "mail.example.org");
    const SmtpOutcome out = send_mail(postfix.port(), m);
    INFO(out.transcript_text());
    INFO(postfix.log());
    CHECK_FALSE(out.accepted());
    CHECK(out.final_reply.code == 451);
    CHECK(out.final_reply.enhanced() == "4.7.1");
    // Postfix refuses the transaction at its first step (MAIL FROM).
    CHECK((out.stage == "mail" || out.stage == "rcpt" || out.stage == "data"));
    CHECK_THAT(postfix.log(), Contains("connect to Milter service " + o.milter));
    CHECK(postfix.queue().empty());
    CHECK(postfix.delivered().empty());
  }
  SECTION("accept: the same unreachable milter lets the message through") {
    o.milter_default_action = "accept";
    PostfixInstance postfix(o);
    const SmtpOutcome out = send_mail(postfix.port(), simple_message("accept anyway"));
    INFO(out.transcript_text());
    CHECK(out.accepted());
    CHECK(postfix.wait_delivered(1).size() == 1);
  }
}

TEST_CASE("a milter sees the XCLIENT client, and its reply reaches the SMTP client", "[e2e][harness][postfix]") {
  MilterStubOptions so;
  so.eom_reply = "550 5.7.1 rejected by the stub milter";
  MilterStub stub(so);
  PostfixOptions o;
  o.milter = stub.address();
  PostfixInstance postfix(o);
  SmtpMessage m = simple_message("stub reject");
  m.xclient = client("198.51.100.20", "mail.example.org", "helo.example.org");
  m.mail_from = "";  // null reverse path
  const SmtpOutcome out = send_mail(postfix.port(), m);
  INFO(out.transcript_text());
  INFO(postfix.log());
  CHECK(out.stage == "message");
  CHECK_THAT(out.final_reply.str(), StartsWith("550 5.7.1 rejected by the stub milter"));
  CHECK(postfix.queue().empty());
  CHECK(postfix.delivered().empty());

  const auto sessions = stub.sessions();
  const dmarc::test::MilterSession* s = session_for(sessions, "198.51.100.20");
  REQUIRE(s != nullptr);
  CHECK(s->family == '4');
  CHECK(s->host == "mail.example.org");
  CHECK(s->helo == "helo.example.org");
  REQUIRE_FALSE(s->mail_from.empty());
  CHECK(s->mail_from[0] == "<>");
  CHECK(s->rcpt_to == std::vector<std::string>{"<bob@example.net>"});
  CHECK(std::count(s->headers.begin(), s->headers.end(),
                   std::pair<std::string, std::string>{"Subject", "stub reject"}) == 1);
  CHECK_FALSE(s->macro("i").empty());  // the queue id
  CHECK(s->macro("j") == "mx.e2e.test");
  CHECK(s->macro("auth_authen").empty());
}

TEST_CASE("a header added by a milter is in the delivered message", "[e2e][harness][postfix]") {
  MilterStubOptions so;
  so.add_header_name = "X-Stub";
  so.add_header_value = "seen";
  MilterStub stub(so);
  PostfixOptions o;
  o.milter = stub.address();
  PostfixInstance postfix(o);
  const SmtpOutcome out = send_mail(postfix.port(), simple_message("stub header"));
  INFO(out.transcript_text());
  REQUIRE(out.accepted());
  const auto mail = postfix.wait_delivered(1);
  CHECK(header_values(mail[0], "X-Stub") == std::vector<std::string>{"seen"});
}

TEST_CASE("held messages are listed from postqueue -j", "[e2e][harness][postfix]") {
  SECTION("header_checks HOLD") {
    PostfixOptions o;
    o.main_cf = {"header_checks = regexp:${config_directory}/header_checks"};
    o.files["header_checks"] = "/^Subject: .*HOLD-ME/ HOLD held by the harness test\n";
    PostfixInstance postfix(o);
    SmtpMessage m = simple_message("please HOLD-ME");
    m.rcpt_to = {"bob@example.net", "carol@example.com"};
    const SmtpOutcome held_out = send_mail(postfix.port(), m);
    const SmtpOutcome plain_out = send_mail(postfix.port(), simple_message("not held"));
    INFO(held_out.transcript_text());
    REQUIRE(held_out.accepted());
    REQUIRE(plain_out.accepted());
    postfix.wait_delivered(1);
    const auto held = postfix.held();
    INFO(postfix.log());
    REQUIRE(held.size() == 1);
    CHECK(held[0].queue_id == held_out.queue_id());
    CHECK(held[0].queue_name == "hold");
    CHECK(held[0].sender == "alice@example.org");
    CHECK(held[0].recipient_addresses() == std::vector<std::string>{"bob@example.net", "carol@example.com"});
    CHECK(held[0].message_size > 0);
    CHECK(postfix.delivered().size() == 1);
    CHECK(header_values(postfix.delivered()[0], "Subject") == std::vector<std::string>{"not held"});
  }
  SECTION("milter quarantine, null sender") {
    MilterStubOptions so;
    so.quarantine_reason = "quarantined by the stub";
    MilterStub stub(so);
    PostfixOptions o;
    o.milter = stub.address();
    PostfixInstance postfix(o);
    SmtpMessage m = simple_message("quarantine me");
    m.mail_from = "";
    const SmtpOutcome out = send_mail(postfix.port(), m);
    INFO(out.transcript_text());
    REQUIRE(out.accepted());
    const auto held = postfix.held();
    INFO(postfix.log());
    REQUIRE(held.size() == 1);
    CHECK(held[0].queue_id == out.queue_id());
    CHECK(held[0].sender == "");
    CHECK(postfix.delivered().empty());
    CHECK_THAT(postfix.log(), Contains("milter-hold: END-OF-MESSAGE"));
  }
}

TEST_CASE("SMTP AUTH reaches milters as {auth_authen}", "[e2e][harness][postfix]") {
  MilterStub stub;
  PostfixOptions o;
  o.milter = stub.address();
  SECTION("XCLIENT LOGIN") {
    PostfixInstance postfix(o);
    SmtpMessage m = simple_message("xclient login");
    m.xclient = client("192.0.2.10", "laptop.example.org", "laptop.example.org");
    m.xclient->login = "alice";
    SmtpOutcome out = send_mail(postfix.port(), m);
    INFO(out.transcript_text());
    REQUIRE(out.accepted());
    // Negative control: the same client without LOGIN.
    m.xclient = client("192.0.2.11", "laptop.example.org", "laptop.example.org");
    out = send_mail(postfix.port(), m);
    REQUIRE(out.accepted());

    const auto sessions = stub.sessions();
    const auto* with = session_for(sessions, "192.0.2.10");
    const auto* without = session_for(sessions, "192.0.2.11");
    REQUIRE(with != nullptr);
    REQUIRE(without != nullptr);
    CHECK(with->macro("{auth_authen}") == "alice");
    CHECK(with->macro("auth_type") == "XCLIENT");
    CHECK(without->macro("auth_authen").empty());
    const auto mail = postfix.wait_delivered(2);
    CHECK_THAT(header_values(mail[0], "Received")[0], Contains("(Authenticated sender: alice)"));
  }
  SECTION("AUTH PLAIN through the built-in Dovecot-protocol server") {
    o.sasl = true;
    o.sasl_users = {{"alice", "alice-secret"}};
    PostfixInstance postfix(o);
    {
      dmarc::test::SmtpClient c("127.0.0.1", postfix.port());
      REQUIRE(c.ehlo("client.example").code == 250);
      CHECK(c.has_extension("AUTH PLAIN"));
      CHECK(c.auth_plain("alice", "wrong").code == 535);
      c.quit();
    }
    SmtpMessage m = simple_message("auth plain");
    m.xclient = client("192.0.2.12", "laptop.example.org", "laptop.example.org");
    m.auth = dmarc::test::SmtpCredentials{"alice", "alice-secret"};
    const SmtpOutcome out = send_mail(postfix.port(), m);
    INFO(out.transcript_text());
    INFO(postfix.log());
    REQUIRE(out.accepted());
    const auto sessions = stub.sessions();
    const auto* s = session_for(sessions, "192.0.2.12");
    REQUIRE(s != nullptr);
    CHECK(s->macro("auth_authen") == "alice");
    CHECK(s->macro("auth_type") == "PLAIN");
    CHECK_THAT(postfix.log(), Contains("sasl_method=PLAIN, sasl_username=alice"));
  }
}

TEST_CASE("non_smtpd_milters: a locally submitted message goes through the milter", "[e2e][harness][postfix]") {
  MilterStubOptions so;
  so.add_header_name = "X-Stub";
  so.add_header_value = "local";
  MilterStub stub(so);
  PostfixOptions o;
  o.milter = stub.address();
  o.milter_non_smtpd = true;
  PostfixInstance postfix(o);
  postfix.sendmail(message_text("local submission"), "alice@example.org", {"bob@example.net"});
  const auto mail = postfix.wait_delivered(1);
  INFO(postfix.log());
  CHECK(header_values(mail[0], "Subject") == std::vector<std::string>{"local submission"});
  CHECK(header_values(mail[0], "X-Stub") == std::vector<std::string>{"local"});
  CHECK(stub.sessions().size() >= 1);
}

TEST_CASE("an instance leaves nothing behind, even when the test throws", "[e2e][harness][postfix]") {
  const char* keep = std::getenv("DMARC_TEST_KEEP_POSTFIX");
  if (keep && std::string(keep) == "1") {
    SUCCEED("DMARC_TEST_KEEP_POSTFIX=1 keeps instance directories: clean-up not checked");
    return;
  }
  std::string dir;
  std::uint16_t port = 0;
  try {
    PostfixInstance postfix;
    dir = postfix.dir();
    port = postfix.port();
    REQUIRE(can_connect(port));
    REQUIRE(fs::exists(dir + "/queue/pid/master.pid"));
    CHECK_THAT(etc_main_cf(), Contains(postfix.config_dir()));
    throw std::runtime_error("a failing assertion throws like this");
  } catch (const std::runtime_error&) {
  }
  CHECK_FALSE(fs::exists(dir));
  CHECK_FALSE(can_connect(port));
  CHECK_THAT(etc_main_cf(), !Contains(dir + "/etc"));
}
