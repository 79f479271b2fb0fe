// test_opendmarc_misc.cpp - conformance/dmarc/opendmarc-misc-cases.json
//
// alignment[] (10): OpenDMARC's alignment checks, run through our relaxed /
//   strict rule with PSL organizational domains (RFC 7489 mode).
// org_domain[] (3): PSL organizational domain, against the current list.
// from_header_domain[] (15): author domain from a raw From value; several
//   addresses -> OpenDMARC returns the first, we return all (the milter
//   decides), so the first is compared.
#include "conformance/conformance_util.hpp"
#include "dmarc/adapters/psl_file.hpp"
#include "dmarc/core/domain.hpp"
#include "dmarc/core/from_header.hpp"

using namespace dmarc;
using nlohmann::json;

namespace {
// Inputs OpenDMARC accepts that we deliberately reject.
const std::map<std::string, std::string> kAlignDiffer = {
    {".mac.com.|mac.com",
     "a leading dot makes an invalid domain name (RFC 1035 2.3.1); OpenDMARC strips it, we never align an "
     "invalid From domain"},
    {"....mac.com....|mac.com", "as above: empty labels are not a domain name"},
};
const std::map<std::string, std::string> kFromDiffer = {
    {"<<<><joe@joe.com>>>",
     "not RFC 5322: nested angle brackets; OpenDMARC digs an address out, we reject the From (a From two "
     "parsers read differently is how DMARC is bypassed)"},
    {"\"Johnson, Joe <joe@joe.com>\" joe@joe.com",
     "RFC 5322 3.4: a quoted display name must be followed by an angle-addr; a quoted word before a bare "
     "addr-spec is a malformed local-part. Rejected: a MUA may show the quoted text as the sender "
     "(\"Boss <boss@victim.example>\" attacker@evil.example)"},
    {"\"( bob@bob.com)\" joe@joe.com", "as above: quoted text before a bare addr-spec"},
    {"Mail From:<joe@joe.com>",
     "RFC 5322 3.4 reads 'Mail From:' as a group display name, and the group has no closing ';': a syntax "
     "error, rejected"},
};

std::string strip_field_name(std::string raw) {
  // The milter receives the field body; these inputs sometimes carry "From:".
  if (raw.rfind("From:", 0) == 0) raw = raw.substr(5);
  return raw;
}
}  // namespace

TEST_CASE("conformance: opendmarc-misc-cases.json alignment (10)", "[conformance][opendmarc]") {
  auto psl = load_public_suffix_list(test::conformance_path("psl/public_suffix_list.dat"));
  REQUIRE(psl);
  json data = test::load_json("dmarc/opendmarc-misc-cases.json");
  test::Tally t{"dmarc/opendmarc-misc-cases.json alignment"};
  for (const auto& c : data["alignment"]) {
    ++t.total;
    std::string from = c["from_domain"], id = c["identifier_domain"];
    bool strict = c["mode"] == "strict";
    auto f = normalize_domain(from);
    auto i = normalize_domain(id);
    bool aligned = false;
    if (f && i) {
      aligned = strict ? *f == *i : psl->organizational_domain(*f) == psl->organizational_domain(*i);
    }
    bool want = c["opendmarc_expect"] == "aligned";
    std::string key = from + "|" + id;
    INFO(key << " " << c["mode"]);
    if (auto d = kAlignDiffer.find(key); d != kAlignDiffer.end()) {
      INFO("deliberate difference: " << d->second);
      CHECK(aligned != want);
      ++t.differ;
      continue;
    }
    CHECK(aligned == want);
    if (aligned == want) ++t.passed;
  }
  CHECK(t.total == 10);
  t.report();
}

TEST_CASE("conformance: opendmarc-misc-cases.json org_domain (3)", "[conformance][opendmarc]") {
  auto psl = load_public_suffix_list(test::conformance_path("psl/public_suffix_list.dat"));
  REQUIRE(psl);
  json data = test::load_json("dmarc/opendmarc-misc-cases.json");
  test::Tally t{"dmarc/opendmarc-misc-cases.json org_domain"};
  for (const auto& c : data["org_domain"]) {
    ++t.total;
    auto d = normalize_domain(c["domain"].get<std::string>());
    REQUIRE(d);
    std::string got = psl->organizational_domain(*d);
    INFO(*d);
    CHECK(got == c["expect_org_domain"].get<std::string>());
    if (got == c["expect_org_domain"].get<std::string>()) ++t.passed;
  }
  CHECK(t.total == 3);
  t.report();
}

TEST_CASE("conformance: opendmarc-misc-cases.json from_header_domain (15)", "[conformance][opendmarc]") {
  json data = test::load_json("dmarc/opendmarc-misc-cases.json");
  test::Tally t{"dmarc/opendmarc-misc-cases.json from_header_domain"};
  for (const auto& c : data["from_header_domain"]) {
    ++t.total;
    std::string raw = c["raw"];
    auto parsed = parse_from_header(strip_field_name(raw));
    std::string got = parsed ? parsed->mailboxes.front().domain : std::string("(error: ") +
                                                                      std::string(to_token(parsed.error().code)) + ")";
    bool ok = got == c["expect_domain"].get<std::string>();
    INFO(raw << " -> " << got);
    if (auto d = kFromDiffer.find(raw); d != kFromDiffer.end()) {
      INFO("deliberate difference: " << d->second);
      CHECK_FALSE(parsed.has_value());
      ++t.differ;
      continue;
    }
    CHECK(ok);
    if (ok) ++t.passed;
  }
  CHECK(t.total == 15);
  t.report();
}
