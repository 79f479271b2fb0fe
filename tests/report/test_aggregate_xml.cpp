// test_aggregate_xml.cpp - the aggregate report document: schema validity
// (xmllint against ../shared/conformance/schema), round trips, hostile
// text, the conformance samples, XXE and size limits, gzip/gunzip.
#include <catch2/catch.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dmarc/report/aggregate_xml.hpp"

extern char** environ;

using namespace dmarc;
namespace fs = std::filesystem;

namespace {

const std::string kSchemaDir = DMARC_CONFORMANCE_DIR "/schema";
const std::string kXsd7489 = kSchemaDir + "/rfc7489-appendix-c.no-namespace.derived.xsd";
const std::string kXsd9990 = kSchemaDir + "/rfc9990-dmarc-xml-0.2.xsd";
const std::string kSamples = DMARC_CONFORMANCE_DIR "/aggregate-samples";

// A file in the temporary directory, removed when it goes.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    std::string templ = (fs::temp_directory_path() / "dmarc-xml-test-XXXXXX.xml").string();
    int fd = mkstemps(templ.data(), 4);
    REQUIRE(fd >= 0);
    path_ = templ;
    std::size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;  // exit status, -1 when it did not exit
  std::string out;  // stdout and stderr
};

// run - ARGV without a shell (no quoting), its output captured.
RunResult run(const std::vector<std::string>& argv) {
  RunResult r;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  } else {
    r.out = "cannot run " + argv[0];
  }
  ::close(fds[0]);
  return r;
}

// xmllint - validate XML against XSD; exit status 0 when valid.
RunResult xmllint(const std::string& xml, const std::string& xsd) {
  TempFile f(xml);
  return run({"xmllint", "--noout", "--schema", xsd, f.path()});
}

// xpath - the value of an XPath expression over XML, by xmllint.
std::string xpath(const std::string& xml, const std::string& expr) {
  TempFile f(xml);
  RunResult r = run({"xmllint", "--xpath", expr, f.path()});
  while (!r.out.empty() && (r.out.back() == '\n')) r.out.pop_back();
  return r.out;
}

// A path of local names ("feedback/record/row") as XPath, namespace-free.
std::string lpath(const std::string& path) {
  std::string out;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    std::string pred;
    if (auto b = part.find('['); b != std::string::npos) {
      pred = part.substr(b);
      part.resize(b);
    }
    out += "/*[local-name()=\"" + part + "\"]" + pred;
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

PolicyOverride ov(OverrideReason r, std::string comment) {
  PolicyOverride o;
  o.reason = r;
  o.comment = std::move(comment);
  return o;
}

AggregateRecord rec(std::string ip, std::uint64_t count) {
  AggregateRecord r;
  r.source_ip = std::move(ip);
  r.count = count;
  r.header_from = "example.com";
  r.envelope_from = "example.com";
  return r;
}

// A report with every case the formats treat differently.
AggregateReport sample_report(bool sp_np_published) {
  AggregateReport rep;
  rep.meta.org_name = "mx.example.net";
  rep.meta.email = "dmarc-reports@example.net";
  rep.meta.extra_contact_info = "https://example.net/dmarc";
  rep.meta.report_id = "b3f1c0de@example.net";
  rep.meta.period = day_period(19700);
  rep.policy.domain = "example.com";
  rep.policy.p = Policy::Reject;
  if (sp_np_published) {
    rep.policy.sp = Policy::Quarantine;
    rep.policy.np = Policy::None;
    rep.policy.t = true;
    rep.policy.discovery = DiscoveryMethod::Psl;
    rep.policy.pct = 50;
  }
  rep.policy.adkim = AlignmentMode::Strict;
  rep.policy.fo = "d:s";

  // 1: an aligned pass, envelope_to present.
  AggregateRecord a = rec("192.0.2.1", 10);
  a.envelope_to = "example.org";
  a.result = DmarcResult::Pass;
  a.dkim_alignment = Alignment::Pass;
  a.spf_alignment = Alignment::Pass;
  a.dkim = {{"example.com", "s1", AuthResult::Pass}};
  a.spf = SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Pass};
  rep.records.push_back(a);

  // 2: a failure rejected, two DKIM results (fail, temperror).
  AggregateRecord b = rec("198.51.100.7", 3);
  b.envelope_from = "spoof.example";
  b.result = DmarcResult::Fail;
  b.requested = b.disposition = Disposition::Reject;
  b.dkim_alignment = Alignment::Fail;
  b.spf_alignment = Alignment::Fail;
  b.dkim = {{"example.com", "s1", AuthResult::Fail}, {"other.example", "sel2", AuthResult::TempError}};
  b.spf = SpfAuthResult{"spoof.example", SpfScope::MailFrom, AuthResult::SoftFail};
  rep.records.push_back(b);

  // 3: quarantined in test mode (IPv6 source), RFC 9990's policy_test_mode.
  AggregateRecord c = rec("2001:db8::25", 2);
  c.result = DmarcResult::Fail;
  c.requested = c.disposition = Disposition::Quarantine;
  c.dkim_alignment = Alignment::None;
  c.spf_alignment = Alignment::Fail;
  c.overrides = {ov(OverrideReason::PolicyTestMode, "t=y: reject lowered to quarantine")};
  c.spf = SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Fail};
  rep.records.push_back(c);

  // 4: every other override, with and without comments; applied none.
  AggregateRecord d = rec("203.0.113.5", 7);
  d.result = DmarcResult::Fail;
  d.requested = Disposition::Reject;
  d.disposition = Disposition::None;
  d.dkim_alignment = Alignment::Fail;
  d.spf_alignment = Alignment::Fail;
  d.overrides = {ov(OverrideReason::TrustedForwarder, "relay.example.org"), ov(OverrideReason::MailingList, ""),
                 ov(OverrideReason::Forwarded, "arc"),          ov(OverrideReason::SampledOut, ""),
                 ov(OverrideReason::LocalPolicy, "allowlist"),  ov(OverrideReason::Other, "why not")};
  d.dkim = {{"lists.example.org", "l1", AuthResult::Pass}};
  d.spf = SpfAuthResult{"lists.example.org", SpfScope::MailFrom, AuthResult::Pass};
  rep.records.push_back(d);

  // 5: null sender, no SPF result, a DKIM softfail without selector.
  AggregateRecord e = rec("2001:db8:1::abcd", 1);
  e.envelope_from = "";
  e.result = DmarcResult::Fail;
  e.requested = e.disposition = Disposition::Reject;
  e.dkim_alignment = Alignment::Fail;
  e.spf_alignment = Alignment::None;
  e.dkim = {{"example.com", "", AuthResult::SoftFail}};
  rep.records.push_back(e);

  // 6: SPF on HELO (null sender), IPv4-mapped source, huge count.
  AggregateRecord f = rec("::ffff:192.0.2.200", UINT64_MAX);
  f.envelope_from = "";
  f.result = DmarcResult::Fail;
  f.requested = f.disposition = Disposition::Reject;
  f.dkim_alignment = Alignment::None;
  f.spf_alignment = Alignment::Fail;
  f.spf = SpfAuthResult{"mx.example.org", SpfScope::Helo, AuthResult::Pass};
  rep.records.push_back(f);

  // 7: the "policy" results (DKIM has it in both formats, SPF in 9990).
  AggregateRecord g = rec("192.0.2.99", 4);
  g.result = DmarcResult::Fail;
  g.requested = g.disposition = Disposition::Reject;
  g.dkim_alignment = Alignment::Fail;
  g.spf_alignment = Alignment::Fail;
  g.dkim = {{"example.com", "weak", AuthResult::Policy}};
  g.spf = SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Policy};
  rep.records.push_back(g);

  for (auto& r : rep.records) {
    r.policy = rep.policy;
    r.day = 19700;
  }
  return rep;
}

std::string make(const AggregateReport& r, ReportFormat f) {
  auto x = aggregate_xml(r, f);
  INFO((x ? std::string() : x.error()));
  REQUIRE(x);
  return x.value();
}

const AggregateRecord* find(const AggregateReport& r, const std::string& ip) {
  for (const auto& x : r.records)
    if (x.source_ip == ip) return &x;
  return nullptr;
}

// What a result becomes in FORMAT (see aggregate_xml.hpp).
AuthResult dkim_as_written(AuthResult r) { return r == AuthResult::SoftFail ? AuthResult::Fail : r; }
AuthResult spf_as_written(AuthResult r, ReportFormat f) {
  return (r == AuthResult::Policy && f == ReportFormat::Rfc7489) ? AuthResult::Neutral : r;
}
std::string ip_as_read(const std::string& ip) { return ip == "::ffff:192.0.2.200" ? "192.0.2.200" : ip; }

void check_round_trip(const AggregateReport& in, const AggregateReport& out, ReportFormat f) {
  CHECK(out.meta.org_name == in.meta.org_name);
  CHECK(out.meta.email == in.meta.email);
  CHECK(out.meta.extra_contact_info == in.meta.extra_contact_info);
  CHECK(out.meta.report_id == in.meta.report_id);
  CHECK(out.meta.period == in.meta.period);
  CHECK(out.policy.domain == in.policy.domain);
  CHECK(out.policy.p == in.policy.p);
  CHECK(out.policy.adkim == in.policy.adkim);
  CHECK(out.policy.aspf == in.policy.aspf);
  CHECK(out.policy.fo == in.policy.fo);
  CHECK(out.policy.sp == in.policy.sp.value_or(in.policy.p));  // written as its default value
  if (f == ReportFormat::Rfc9990) {
    CHECK(out.policy.np == in.policy.np.value_or(in.policy.sp.value_or(in.policy.p)));
    CHECK(out.policy.t == in.policy.t);
    CHECK(out.policy.discovery == in.policy.discovery);
  } else {
    CHECK(!out.policy.np);
    CHECK(out.policy.pct == in.policy.pct);
  }
  REQUIRE(out.records.size() == in.records.size());
  for (const auto& r : in.records) {
    INFO("source_ip " << r.source_ip);
    const AggregateRecord* p = find(out, ip_as_read(r.source_ip));
    REQUIRE(p);
    CHECK(p->count == r.count);
    CHECK(p->disposition == r.disposition);
    CHECK(p->result == r.result);
    CHECK(p->dkim_alignment == (r.dkim_alignment == Alignment::Pass ? Alignment::Pass : Alignment::Fail));
    CHECK(p->spf_alignment == (r.spf_alignment == Alignment::Pass ? Alignment::Pass : Alignment::Fail));
    CHECK(p->header_from == r.header_from);
    CHECK(p->envelope_from == r.envelope_from);
    CHECK(p->envelope_to == r.envelope_to);
    CHECK(p->policy.domain == in.policy.domain);
    CHECK(p->day == in.meta.period.first_day());
    REQUIRE(p->overrides.size() == r.overrides.size());
    for (std::size_t i = 0; i < r.overrides.size(); ++i) {
      CHECK(p->overrides[i].reason == r.overrides[i].reason);
      CHECK(p->overrides[i].comment == r.overrides[i].comment);
    }
    REQUIRE(p->dkim.size() == r.dkim.size());
    for (std::size_t i = 0; i < r.dkim.size(); ++i) {
      CHECK(p->dkim[i].domain == r.dkim[i].domain);
      CHECK(p->dkim[i].selector == r.dkim[i].selector);
      CHECK(p->dkim[i].result == dkim_as_written(r.dkim[i].result));
    }
    if (r.spf) {
      REQUIRE(p->spf);
      CHECK(p->spf->domain == r.spf->domain);
      CHECK(p->spf->scope == r.spf->scope);
      CHECK(p->spf->result == spf_as_written(r.spf->result, f));
    } else if (f == ReportFormat::Rfc7489) {
      // The stand-in RFC 7489 needs: the MAIL FROM (or From) domain, none.
      REQUIRE(p->spf);
      CHECK(p->spf->domain == (r.envelope_from.empty() ? r.header_from : r.envelope_from));
      CHECK(p->spf->scope == SpfScope::MailFrom);
      CHECK(p->spf->result == AuthResult::None);
    } else {
      CHECK(!p->spf);
    }
  }
}

}  // namespace

TEST_CASE("aggregate_xml: an RFC 7489 report is valid against the Appendix C schema", "[xml]") {
  for (bool published : {false, true}) {
    INFO("sp/np published: " << published);
    const AggregateReport rep = sample_report(published);
    const std::string xml = make(rep, ReportFormat::Rfc7489);
    RunResult v = xmllint(xml, kXsd7489);
    INFO(v.out);
    REQUIRE(v.status == 0);
    // What the schema does not pin down, checked by XPath (xmllint).
    CHECK(xpath(xml, "namespace-uri(/*)") == "");
    CHECK(xpath(xml, "string(/feedback/version)") == "1.0");
    CHECK(xpath(xml, "count(/feedback/record)") == "7");
    CHECK(xpath(xml, "string(/feedback/policy_published/sp)") == (published ? "quarantine" : "reject"));
    CHECK(xpath(xml, "count(/feedback/policy_published/np)") == "0");
    CHECK(xpath(xml, "string(/feedback/policy_published/pct)") == (published ? "50" : "100"));
    CHECK(xpath(xml, "string(/feedback/policy_published/fo)") == "d:s");
    CHECK(xpath(xml, "string(/feedback/record[3]/row/source_ip)") == "2001:db8:0:0:0:0:0:25");
    CHECK(xpath(xml, "string(/feedback/record[6]/row/source_ip)") == "192.0.2.200");
    CHECK(xpath(xml, "string(/feedback/record[6]/row/count)") == "18446744073709551615");
    CHECK(xpath(xml, "string(/feedback/record[1]/row/policy_evaluated/disposition)") == "none");
    CHECK(xpath(xml, "string(/feedback/record[2]/row/policy_evaluated/disposition)") == "reject");
    CHECK(xpath(xml, "string(/feedback/record[3]/row/policy_evaluated/dkim)") == "fail");  // None -> fail
    CHECK(xpath(xml, "string(/feedback/record[3]/row/policy_evaluated/reason/type)") == "other");
    CHECK(xpath(xml, "string(/feedback/record[3]/row/policy_evaluated/reason/comment)") ==
          "policy_test_mode: t=y: reject lowered to quarantine");
    CHECK(xpath(xml, "string(/feedback/record[4]/row/policy_evaluated/reason[3]/type)") == "forwarded");
    CHECK(xpath(xml, "count(/feedback/record[4]/row/policy_evaluated/reason[2]/comment)") == "0");
    CHECK(xpath(xml, "count(/feedback/record[1]/identifiers/envelope_to)") == "1");
    CHECK(xpath(xml, "count(/feedback/record[2]/identifiers/envelope_to)") == "0");
    CHECK(xpath(xml, "count(/feedback/record[5]/identifiers/envelope_from)") == "1");
    CHECK(xpath(xml, "string(/feedback/record[5]/identifiers/envelope_from)") == "");
    CHECK(xpath(xml, "count(/feedback/record[5]/auth_results/dkim/selector)") == "0");
    CHECK(xpath(xml, "string(/feedback/record[5]/auth_results/dkim/result)") == "fail");  // softfail
    CHECK(xpath(xml, "string(/feedback/record[5]/auth_results/spf/domain)") == "example.com");
    CHECK(xpath(xml, "string(/feedback/record[5]/auth_results/spf/scope)") == "mfrom");
    CHECK(xpath(xml, "string(/feedback/record[5]/auth_results/spf/result)") == "none");
    CHECK(xpath(xml, "string(/feedback/record[6]/auth_results/spf/scope)") == "helo");
    CHECK(xpath(xml, "string(/feedback/record[7]/auth_results/dkim/result)") == "policy");
    CHECK(xpath(xml, "string(/feedback/record[7]/auth_results/spf/result)") == "neutral");
  }
}

TEST_CASE("aggregate_xml: an RFC 9990 report is valid against the RFC 9990 schema", "[xml]") {
  for (bool published : {false, true}) {
    INFO("sp/np published: " << published);
    const AggregateReport rep = sample_report(published);
    const std::string xml = make(rep, ReportFormat::Rfc9990);
    RunResult v = xmllint(xml, kXsd9990);
    INFO(v.out);
    REQUIRE(v.status == 0);
    CHECK(xpath(xml, "namespace-uri(/*)") == "urn:ietf:params:xml:ns:dmarc-2.0");
    CHECK(xpath(xml, "string(" + lpath("feedback/version") + ")") == "1.0");
    CHECK(xpath(xml, "starts-with(string(" + lpath("feedback/report_metadata/generator") +
                         "), \"dmarc-milter \")") == "true");
    const std::string pp = "feedback/policy_published/";
    CHECK(xpath(xml, "string(" + lpath(pp + "sp") + ")") == (published ? "quarantine" : "reject"));
    CHECK(xpath(xml, "string(" + lpath(pp + "np") + ")") == (published ? "none" : "reject"));
    CHECK(xpath(xml, "string(" + lpath(pp + "testing") + ")") == (published ? "y" : "n"));
    CHECK(xpath(xml, "string(" + lpath(pp + "discovery_method") + ")") == (published ? "psl" : "treewalk"));
    CHECK(xpath(xml, "count(" + lpath(pp + "pct") + ")") == "0");
    const std::string r = "feedback/record";
    CHECK(xpath(xml, "string(" + lpath(r + "[1]/row/policy_evaluated/disposition") + ")") == "pass");
    CHECK(xpath(xml, "string(" + lpath(r + "[4]/row/policy_evaluated/disposition") + ")") == "none");
    CHECK(xpath(xml, "string(" + lpath(r + "[3]/row/source_ip") + ")") == "2001:db8::25");
    CHECK(xpath(xml, "string(" + lpath(r + "[3]/row/policy_evaluated/reason/type") + ")") == "policy_test_mode");
    CHECK(xpath(xml, "string(" + lpath(r + "[4]/row/policy_evaluated/reason[3]/type") + ")") == "other");
    CHECK(xpath(xml, "string(" + lpath(r + "[4]/row/policy_evaluated/reason[3]/comment") + ")") ==
          "forwarded: arc");
    CHECK(xpath(xml, "string(" + lpath(r + "[4]/row/policy_evaluated/reason[4]/comment") + ")") == "sampled_out");
    CHECK(xpath(xml, "count(" + lpath(r + "[5]/auth_results/dkim/selector") + ")") == "1");
    CHECK(xpath(xml, "count(" + lpath(r + "[5]/auth_results/spf") + ")") == "0");
    CHECK(xpath(xml, "count(" + lpath(r + "[5]/identifiers/envelope_from") + ")") == "1");
    CHECK(xpath(xml, "count(" + lpath(r + "[6]/auth_results/spf/scope") + ")") == "0");
    CHECK(xpath(xml, "string(" + lpath(r + "[6]/auth_results/spf/human_result") + ")") == "scope: helo");
    CHECK(xpath(xml, "string(" + lpath(r + "[7]/auth_results/spf/result") + ")") == "policy");
  }
}

TEST_CASE("aggregate_xml: xmllint does reject broken documents (the checks are not vacuous)", "[xml]") {
  const AggregateReport rep = sample_report(false);
  const std::string x7 = make(rep, ReportFormat::Rfc7489);
  const std::string x9 = make(rep, ReportFormat::Rfc9990);
  REQUIRE(xmllint(x7, kXsd7489).status == 0);
  auto replaced = [](std::string s, const std::string& from, const std::string& to) {
    auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  // Each format against the other's schema.
  CHECK(xmllint(x7, kXsd9990).status != 0);
  CHECK(xmllint(x9, kXsd7489).status != 0);
  // Without the version RFC 7489 requires.
  CHECK(xmllint(replaced(x7, "<version>1.0</version>", ""), kXsd7489).status != 0);
  // A compressed IPv6 address does not match RFC 7489's IPAddress.
  CHECK(xmllint(replaced(x7, "2001:db8:0:0:0:0:0:25", "2001:db8::25"), kXsd7489).status != 0);
  // "pass" is a disposition in RFC 9990 only.
  CHECK(xmllint(replaced(x7, "<disposition>none</disposition>", "<disposition>pass</disposition>"), kXsd7489)
            .status != 0);
  // policy_test_mode is no RFC 7489 override type.
  CHECK(xmllint(replaced(x7, "<type>other</type>", "<type>policy_test_mode</type>"), kXsd7489).status != 0);
  // Not well-formed at all.
  CHECK(xmllint(replaced(x7, "</feedback>", "</feedbak>"), kXsd7489).status != 0);
}

TEST_CASE("aggregate_xml: no record, or no valid source_ip, is refused; a bad one is left out", "[xml]") {
  AggregateReport rep = sample_report(false);
  AggregateReport empty = rep;
  empty.records.clear();
  for (auto f : {ReportFormat::Rfc7489, ReportFormat::Rfc9990}) {
    CHECK(!aggregate_xml(empty, f));
    AggregateReport bad = rep;
    bad.records.resize(2);
    bad.records[1].source_ip = "not-an-ip<&>\x01";
    auto x = aggregate_xml(bad, f);
    REQUIRE(x);
    CHECK(xmllint(x.value(), f == ReportFormat::Rfc7489 ? kXsd7489 : kXsd9990).status == 0);
    auto back = parse_aggregate_xml(x.value());
    REQUIRE(back);
    REQUIRE(back->records.size() == 1);
    CHECK(back->records[0].source_ip == "192.0.2.1");
    REQUIRE(back->meta.errors.size() == 1);
    CHECK(back->meta.errors[0].find("not-an-ip<&>") != std::string::npos);
    bad.records.erase(bad.records.begin());
    auto none = aggregate_xml(bad, f);
    REQUIRE(!none);
    CHECK(none.error().find("not-an-ip") != std::string::npos);
  }
}

TEST_CASE("aggregate_xml: metadata errors are written (one element each in RFC 7489, joined in RFC 9990)", "[xml]") {
  AggregateReport rep = sample_report(false);
  rep.meta.errors = {"two DMARC records at _dmarc.example.com", "rua: bad URI"};
  rep.meta.generator = "dmarc-milter test";
  const std::string x7 = make(rep, ReportFormat::Rfc7489);
  const std::string x9 = make(rep, ReportFormat::Rfc9990);
  CHECK(xmllint(x7, kXsd7489).status == 0);
  CHECK(xmllint(x9, kXsd9990).status == 0);
  CHECK(xpath(x7, "count(/feedback/report_metadata/error)") == "2");
  CHECK(xpath(x9, "count(" + lpath("feedback/report_metadata/error") + ")") == "1");
  CHECK(xpath(x9, "string(" + lpath("feedback/report_metadata/generator") + ")") == "dmarc-milter test");
  auto b7 = parse_aggregate_xml(x7);
  REQUIRE(b7);
  CHECK(b7->meta.errors == rep.meta.errors);
  auto b9 = parse_aggregate_xml(x9);
  REQUIRE(b9);
  CHECK(b9->meta.errors == std::vector<std::string>{"two DMARC records at _dmarc.example.com; rua: bad URI"});
  CHECK(b9->meta.generator == "dmarc-milter test");
}

TEST_CASE("aggregate_xml: round trip through gzip and parse_aggregate_xml, both formats", "[xml]") {
  for (bool published : {false, true}) {
    for (auto f : {ReportFormat::Rfc7489, ReportFormat::Rfc9990}) {
      INFO("format " << to_token(f) << ", sp/np published " << published);
      const AggregateReport rep = sample_report(published);
      const std::string xml = make(rep, f);
      auto gz = gzip(xml);
      REQUIRE(gz);
      auto plain = gunzip(gz.value());
      REQUIRE(plain);
      REQUIRE(plain.value() == xml);
      auto back = parse_aggregate_xml(plain.value());
      INFO((back ? std::string() : back.error()));
      REQUIRE(back);
      check_round_trip(rep, back.value(), f);
    }
  }
}

TEST_CASE("aggregate_xml: hostile text gives a well-formed, valid document that parses back", "[xml]") {
  AggregateReport rep = sample_report(true);
  const std::string hostile = std::string("ex\x01" "am<&>ple\"']]>\xff\xfe\xc0\xaf\xed\xa0\x80\xef\xbf\xbe") +
                              std::string(1, '\0') + "\x1b[31m\r\t\n&amp;--></comment><!--b\xc3\xbc" "cher.example";
  rep.policy.domain = hostile;
  rep.meta.org_name = hostile;
  rep.meta.report_id = "<id>&\x7f\x85";
  rep.meta.extra_contact_info = "\xe2\x82";  // truncated sequence
  for (auto& r : rep.records) {
    r.header_from = hostile;
    r.envelope_to = r.envelope_to.empty() ? "" : hostile;
    for (auto& o : r.overrides) o.comment = hostile;
    for (auto& d : r.dkim) d.selector = d.selector.empty() ? "" : "<s>\x02";
  }
  rep.records[1].spf->domain = hostile;
  for (auto f : {ReportFormat::Rfc7489, ReportFormat::Rfc9990}) {
    INFO("format " << to_token(f));
    const std::string xml = make(rep, f);
    RunResult v = xmllint(xml, f == ReportFormat::Rfc7489 ? kXsd7489 : kXsd9990);
    INFO(v.out);
    REQUIRE(v.status == 0);
    // Markup in the text stayed text: the tree has exactly the records.
    CHECK(xpath(xml, "count(" + lpath("feedback/record") + ")") == "7");
    CHECK(xpath(xml, "count(//comment())") == "0");
    auto back = parse_aggregate_xml(xml);
    INFO((back ? std::string() : back.error()));
    REQUIRE(back);
    const std::string safe = xml_safe_text(hostile);
    CHECK(back->policy.domain == safe);
    CHECK(back->meta.org_name == safe);
    CHECK(back->meta.report_id == xml_safe_text(rep.meta.report_id));
    CHECK(back->meta.extra_contact_info == "\xEF\xBF\xBD");
    REQUIRE(back->records.size() == rep.records.size());
    for (const auto& r : back->records) {
      CHECK(r.header_from == safe);
      // A name the format lacks is read back to its reason, the comment alone.
      for (const auto& o : r.overrides) CHECK(o.comment == safe);
    }
    const AggregateRecord* b = find(back.value(), "198.51.100.7");
    REQUIRE(b);
    REQUIRE(b->spf);
    CHECK(b->spf->domain == safe);
    CHECK(b->dkim[0].selector == xml_safe_text("<s>\x02"));
  }
}

TEST_CASE("xml_safe_text: invalid UTF-8 and XML-forbidden characters become U+FFFD", "[xml]") {
  const std::string R = "\xEF\xBF\xBD";
  CHECK(xml_safe_text("") == "");
  CHECK(xml_safe_text("example.com") == "example.com");
  CHECK(xml_safe_text("a\tb\nc\rd") == "a\tb\nc\rd");  // XML 1.0 Char
  CHECK(xml_safe_text(std::string("a\0b", 3)) == "a" + R + "b");
  CHECK(xml_safe_text("\x01\x08\x0b\x0c\x1f") == R + R + R + R + R);
  CHECK(xml_safe_text("\x7f") == "\x7f");          // DEL is a Char
  CHECK(xml_safe_text("\xc2\x85") == "\xc2\x85");  // so is NEL (U+0085)
  CHECK(xml_safe_text("b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x98\x80") == "b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(xml_safe_text("\xed\x9f\xbf") == "\xed\x9f\xbf");      // U+D7FF
  CHECK(xml_safe_text("\xee\x80\x80") == "\xee\x80\x80");      // U+E000
  CHECK(xml_safe_text("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf");  // U+10FFFF
  CHECK(xml_safe_text("\xef\xbf\xbe") == R);                   // U+FFFE
  CHECK(xml_safe_text("\xef\xbf\xbf") == R);                   // U+FFFF
  CHECK(xml_safe_text("\xed\xa0\x80") == R + R + R);           // a surrogate: ED then two lone continuations
  CHECK(xml_safe_text("\xc0\xaf") == R + R);                   // overlong '/'
  CHECK(xml_safe_text("\xe0\x80\xaf") == R + R + R);           // overlong
  CHECK(xml_safe_text("\xf4\x90\x80\x80") == R + R + R + R);   // over U+10FFFF
  CHECK(xml_safe_text("\xf8\x88\x80\x80\x80") == R + R + R + R + R);
  CHECK(xml_safe_text("\x80x") == R + "x");                    // a lone continuation
  CHECK(xml_safe_text("\xe2\x82") == R);                       // truncated at the end: one
  CHECK(xml_safe_text("\xe2\x82x") == R + "x");                // maximal subpart: one
  CHECK(xml_safe_text("\xf0\x9f\x98x") == R + "x");
  CHECK(xml_safe_text("\xff\xfe") == R + R);
}

TEST_CASE("gzip: round trip, RFC 1952 header, members, damage and bombs", "[xml]") {
  SECTION("round trip") {
    std::string big;
    std::uint32_t s = 12345;
    for (int i = 0; i < 300000; ++i) {
      s = s * 1103515245u + 12345u;
      big += static_cast<char>(s >> 24);
    }
    for (const std::string& data : {std::string(), std::string("hello, report"), big}) {
      auto gz = gzip(data);
      REQUIRE(gz);
      REQUIRE(gz->size() >= 18);
      CHECK(static_cast<unsigned char>((*gz)[0]) == 0x1f);  // RFC 1952 2.3.1 ID1 ID2 CM
      CHECK(static_cast<unsigned char>((*gz)[1]) == 0x8b);
      CHECK(static_cast<unsigned char>((*gz)[2]) == 8);
      auto back = gunzip(gz.value());
      REQUIRE(back);
      CHECK(back.value() == data);
    }
  }
  SECTION("several members are one file (RFC 1952 2.2)") {
    auto a = gzip("first,");
    auto b = gzip("second");
    REQUIRE(a);
    REQUIRE(b);
    auto back = gunzip(a.value() + b.value());
    REQUIRE(back);
    CHECK(back.value() == "first,second");
  }
  SECTION("garbage, truncation, trailing data, a damaged CRC") {
    CHECK(!gunzip(""));
    CHECK(!gunzip("this is not gzip at all"));
    auto gz = gzip(std::string(5000, 'x') + "tail");
    REQUIRE(gz);
    CHECK(!gunzip(gz->substr(0, gz->size() - 5)));
    CHECK(!gunzip(gz->substr(0, 10)));
    CHECK(!gunzip(gz.value() + "junk"));
    std::string bad_crc = gz.value();
    bad_crc[bad_crc.size() - 6] = static_cast<char>(bad_crc[bad_crc.size() - 6] ^ 0x55);
    CHECK(!gunzip(bad_crc));
    std::string zlib_not_gzip = gz.value();
    zlib_not_gzip[0] = 0x78;
    CHECK(!gunzip(zlib_not_gzip));
  }
  SECTION("a bomb over max_out is refused; exactly max_out is not") {
    auto gz = gzip(std::string(16u << 20, '\0'));
    REQUIRE(gz);
    CHECK(gz->size() < (64u << 10));  // a real bomb: over 250 times smaller
    auto refused = gunzip(gz.value(), 1u << 20);
    REQUIRE(!refused);
    CHECK(refused.error().find("over") != std::string::npos);
    auto exact = gunzip(gz.value(), 16u << 20);
    REQUIRE(exact);
    CHECK(exact->size() == (16u << 20));
    CHECK(!gunzip(gz.value(), (16u << 20) - 1));
  }
  SECTION("the default limit is kMaxAggregateXmlSize") {
    auto gz = gzip(std::string(kMaxAggregateXmlSize + 1, ' '));
    REQUIRE(gz);
    CHECK(!gunzip(gz.value()));
  }
  SECTION("the compressed conformance samples") {
    for (const std::string& name : {std::string("/mail-dmarc/test_dmarc.xml"),
                                    std::string("/parsedmarc/extract_report/nice-input.xml")}) {
      INFO(name);
      auto back = gunzip(slurp(kSamples + name + ".gz"));
      REQUIRE(back);
      CHECK(back.value() == slurp(kSamples + name));
    }
  }
}

TEST_CASE("parse_aggregate_xml: the conformance samples, in place", "[xml]") {
  // Known not to be well-formed (INDEX.tsv): refused, never a crash.
  const std::vector<std::string> broken = {
      "/opendmarc/bad.com!example.com!1337140800!1337227200.xml",
      "/parsedmarc/aggregate/ikea.com!example.de!1538690400!1538776800.xml",
      "/parsedmarc/aggregate/invalid_utf_8.xml",
      "/parsedmarc/aggregate/invalid_xml.xml",
      "/parsedmarc/empty.xml",
  };
  std::vector<std::string> files;
  for (const char* dir : {"/opendmarc", "/mail-dmarc", "/parsedmarc", "/stalwart-mail-auth"}) {
    for (const auto& e : fs::recursive_directory_iterator(kSamples + dir)) {
      if (e.is_regular_file() && e.path().extension() == ".xml") files.push_back(e.path().string());
    }
  }
  files.push_back(kSchemaDir + "/rfc9990-example-report.xml");
  files.push_back(kSchemaDir + "/rfc9990-example-report-alt.xml");
  REQUIRE(files.size() >= 30);
  std::size_t parsed = 0;
  for (const auto& path : files) {
    INFO(path);
    const std::string xml = slurp(path);
    auto r = parse_aggregate_xml(xml);
    bool is_broken = false;
    for (const auto& b : broken) is_broken |= path == kSamples + b;
    if (is_broken) {
      CHECK(!r);
      continue;
    }
    INFO((r ? std::string() : r.error()));
    REQUIRE(r);
    ++parsed;
    // xmllint's XPath as the oracle: the records and the messages counted.
    CHECK(std::to_string(r->records.size()) == xpath(xml, "count(" + lpath("feedback/record") + ")"));
    std::uint64_t sum = 0;
    for (const auto& x : r->records) sum += x.count;
    CHECK(std::to_string(sum) == xpath(xml, "sum(" + lpath("feedback/record/row/count") + ")"));
  }
  CHECK(parsed + broken.size() == files.size());

  SECTION("known content") {
    auto good = parse_aggregate_xml(slurp(kSamples + "/opendmarc/good.com!example.com!1337270400!1337356799.xml"));
    REQUIRE(good);
    CHECK(good->records.size() == 754);
    CHECK(good->meta.org_name == "126.com");
    auto large =
        parse_aggregate_xml(slurp(kSamples + "/parsedmarc/aggregate/!large-example.com!1711897200!1711983600.xml"));
    REQUIRE(large);
    CHECK(large->records.size() == 2286);
    CHECK(large->meta.org_name == "");

    auto s9990 = parse_aggregate_xml(slurp(kSamples + "/parsedmarc/aggregate/rfc9990-sample.xml"));
    REQUIRE(s9990);
    CHECK(s9990->meta.generator == "Example DMARC Aggregate Reporter v1.2");
    CHECK(s9990->policy.p == Policy::Quarantine);
    CHECK(s9990->policy.np == Policy::None);
    CHECK(!s9990->policy.t);
    REQUIRE(s9990->records.size() == 1);
    const auto& r = s9990->records[0];
    CHECK(r.source_ip == "192.0.2.123");
    CHECK(r.count == 123);
    CHECK(r.result == DmarcResult::Pass);  // disposition pass
    CHECK(r.disposition == Disposition::None);
    CHECK(r.dkim_alignment == Alignment::Pass);
    CHECK(r.spf_alignment == Alignment::Fail);
    REQUIRE(r.dkim.size() == 1);
    CHECK(r.dkim[0].selector == "abc123");
    REQUIRE(r.spf);
    CHECK(r.spf->result == AuthResult::Fail);

    auto legacy = parse_aggregate_xml(slurp(kSamples + "/stalwart-mail-auth/005.xml"));
    REQUIRE(legacy);
    REQUIRE(legacy->records.size() == 1);
    CHECK(legacy->records[0].disposition == Disposition::Quarantine);
    REQUIRE(legacy->records[0].overrides.size() == 1);
    CHECK(legacy->records[0].overrides[0].reason == OverrideReason::SampledOut);
    CHECK(legacy->records[0].overrides[0].comment == "legacy sampling");
    REQUIRE(legacy->records[0].spf);
    CHECK(legacy->records[0].spf->scope == SpfScope::Helo);

    auto upper = parse_aggregate_xml(slurp(kSamples + "/parsedmarc/aggregate_invalid/report_with_upper_cased_pass.xml"));
    REQUIRE(upper);
    REQUIRE(upper->records.size() == 1);
    CHECK(upper->records[0].result == DmarcResult::Pass);

    auto empty_reason = parse_aggregate_xml(slurp(kSamples + "/parsedmarc/aggregate/empty_reason.xml"));
    REQUIRE(empty_reason);
    REQUIRE(empty_reason->records.size() == 1);
    REQUIRE(empty_reason->records[0].overrides.size() == 1);
    CHECK(empty_reason->records[0].overrides[0].reason == OverrideReason::Other);
    CHECK(empty_reason->records[0].envelope_to == "example.net");
  }
}

TEST_CASE("parse_aggregate_xml: lenient about structure and case, strict about values", "[xml]") {
  const std::string doc = R"(<?xml version="1.0"?>
<d:feedback xmlns:d="http://dmarc.org/dmarc-xml/0.1" xmlns:x="urn:example:ext">
 <d:report_metadata><d:org_name>Yahoo! Inc.	</d:org_name><d:email>a@b</d:email>
  <d:report_id>1</d:report_id><x:junk>ignored</x:junk>
  <d:date_range><d:begin>1700000000</d:begin><d:end>1700086399	</d:end></d:date_range></d:report_metadata>
 <d:policy_published><d:domain>example.com</d:domain><d:p>REJECT</d:p><d:adkim>S</d:adkim><d:pct>100</d:pct></d:policy_published>
 <x:extension><x:record>not a record</x:record></x:extension>
 <d:record><d:row><d:source_ip>2001:DB8:0:0:0:0:0:1	</d:source_ip><d:count>4</d:count>
  <d:policy_evaluated><d:disposition>Quarantine</d:disposition><d:dkim>FAIL</d:dkim><d:spf>fail</d:spf></d:policy_evaluated></d:row>
  <d:identifiers><d:header_from>example.com</d:header_from></d:identifiers>
  <d:auth_results><d:spf><d:domain>h.example</d:domain><d:scope>helo</d:scope><d:result>softfail</d:result></d:spf>
   <d:spf><d:domain>example.com</d:domain><d:result>Unknown</d:result></d:spf></d:auth_results>
  <x:more/></d:record>
</d:feedback>)";
  auto r = parse_aggregate_xml(doc);
  INFO((r ? std::string() : r.error()));
  REQUIRE(r);
  CHECK(r->meta.org_name == "Yahoo! Inc.");
  CHECK(r->meta.period.end == 1700086399);
  CHECK(r->policy.p == Policy::Reject);
  CHECK(r->policy.adkim == AlignmentMode::Strict);
  // <x:record> inside <extension> is not a record of the report.
  REQUIRE(r->records.size() == 1);
  const auto& x = r->records[0];
  CHECK(x.source_ip == "2001:db8::1");
  CHECK(x.disposition == Disposition::Quarantine);
  CHECK(x.result == DmarcResult::Fail);
  REQUIRE(x.spf);  // the mfrom result is preferred over helo
  CHECK(x.spf->domain == "example.com");
  CHECK(x.spf->result == AuthResult::TempError);
  CHECK(x.envelope_from == "");

  auto with = [&](const std::string& from, const std::string& to) {
    std::string d = doc;
    d.replace(d.find(from), from.size(), to);
    return parse_aggregate_xml(d);
  };
  auto bad_count = with("<d:count>4</d:count>", "<d:count>four</d:count>");
  REQUIRE(!bad_count);
  CHECK(bad_count.error().find("record 1") != std::string::npos);
  auto zero_fraction = with("<d:count>4</d:count>", "<d:count>4.0</d:count>");  // as NetEase writes dates
  REQUIRE(zero_fraction);
  CHECK(zero_fraction->records[0].count == 4);
  CHECK(!with("<d:count>4</d:count>", "<d:count>4.5</d:count>"));
  CHECK(!with("<d:count>4</d:count>", "<d:count>18446744073709551616</d:count>"));  // 2^64
  CHECK(!with("<d:disposition>Quarantine</d:disposition>", "<d:disposition>maybe</d:disposition>"));
  CHECK(!with("<d:count>4</d:count>", ""));
  CHECK(!with("<d:result>softfail</d:result>", "<d:result>great</d:result>"));
  CHECK(!with("d:feedback xmlns", "d:feedbag xmlns"));
  CHECK(!parse_aggregate_xml("<feedback><report_metadata/>"));
}

TEST_CASE("parse_aggregate_xml: DOCTYPE, entities and size are refused (XXE, billion laughs)", "[xml]") {
  const std::string body =
      "<feedback><report_metadata><org_name>&x;</org_name><email>e</email><report_id>1</report_id>"
      "<date_range><begin>1</begin><end>2</end></date_range></report_metadata>"
      "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
      "<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated>"
      "<disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>"
      "<identifiers><header_from>&x;</header_from></identifiers><auth_results/></record></feedback>";
  auto no_passwd = [](const Expected<AggregateReport, std::string>& r) {
    if (!r) return r.error().find("root:") == std::string::npos;
    if (r->meta.org_name.find("root:") != std::string::npos) return false;
    for (const auto& x : r->records)
      if (x.header_from.find("root:") != std::string::npos) return false;
    return true;
  };
  SECTION("an external entity (file:///etc/passwd)") {
    auto r = parse_aggregate_xml("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n" +
                                 body);
    CHECK(no_passwd(r));
    REQUIRE(!r);
    CHECK(r.error().find("DOCTYPE") != std::string::npos);
  }
  SECTION("a parameter entity and an external DTD") {
    CHECK(!parse_aggregate_xml("<!DOCTYPE feedback [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>" + body));
    CHECK(!parse_aggregate_xml("<!DOCTYPE feedback SYSTEM \"http://127.0.0.1:9/x.dtd\">" + body));
  }
  SECTION("billion laughs is refused quickly") {
    std::string dtd = "<!DOCTYPE feedback [<!ENTITY x0 \"ha\">";
    for (int i = 1; i <= 10; ++i) {
      dtd += "<!ENTITY x" + std::to_string(i) + " \"";
      for (int j = 0; j < 10; ++j) dtd += "&x" + std::to_string(i - 1) + ";";
      dtd += "\">";
    }
    dtd += "<!ENTITY x \"&x10;\">]>";
    const auto t0 = std::chrono::steady_clock::now();
    auto r = parse_aggregate_xml(dtd + body);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    CHECK(!r);
    CHECK(ms.count() < 1000);
  }
  SECTION("an undeclared entity is not well-formed") {
    auto r = parse_aggregate_xml(body);
    CHECK(!r);
    CHECK(no_passwd(r));
  }
  SECTION("over kMaxAggregateXmlSize") {
    std::string big = body;
    big.resize(kMaxAggregateXmlSize + 1, ' ');
    auto r = parse_aggregate_xml(big);
    REQUIRE(!r);
    CHECK(r.error().find("limit") != std::string::npos);
  }
}
