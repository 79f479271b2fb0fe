// test_check_tool.cpp - dmarc-check against the NSD test world (tests/data/zones/example.zone)
//
// Runs the built program as an admin would and checks its report and its
// documented exit codes (man/dmarc-check.1).
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "support/nsd_server.hpp"

using dmarc::test::BlackHoleServer;
using dmarc::test::NsdServer;

namespace {
struct Run {
  int status = -1;
  std::string out;
};

Run run(const std::string& args) {
  std::string cmd = std::string(DMARC_BINARY_DIR) + "/dmarc-check " + args + " 2>&1";
  Run r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ns() { return "-n " + NsdServer::shared().address() + " "; }
bool has(const Run& r, const std::string& s) { return r.out.find(s) != std::string::npos; }
}  // namespace

TEST_CASE("check: an enforcing domain, exit 0", "[check]") {
  Run r = run(ns() + "good.example");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(has(r, "found at _dmarc.good.example"));
  CHECK(has(r, "p=reject sp=quarantine np=reject"));
  CHECK(has(r, "RFC 9989 tree walk: good.example"));
  CHECK(has(r, "policy p=reject -> reject"));
}

TEST_CASE("check: a subdomain shows where the record came from and sp", "[check]") {
  Run r = run(ns() + "mail.good.example");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(has(r, "_dmarc.mail.good.example"));
  CHECK(has(r, "found at _dmarc.good.example"));
  CHECK(has(r, "policy sp=quarantine -> quarantine"));
  Run ghost = run(ns() + "ghost.good.example");
  INFO(ghost.out);
  CHECK(has(ghost, "policy np=reject -> reject"));
}

TEST_CASE("check: p=none without rua warns, exit 1", "[check]") {
  Run r = run(ns() + "monitor.example");
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(has(r, "policy none: monitoring only"));
  CHECK(has(r, "no rua"));
}

TEST_CASE("check: unauthorized external rua, exit 1", "[check]") {
  Run r = run(ns() + "ext.example");
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(has(r, "a@good.example (authorized)"));
  CHECK(has(r, "b@reports.example (NOT authorized)"));
}

TEST_CASE("check: no record exit 2, invalid record exit 3, multiple records", "[check]") {
  Run none = run(ns() + "nothing.example");
  INFO(none.out);
  CHECK(none.status == 2);
  Run bad = run(ns() + "bad.example");
  INFO(bad.out);
  CHECK(bad.status == 3);
  CHECK(has(bad, "invalid p value 'bogus'"));
  Run multi = run(ns() + "multi.example");
  INFO(multi.out);
  CHECK(multi.status == 2);
  CHECK(has(multi, "2 DMARC records"));
}

TEST_CASE("check: split TXT strings and a CNAME are read as one record", "[check]") {
  Run r = run(ns() + "split.example");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(has(r, "v=DMARC1; p=reject; rua=mailto:d@split.example"));
  Run a = run(ns() + "alias.example");
  INFO(a.out);
  CHECK(has(a, "p=reject sp=quarantine"));
}

TEST_CASE("check: organizational domain differs between the two methods", "[check]") {
  Run r = run(ns() + "-P " DMARC_CONFORMANCE_DIR "/psl/public_suffix_list.dat a.org.deep.example");
  INFO(r.out);
  CHECK(has(r, "RFC 9989 tree walk: org.deep.example"));
  CHECK(has(r, "RFC 7489 PSL:       deep.example"));
  Run bank = run(ns() + "giant.bank.example");
  INFO(bank.out);
  CHECK(has(bank, "RFC 9989 tree walk: giant.bank.example"));
}

TEST_CASE("check: t=y and pct in RFC 7489 mode lower the disposition", "[check]") {
  Run t = run(ns() + "testing.example");
  INFO(t.out);
  CHECK(has(t, "-> quarantine (override: policy_test_mode)"));
  Run p = run(ns() + "-m rfc7489 -P " DMARC_CONFORMANCE_DIR "/psl/public_suffix_list.dat sampled.example");
  INFO(p.out);
  CHECK(has(p, "-> quarantine (override: sampled_out)"));
  Run bis = run(ns() + "sampled.example");
  INFO(bis.out);
  CHECK(has(bis, "pct=0 is ignored by RFC 9989 receivers"));
}

TEST_CASE("check: a DNS server that does not answer gives exit 4", "[check]") {
  BlackHoleServer hole;
  std::string conf = std::string(DMARC_BINARY_DIR) + "/check-timeout.conf";
  std::ofstream(conf) << "Nameservers " << hole.address() << "\nDNSTimeout 1\nDNSRetries 1\n";
  Run r = run("-c " + conf + " good.example");
  INFO(r.out);
  CHECK(r.status == 4);
  CHECK(has(r, "DNS failure"));
}

TEST_CASE("check: usage and configuration errors", "[check]") {
  CHECK(run("").status == 64);
  CHECK(run("-x good.example").status == 64);
  CHECK(run(ns() + "-m bis good.example").status == 64);
  std::string conf = std::string(DMARC_BINARY_DIR) + "/check-bad.conf";
  std::ofstream(conf) << "# test\nDNSTimeout zero\n";
  Run r = run("-c " + conf + " good.example");
  INFO(r.out);
  CHECK(r.status == 78);
  CHECK(has(r, conf + ":2: DNSTimeout needs a whole number"));
  CHECK(run("-c /nonexistent.conf good.example").status == 78);
  Run inv = run(ns() + "'bad..name'");
  CHECK(inv.status == 3);
  Run v = run("-V");
  CHECK(v.status == 0);
  CHECK(has(v, "dmarc-check 0."));
}
