// test_spf_libspf2.cpp - what libspf2 1.2.10 (Debian 1.2.10-7.2) does on its
// own, with its built-in zone DNS layer (SPF_DNS_ZONE), next to what
// SpfVerifier does with the same records. Each case is a reason for code in
// src/adapters/spf; if a libspf2 update changes its behaviour, the case
// fails and the workaround (and its documentation) can be revisited.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>
}

#include "dmarc/adapters/spf.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;

namespace {

// RawSpf - libspf2 with its own zone layer; records as (name, type, text).
struct RawSpf {
  SPF_server_t* server = SPF_server_new(SPF_DNS_ZONE, 0);
  RawSpf() { REQUIRE(server != nullptr); }
  ~RawSpf() { SPF_server_free(server); }
  RawSpf(const RawSpf&) = delete;
  RawSpf& operator=(const RawSpf&) = delete;
  void add(const char* name, ns_type type, const char* data) {
    REQUIRE(SPF_dns_zone_add_str(server->resolver, name, type, NETDB_SUCCESS, data) == SPF_E_SUCCESS);
  }
  SPF_result_t check(const char* ip, const char* from) {
    SPF_request_t* req = SPF_request_new(server);
    REQUIRE(SPF_request_set_ipv4_str(req, ip) == SPF_E_SUCCESS);
    SPF_request_set_env_from(req, from);
    SPF_request_set_helo_dom(req, "h.example");
    SPF_response_t* resp = nullptr;
    SPF_request_query_mailfrom(req, &resp);
    SPF_result_t r = resp != nullptr ? SPF_response_result(resp) : SPF_RESULT_INVALID;
    if (resp != nullptr) SPF_response_free(resp);
    SPF_request_free(req);
    return r;
  }
};

AuthResult ours(test::StaticResolver& dns, const char* ip, const char* from) {
  auto v = SpfVerifier::create(dns);
  REQUIRE(v);
  return (*v)->check(ip, "h.example", from).result;
}

}  // namespace

TEST_CASE("libspf2: no void-lookup limit (RFC 7208 4.6.4), so the DNS layer counts", "[spf][libspf2]") {
  const char* record = "v=spf1 a:v1.example a:v2.example a:v3.example ?all";
  RawSpf raw;
  raw.add("example.net", ns_t_txt, record);
  CHECK(raw.check("192.0.2.1", "a@example.net") == SPF_RESULT_NEUTRAL);
  test::StaticResolver dns;
  dns.add_txt("example.net", record);
  CHECK(ours(dns, "192.0.2.1", "a@example.net") == AuthResult::PermError);
}

TEST_CASE("libspf2: loopback clients always pass in SPF_request_query_mailfrom()", "[spf][libspf2]") {
  RawSpf raw;
  raw.add("example.net", ns_t_txt, "v=spf1 -all");
  CHECK(raw.check("127.0.0.1", "a@example.net") == SPF_RESULT_PASS);
  test::StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 -all");
  CHECK(ours(dns, "127.0.0.1", "a@example.net") == AuthResult::Fail);
}

TEST_CASE("libspf2: macro transformers lose a character when N reaches the part count", "[spf][libspf2]") {
  // RFC 7208 7.3: %{d3} of "mail.example.net" is all three parts. libspf2
  // expands it to "ail.example.net", so it looks up the wrong name.
  const char* record = "v=spf1 exists:%{d3}.x.example -all";
  RawSpf raw;
  raw.add("mail.example.net", ns_t_txt, record);
  raw.add("mail.example.net.x.example", ns_t_a, "127.0.0.2");
  CHECK(raw.check("192.0.2.1", "a@mail.example.net") == SPF_RESULT_FAIL);
  test::StaticResolver dns;
  dns.add_txt("mail.example.net", record);
  dns.add("mail.example.net.x.example", RRType::A, "127.0.0.2");
  CHECK(ours(dns, "192.0.2.1", "a@mail.example.net") == AuthResult::Pass);
}

TEST_CASE("libspf2: the 10-term limit is per record, not per check", "[spf][libspf2]") {
  RawSpf raw;
  test::StaticResolver dns;
  auto both = [&](const char* name, const char* txt) {
    raw.add(name, ns_t_txt, txt);
    dns.add_txt(name, txt);
  };
  both("example.net", "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example "
                      "include:inner.example -all");
  both("inner.example", "v=spf1 a:h6.example a:h7.example a:h8.example a:h9.example ip4:192.0.2.1");
  for (const char* h : {"h1.example", "h2.example", "h3.example", "h4.example", "h5.example", "h6.example",
                        "h7.example", "h8.example", "h9.example"}) {
    raw.add(h, ns_t_a, "198.51.100.1");
    dns.add(h, RRType::A, "198.51.100.1");
  }
  // 5 + include + 4 = 10: fine for both.
  CHECK(raw.check("192.0.2.1", "a@example.net") == SPF_RESULT_PASS);
  CHECK(ours(dns, "192.0.2.1", "a@example.net") == AuthResult::Pass);
  // One more term in the included record: 11 in the check, 5 in the record.
  raw.add("inner2.example", ns_t_txt,
          "v=spf1 a:h6.example a:h7.example a:h8.example a:h9.example a:h1.example ip4:192.0.2.1");
  raw.add("example.org", ns_t_txt,
          "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example include:inner2.example -all");
  dns.add_txt("inner2.example",
              "v=spf1 a:h6.example a:h7.example a:h8.example a:h9.example a:h1.example ip4:192.0.2.1");
  dns.add_txt("example.org",
              "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example include:inner2.example -all");
  CHECK(raw.check("192.0.2.1", "a@example.org") == SPF_RESULT_PASS);
  CHECK(ours(dns, "192.0.2.1", "a@example.org") == AuthResult::PermError);
}

TEST_CASE("libspf2: CIDR length 0, redirect before all, lax syntax", "[spf][libspf2]") {
  struct Case {
    const char* record;
    SPF_result_t libspf2;
    AuthResult ours;
  };
  const Case cases[] = {
      // RFC 7208 5.6 allows /0; libspf2 does not compile the record
      // ("Invalid CIDR length") and gives no result at all.
      {"v=spf1 ip4:198.51.100.1/0 -all", SPF_RESULT_INVALID, AuthResult::Pass},
      // 6.1: redirect is ignored when "all" is present; libspf2 follows it
      // where it stands (here into a loop).
      {"v=spf1 redirect=example.net ~all", SPF_RESULT_PERMERROR, AuthResult::SoftFail},
      // 7.1: '%' must start a macro; libspf2 takes "%(" as text.
      {"v=spf1 -exists:%(ir).sbl.example ?all", SPF_RESULT_NEUTRAL, AuthResult::PermError},
      // 7.1: a domain-spec ends in a top label; libspf2 does not check.
      {"v=spf1 a:museum -all", SPF_RESULT_FAIL, AuthResult::PermError},
      // 6: unknown modifiers are ignored; libspf2 reads "exp-text=" as the
      // explanation itself (harmless here, but not RFC 7208).
      {"v=spf1 ip4:192.0.2.1 exp-text=hello -all", SPF_RESULT_PASS, AuthResult::Pass},
  };
  for (const auto& c : cases) {
    INFO(c.record);
    RawSpf raw;
    raw.add("example.net", ns_t_txt, c.record);
    CHECK(raw.check("192.0.2.1", "a@example.net") == c.libspf2);
    test::StaticResolver dns;
    dns.add_txt("example.net", c.record);
    CHECK(ours(dns, "192.0.2.1", "a@example.net") == c.ours);
  }
}

TEST_CASE("libspf2: CVE-2023-42118 is not fixed in Debian 1.2.10-7.2 (why the compile guard exists)",
          "[spf][libspf2][cve]") {
  // 127 macros bring a term's compiled data to 508 of SPF_MAX_MECH_LEN (511)
  // octets; the space left for the next literal (3 - 4) underflows, and the
  // literal is copied past the 4096-octet stack buffer of SPF_c_mech_add().
  // Upstream d14abff ("Fix integer underflow", 2023) adds the check.
  std::string record = "v=spf1 a:";
  for (int i = 0; i < 127; ++i) record += "%{d}";
  record += std::string(8000, 'a');
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Keep libspf2's "stack smashing detected" out of the test log.
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    SPF_server_t* server = SPF_server_new(SPF_DNS_ZONE, 0);
    SPF_response_t* resp = SPF_response_new(nullptr);
    SPF_record_t* rec = nullptr;
    SPF_record_compile(server, resp, &rec, record.c_str());
    _exit(0);  // only reached when the compiler survived the record
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  const bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  INFO("child status " << status << (WIFSIGNALED(status) ? " (signal)" : ""));
  CHECK_FALSE(clean_exit);

  // Through SpfVerifier libspf2 never compiles a macro: domain-specs are
  // expanded first and cut to 253 octets (RFC 7208 7.3), so the pattern
  // cannot reach the compiler (libspf2_compile_problem() would still refuse
  // it). As published, the domain-spec lacks a top label: permerror (7.1).
  test::StaticResolver dns;
  dns.add_txt("example.net", record);
  dns.add_txt("example.org", record + ".example");
  auto v = SpfVerifier::create(dns);
  REQUIRE(v);
  SpfCheckResult r = (*v)->check("192.0.2.1", "h.example", "a@example.net");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.problem.find("does not end in a valid top label") != std::string::npos);
  // Made valid: it expands to "example.org" x 127 + 8000 "a" + ".example",
  // cut on the left to the last label that fits: "example". No match.
  dns.clear_log();
  r = (*v)->check("192.0.2.1", "h.example", "a@example.org");
  CHECK(r.result == AuthResult::Neutral);
  REQUIRE(dns.query_count() == 2);
  CHECK(dns.queries()[1].first == "example");
}

TEST_CASE("libspf2: mechanisms past 511 compiled octets are dropped silently", "[spf][libspf2]") {
  // SPF_c_mech_add() returns SPF_E_BIG_MECH without recording an error, so
  // SPF_record_compile() succeeds with the tail of the record missing: with
  // 64 ip4 terms the closing "-all" is lost and a forged sender gets
  // neutral instead of fail. We refuse such records (permerror).
  for (int n : {63, 64}) {
    std::string rec = "v=spf1";
    for (int i = 0; i < n; ++i) rec += " ip4:198.51.100." + std::to_string(i);
    rec += " -all";
    INFO(n << " ip4 terms and -all");
    RawSpf raw;
    raw.add("example.net", ns_t_txt, rec.c_str());
    test::StaticResolver dns;
    dns.add_txt("example.net", rec);
    if (n == 63) {
      CHECK(raw.check("192.0.2.1", "a@example.net") == SPF_RESULT_FAIL);
      CHECK(ours(dns, "192.0.2.1", "a@example.net") == AuthResult::Fail);
    } else {
      CHECK(raw.check("192.0.2.1", "a@example.net") == SPF_RESULT_NEUTRAL);
      CHECK(ours(dns, "192.0.2.1", "a@example.net") == AuthResult::PermError);
    }
  }
}
