// test_from_header.cpp - From field parser (RFC 5322 3.4/3.6.2/4.4, RFC 6854, RFC 2047, RFC 6532)
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "dmarc/core/from_header.hpp"

using namespace dmarc;
using namespace std::string_literals;

namespace {

struct Want {
  std::string display_name;
  std::string local_part;
  std::string domain;
};

struct OkCase {
  std::string in;
  std::vector<Want> want;
};

struct ErrCase {
  std::string in;
  FromErrorCode code;
  std::optional<std::size_t> offset;  // checked when given
};

// check_ok - parse IN and compare every mailbox.
void check_ok(const OkCase& c) {
  CAPTURE(c.in);
  auto r = parse_from_header(c.in);
  if (!r) {
    INFO("error " << to_token(r.error().code) << " at " << r.error().offset);
    FAIL_CHECK("expected a successful parse");
    return;
  }
  REQUIRE(r->mailboxes.size() == c.want.size());
  for (std::size_t i = 0; i < c.want.size(); ++i) {
    CAPTURE(i);
    CHECK(r->mailboxes[i].display_name == c.want[i].display_name);
    CHECK(r->mailboxes[i].local_part == c.want[i].local_part);
    CHECK(r->mailboxes[i].domain == c.want[i].domain);
  }
}

// check_err - parse IN and compare the error code (and offset).
void check_err(const ErrCase& c) {
  CAPTURE(c.in);
  auto r = parse_from_header(c.in);
  if (r) {
    INFO("parsed " << r->mailboxes.size() << " mailbox(es), first domain " << r->mailboxes.front().domain);
    FAIL_CHECK("expected an error");
    return;
  }
  CHECK(to_token(r.error().code) == to_token(c.code));
  CHECK(r.error().offset <= c.in.size());
  if (c.offset) CHECK(r.error().offset == *c.offset);
}

std::string n_addresses(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += "u" + std::to_string(i) + "@d" + std::to_string(i) + ".example";
  }
  return s;
}

}  // namespace

TEST_CASE("from: to_token names every error code", "[core][from]") {
  CHECK(to_token(FromErrorCode::Empty) == "empty");
  CHECK(to_token(FromErrorCode::EmptyGroup) == "empty_group");
  CHECK(to_token(FromErrorCode::TooLong) == "too_long");
  CHECK(to_token(FromErrorCode::TooManyAddresses) == "too_many_addresses");
  CHECK(to_token(FromErrorCode::UnbalancedQuote) == "unbalanced_quote");
  CHECK(to_token(FromErrorCode::UnbalancedComment) == "unbalanced_comment");
  CHECK(to_token(FromErrorCode::UnbalancedAngle) == "unbalanced_angle");
  CHECK(to_token(FromErrorCode::EmptyListElement) == "empty_list_element");
  CHECK(to_token(FromErrorCode::MissingAt) == "missing_at");
  CHECK(to_token(FromErrorCode::BadLocalPart) == "bad_local_part");
  CHECK(to_token(FromErrorCode::BadDomain) == "bad_domain");
  CHECK(to_token(FromErrorCode::DomainLiteral) == "domain_literal");
  CHECK(to_token(FromErrorCode::TrailingGarbage) == "trailing_garbage");
  CHECK(to_token(FromErrorCode::NulByte) == "nul_byte");
  CHECK(to_token(FromErrorCode::Syntax) == "syntax");
}

TEST_CASE("from: OpenDMARC bypasses are refused or parsed the safe way", "[core][from][regress]") {
  // OpenDMARC issue #342: a stray ">" after a bare addr-spec.
  check_err({"user@example.net>", FromErrorCode::UnbalancedAngle, 16});
  // OpenDMARC #72: an escaped quote inside a quoted display name.
  check_ok({R"("Display \" name" <a@example.com>)", {{R"(Display " name)", "a", "example.com"}}});
  // ... and the variant that would make a naive parser see attacker.example.
  {
    auto r = parse_from_header(R"("evil\"@attacker.example" <a@victim.example>)");
    REQUIRE(r);
    REQUIRE(r->mailboxes.size() == 1);
    CHECK(r->mailboxes[0].display_name == R"(evil"@attacker.example)");
    CHECK(r->mailboxes[0].domain == "victim.example");
    CHECK(r->distinct_domains() == std::vector<std::string>{"victim.example"});
  }
  // CVE-2021-34555: empty list elements crashed OpenDMARC. They are RFC
  // 5322 4.4 obsolete syntax: read, and no mailbox is lost or invented.
  check_ok({"a@example.com,,b@example.org", {{"", "a", "example.com"}, {"", "b", "example.org"}}});
  check_ok({",a@x.example", {{"", "a", "x.example"}}});
  check_ok({"a@x.example,", {{"", "a", "x.example"}}});
  check_err({",", FromErrorCode::Empty, 0});
  check_err({",,,", FromErrorCode::Empty, 0});
  // CVE-2019-16378: several addresses are all returned.
  {
    auto r = parse_from_header("a@example.com, b@example.org");
    REQUIRE(r);
    REQUIRE(r->mailboxes.size() == 2);
    CHECK(r->mailboxes[0].domain == "example.com");
    CHECK(r->mailboxes[1].domain == "example.org");
    CHECK(r->distinct_domains() == std::vector<std::string>{"example.com", "example.org"});
  }
}

TEST_CASE("from: mailboxes that parse (RFC 5322 3.4, 3.4.1)", "[core][from]") {
  const std::vector<OkCase> cases = {
      {"user@example.com", {{"", "user", "example.com"}}},
      {"User@Example.COM", {{"", "User", "example.com"}}},  // local part kept, domain normalised
      {"  user@example.com  ", {{"", "user", "example.com"}}},
      {"user@example.com\t", {{"", "user", "example.com"}}},
      {"<a@example.com>", {{"", "a", "example.com"}}},
      {"John Doe <john@example.com>", {{"John Doe", "john", "example.com"}}},
      {"John   Doe<john@example.com>", {{"John Doe", "john", "example.com"}}},
      {"\"Doe, John\" <john@example.com>", {{"Doe, John", "john", "example.com"}}},
      {"\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", {{"Giant; \"Big\" Box", "sysservices", "example.net"}}},
      {"\"\" <a@example.com>", {{"", "a", "example.com"}}},
      {"\"a\"\"b\" <x@example.com>", {{"ab", "x", "example.com"}}},
      {"John Q. Public <jqp@example.com>", {{"John Q. Public", "jqp", "example.com"}}},  // 4.1 obs-phrase
      {"\"Joe Q. Public\" <john.q.public@example.com>", {{"Joe Q. Public", "john.q.public", "example.com"}}},
      {"first.last@sub.example.com", {{"", "first.last", "sub.example.com"}}},
      {"!#$%&'*+-/=?^_`{|}~@example.com", {{"", "!#$%&'*+-/=?^_`{|}~", "example.com"}}},
      {"\"a b\"@example.com", {{"", "a b", "example.com"}}},
      {"\"a@b\"@example.com", {{"", "a@b", "example.com"}}},
      {"\"a\\\\b\"@example.com", {{"", "a\\b", "example.com"}}},
      {"\"\"@example.com", {{"", "", "example.com"}}},
      {"\"a\".b@example.com", {{"", "a.b", "example.com"}}},  // 4.4 obs-local-part
      {"a . b@example.com", {{"", "a.b", "example.com"}}},    // 4.4 obs-local-part with CFWS
      {"a@example . com", {{"", "a", "example.com"}}},        // 4.4 obs-domain
      {"a@_dmarc.example.com", {{"", "a", "_dmarc.example.com"}}},
      // RFC 6532 3.2: UTF-8 in local part, display name and domain.
      {"Jörg <jörg@bücher.example>", {{"Jörg", "jörg", "xn--bcher-kva.example"}}},
      {"\"Jörg Müller\" <j@example.com>", {{"Jörg Müller", "j", "example.com"}}},
      {"δοκιμή@παράδειγμα.δοκιμή", {{"", "δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp"}}},
      {"用户@例子.广告", {{"", "用户", "xn--fsqu00a.xn--4rr70v"}}},
  };
  for (const auto& c : cases) check_ok(c);
}

TEST_CASE("from: comments and folding white space (RFC 5322 3.2.2, 4.2)", "[core][from]") {
  const std::vector<OkCase> cases = {
      {"(comment) a(c2)@(c3)example.com (c4)", {{"", "a", "example.com"}}},
      {"a@example.com (nested (comment \\) with) quoted-pair)", {{"", "a", "example.com"}}},
      {"a@example.com (\\(\\))", {{"", "a", "example.com"}}},
      {"a@example.com (ünïcödé)", {{"", "a", "example.com"}}},
      // RFC 5322 A.5
      {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", {{"Pete", "pete", "silly.test"}}},
      {"Chris Jones <c@(Chris's host.)public.example>", {{"Chris Jones", "c", "public.example"}}},
      // RFC 5322 A.6.3: obs-domain with a comment and FWS around the dot.
      {"John Doe <jdoe@machine(comment).  example>", {{"John Doe", "jdoe", "machine.example"}}},
      {"Mary Smith\r\n  \r\n <mary@example.net>", {{"Mary Smith", "mary", "example.net"}}},  // obs-FWS
      {"Foo\r\n Bar <a@b.example>", {{"Foo Bar", "a", "b.example"}}},
      {"Foo\n\tBar <a@b.example>", {{"Foo Bar", "a", "b.example"}}},  // LF-only fold, as milters deliver
      {"a@b.example,\r\n c@d.example", {{"", "a", "b.example"}, {"", "c", "d.example"}}},
      {"\"fold\r\n ed\" <a@b.example>", {{"fold ed", "a", "b.example"}}},  // 3.2.4: the CRLF is invisible
      {"(a\r\n b) x@b.example", {{"", "x", "b.example"}}},
      {"a@b.example\r\n", {{"", "a", "b.example"}}},  // a line break ending the field
      {"a@b.example\n", {{"", "a", "b.example"}}},
  };
  for (const auto& c : cases) check_ok(c);
  // 64 nested comments are fine; a 65th level is refused.
  check_ok({"a@b.example " + std::string(64, '(') + std::string(64, ')'), {{"", "a", "b.example"}}});
  check_ok({"a@b.example " + std::string(2000, '(') + std::string(2000, ')'), {{"", "a", "b.example"}}});
}

TEST_CASE("from: groups (RFC 5322 3.4, RFC 6854)", "[core][from]") {
  const std::vector<OkCase> cases = {
      {"undisclosed-recipients: a@b.example, c@d.example;", {{"", "a", "b.example"}, {"", "c", "d.example"}}},
      {"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
       {{"Ed Jones", "c", "a.test"}, {"", "joe", "where.test"}, {"John", "jdoe", "one.test"}}},
      {"x:;, a@b.example", {{"", "a", "b.example"}}},  // an empty group contributes nothing
      {"a@b.example, x: ;", {{"", "a", "b.example"}}},
      {"x:(c);, a@b.example", {{"", "a", "b.example"}}},  // group-list = CFWS
      {"\"My Group\": a@b.example; (trailing comment)", {{"", "a", "b.example"}}},
      {"g1: a@b.example;, g2: c@d.example;", {{"", "a", "b.example"}, {"", "c", "d.example"}}},
      // RFC 5322 4.4 obs-mbox-list inside a group.
      {"g: ,a@b.example;", {{"", "a", "b.example"}}},
      {"g: a@b.example,;", {{"", "a", "b.example"}}},
      {"g: a@b.example,,c@d.example;", {{"", "a", "b.example"}, {"", "c", "d.example"}}},
  };
  for (const auto& c : cases) check_ok(c);
  const std::vector<ErrCase> errs = {
      {"x:;", FromErrorCode::EmptyGroup, std::nullopt},  // no mailbox at all
      {"Undisclosed recipients:;", FromErrorCode::EmptyGroup, std::nullopt},
      {"g: a@b.example", FromErrorCode::Syntax, 14},  // no closing ";"
      {"g: h: a@b.example;;", FromErrorCode::Syntax, 4},  // groups do not nest
      {": a@b.example;", FromErrorCode::Syntax, 0},      // a group needs a name
      {"g: a@b.example; c@d.example", FromErrorCode::TrailingGarbage, 16},
      {"g: a@b.example,", FromErrorCode::Syntax, 15},
      {"g:", FromErrorCode::Syntax, 2},
      {"g: (c)", FromErrorCode::Syntax, 6},
  };
  for (const auto& e : errs) check_err(e);
}

TEST_CASE("from: obsolete routes are ignored (RFC 5322 4.4)", "[core][from]") {
  const std::vector<OkCase> cases = {
      {"<@route.example:user@example.com>", {{"", "user", "example.com"}}},
      {"Mary Smith <@node.test:mary@example.net>", {{"Mary Smith", "mary", "example.net"}}},
      {"<@a.example,@b.example:u@example.com>", {{"", "u", "example.com"}}},
      {"<,@a.example,,@b.example:u@example.com>", {{"", "u", "example.com"}}},
      {"<@[192.0.2.1]:u@example.com>", {{"", "u", "example.com"}}},
      {"< @ a.example , @ b.example : u @ example.com >", {{"", "u", "example.com"}}},
  };
  for (const auto& c : cases) check_ok(c);
  const std::vector<ErrCase> errs = {
      {"<@route.example user@example.com>", FromErrorCode::Syntax, 16},
      {"<@:u@example.com>", FromErrorCode::Syntax, 2},
      {"<,:u@example.com>", FromErrorCode::Syntax, 2},
      {"<@a..b:u@example.com>", FromErrorCode::Syntax, 4},
  };
  for (const auto& e : errs) check_err(e);
}

TEST_CASE("from: RFC 2047 encoded words in display names", "[core][from]") {
  const std::vector<OkCase> cases = {
      {"=?utf-8?q?Andr=C3=A9?= <a@b.example>", {{"André", "a", "b.example"}}},
      {"=?UTF-8?Q?Andr=c3=a9_Pirard?= <a@b.example>", {{"André Pirard", "a", "b.example"}}},
      {"=?UTF-8?B?SsO2cmc=?= <j@b.example>", {{"Jörg", "j", "b.example"}}},
      {"=?utf-8?b?SsO2cmc?= <j@b.example>", {{"Jörg", "j", "b.example"}}},  // padding omitted
      {"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>", {{"Keld J\xF8rn Simonsen", "keld", "dkuug.dk"}}},
      // RFC 2047 8: white space between adjacent encoded-words is dropped.
      {"=?ISO-8859-1?Q?a?= <x@b.example>", {{"a", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a?= b <x@b.example>", {{"a b", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?= <x@b.example>", {{"ab", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?= <x@b.example>", {{"ab", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?= <x@b.example>", {{"ab", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a_b?= <x@b.example>", {{"a b", "x", "b.example"}}},
      {"=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?= <x@b.example>", {{"a b", "x", "b.example"}}},
      {"=?US-ASCII*EN?Q?Keith_Moore?= <moore@cs.utk.edu>", {{"Keith Moore", "moore", "cs.utk.edu"}}},  // RFC 2231 5
      // Not decoded: inside a quoted string (RFC 2047 5(3)), or malformed.
      {"\"=?utf-8?q?x?=\" <a@b.example>", {{"=?utf-8?q?x?=", "a", "b.example"}}},
      {"=?utf-8?x?bad?= <a@b.example>", {{"=?utf-8?x?bad?=", "a", "b.example"}}},
      {"=?utf-8?q?bad=ZZ?= <a@b.example>", {{"=?utf-8?q?bad=ZZ?=", "a", "b.example"}}},
      {"=?utf-8?b?!!!?= <a@b.example>", {{"=?utf-8?b?!!!?=", "a", "b.example"}}},
      {"=?utf-8?q?a <a@b.example>", {{"=?utf-8?q?a", "a", "b.example"}}},
      {"=?utf-8?q?nul=00?= <a@b.example>", {{"=?utf-8?q?nul=00?=", "a", "b.example"}}},  // no NUL smuggling
      {"=?utf-8?q?cr=0D=0A?= <a@b.example>", {{"=?utf-8?q?cr=0D=0A?=", "a", "b.example"}}},
  };
  for (const auto& c : cases) check_ok(c);
  // An encoded word never changes the address: it is only a display name.
  auto r = parse_from_header("=?utf-8?q?evil=40attacker=2Eexample?= <a@victim.example>");
  REQUIRE(r);
  CHECK(r->mailboxes[0].display_name == "evil@attacker.example");
  CHECK(r->mailboxes[0].domain == "victim.example");
}

TEST_CASE("from: several mailboxes and distinct_domains (CVE-2019-16378)", "[core][from]") {
  auto r = parse_from_header("a@example.com, Bob <b@EXAMPLE.com>, c@example.org, \"D\" <d@example.com>");
  REQUIRE(r);
  REQUIRE(r->mailboxes.size() == 4);
  CHECK(r->distinct_domains() == std::vector<std::string>{"example.com", "example.org"});
  // RFC 5322 A.1.2
  check_ok({"Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
            {{"Mary Smith", "mary", "x.test"}, {"", "jdoe", "example.org"}, {"Who?", "one", "y.test"}}});
  check_ok({"<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
            {{"", "boss", "nil.test"}, {"Giant; \"Big\" Box", "sysservices", "example.net"}}});
  FromHeader empty;
  CHECK(empty.distinct_domains().empty());
}

TEST_CASE("from: limits (length, address count)", "[core][from]") {
  const std::string at_limit = "a@b.example" + std::string(kMaxFromHeaderLength - 11, ' ');
  REQUIRE(at_limit.size() == kMaxFromHeaderLength);
  CHECK(parse_from_header(at_limit).has_value());
  check_err({at_limit + " ", FromErrorCode::TooLong, kMaxFromHeaderLength});

  auto r = parse_from_header(n_addresses(kMaxFromAddresses));
  REQUIRE(r);
  CHECK(r->mailboxes.size() == kMaxFromAddresses);
  CHECK(r->distinct_domains().size() == kMaxFromAddresses);
  check_err({n_addresses(kMaxFromAddresses + 1), FromErrorCode::TooManyAddresses, std::nullopt});
  // The count covers group members too.
  check_err({"g: " + n_addresses(kMaxFromAddresses + 1) + ";", FromErrorCode::TooManyAddresses, std::nullopt});

  // Large hostile inputs finish (linear work): deep comments, long words,
  // many dots, many commas. Nesting as deep as the length allows is read.
  check_err({std::string(kMaxFromHeaderLength / 2, '(') + std::string(kMaxFromHeaderLength / 2, ')'),
             FromErrorCode::Empty, std::nullopt});
  check_err({std::string(kMaxFromHeaderLength, 'a'), FromErrorCode::MissingAt, std::nullopt});
  std::string words;
  while (words.size() + 2 <= kMaxFromHeaderLength) words += "a ";
  check_err({words, FromErrorCode::MissingAt, std::nullopt});
  std::string dots = "a@";
  while (dots.size() + 3 <= kMaxFromHeaderLength) dots += "a.";
  dots += "a";
  check_err({dots, FromErrorCode::BadDomain, 2});
  check_err({std::string(kMaxFromHeaderLength, ','), FromErrorCode::Empty, std::nullopt});
  // 8192 empty quoted strings: a phrase without an address.
  check_err({std::string(kMaxFromHeaderLength, '"'), FromErrorCode::MissingAt, kMaxFromHeaderLength});
}

TEST_CASE("from: errors and their offsets", "[core][from]") {
  const std::vector<ErrCase> cases = {
      // Empty (RFC 5322 3.6.2: at least one mailbox).
      {"", FromErrorCode::Empty, 0},
      {"   ", FromErrorCode::Empty, 3},
      {"(only a comment)", FromErrorCode::Empty, std::nullopt},
      {" \r\n (c) \r\n\t", FromErrorCode::Empty, std::nullopt},
      // NUL anywhere.
      {"\0"s, FromErrorCode::NulByte, 0},
      {"a@b.example\0"s, FromErrorCode::NulByte, 11},
      {"a\0@b.example"s, FromErrorCode::NulByte, 1},
      {"\"a\0\" <a@b.example>"s, FromErrorCode::NulByte, 2},
      {"a@b.example (\0)"s, FromErrorCode::NulByte, 13},
      // Missing "@".
      {"user", FromErrorCode::MissingAt, 4},
      {"John Doe", FromErrorCode::MissingAt, 8},
      {"a@b.example, user", FromErrorCode::MissingAt, 17},
      {"<user>", FromErrorCode::MissingAt, 5},
      {"<>", FromErrorCode::MissingAt, 1},
      {"Name <\"quoted\">", FromErrorCode::MissingAt, 14},
      {"[192.0.2.1]", FromErrorCode::MissingAt, 0},
      // Local part.
      {"@example.com", FromErrorCode::BadLocalPart, 0},
      {"<@example.com>", FromErrorCode::Syntax, std::nullopt},  // a route without ":"
      {".a@example.com", FromErrorCode::BadLocalPart, 0},
      {"a.@example.com", FromErrorCode::BadLocalPart, 1},
      {"a..b@example.com", FromErrorCode::BadLocalPart, 2},
      {"John Doe@example.com", FromErrorCode::BadLocalPart, 5},
      {"\"a\" b@example.com", FromErrorCode::BadLocalPart, 4},
      {"\"evil\" a@victim.example", FromErrorCode::BadLocalPart, 7},
      // Domain.
      {"user@", FromErrorCode::BadDomain, 5},
      {"a@-", FromErrorCode::BadDomain, 2},
      {"a@exa mple.com", FromErrorCode::BadDomain, 6},
      {"a@.example", FromErrorCode::BadDomain, 2},
      {"a@example.", FromErrorCode::BadDomain, 10},
      {"a@example..com", FromErrorCode::BadDomain, 10},
      {"a@b@c.example", FromErrorCode::BadDomain, 3},
      {"a@exa_mple?.com", FromErrorCode::BadDomain, 2},
      {"a@-example.com", FromErrorCode::BadDomain, 2},
      {"a@exa\xC3mple.com", FromErrorCode::BadDomain, 2},
      {"a@pay\xE3\x80\x82pal.com", FromErrorCode::BadDomain, 2},  // U+3002 is not a dot here
      {"a@" + std::string(64, 'x') + ".example", FromErrorCode::BadDomain, 2},
      {"<a@exa mple.com>", FromErrorCode::BadDomain, 7},
      {"<a@b.example@c.example>", FromErrorCode::BadDomain, 12},
      {"<a@>", FromErrorCode::BadDomain, 3},
      // Domain literals have no DMARC policy.
      {"a@[192.0.2.1]", FromErrorCode::DomainLiteral, 2},
      {"<a@[IPv6:2001:db8::1]>", FromErrorCode::DomainLiteral, 3},
      {"Name <a@[192.0.2.1]>", FromErrorCode::DomainLiteral, 8},
      {"a@[192.0.2.1", FromErrorCode::Syntax, 2},
      // Trailing garbage after a complete address.
      {"<a@b.example> trailing", FromErrorCode::TrailingGarbage, 14},
      {"<a@b.example> <c@d.example>", FromErrorCode::TrailingGarbage, 14},
      {"<a@b.example> \"x\"", FromErrorCode::TrailingGarbage, 14},
      {"a@b.example <c@d.example>", FromErrorCode::TrailingGarbage, 12},
      {"evil@attacker.example <a@victim.example>", FromErrorCode::TrailingGarbage, 22},
      {"a@b.example \"x\"", FromErrorCode::TrailingGarbage, 12},
      {"a@b.example; c@d.example", FromErrorCode::TrailingGarbage, 11},
      {"a@b.example:", FromErrorCode::TrailingGarbage, 11},
      // Unbalanced quotes, comments and angle brackets.
      {"\"unterminated <a@b.example>", FromErrorCode::UnbalancedQuote, 0},
      {"a@b.example, \"x", FromErrorCode::UnbalancedQuote, 13},
      {"\"x\\\"", FromErrorCode::UnbalancedQuote, 0},
      {"\"x\\", FromErrorCode::UnbalancedQuote, 0},
      {"\"x\r\n", FromErrorCode::UnbalancedQuote, 0},
      {"(unterminated a@b.example", FromErrorCode::UnbalancedComment, 0},
      {"a@b.example (a (b)", FromErrorCode::UnbalancedComment, 12},
      {"a@b.example (a \\)", FromErrorCode::UnbalancedComment, 12},
      {"a@b.example)", FromErrorCode::UnbalancedComment, 11},
      {"a@b.example (x))", FromErrorCode::UnbalancedComment, 15},
      {"<a@b.example", FromErrorCode::UnbalancedAngle, 0},
      {"Name <a@b.example", FromErrorCode::UnbalancedAngle, 5},
      {"Name <a@b.example, c@d.example>", FromErrorCode::Syntax, 17},
      {"<a", FromErrorCode::UnbalancedAngle, 0},
      {"<", FromErrorCode::UnbalancedAngle, 0},
      {"<<a@b.example>>", FromErrorCode::UnbalancedAngle, 1},
      {"<a@b.example<", FromErrorCode::UnbalancedAngle, 12},
      {"<a@b.example>>", FromErrorCode::UnbalancedAngle, 13},
      {"a@b.example>", FromErrorCode::UnbalancedAngle, 11},
      {"user>", FromErrorCode::UnbalancedAngle, 4},
      {">", FromErrorCode::UnbalancedAngle, 0},
      // Only empty list elements (RFC 5322 4.4 obs-addr-list needs one address).
      {",", FromErrorCode::Empty, 0},
      {" , (c) ,", FromErrorCode::Empty, 0},
      // An empty group names no mailbox (RFC 6854).
      {"undisclosed-recipients:;", FromErrorCode::EmptyGroup, 0},
      {"g: , ;", FromErrorCode::EmptyGroup, 0},
      {"a:;, b:;", FromErrorCode::EmptyGroup, 0},
      {"g: a@b.example,", FromErrorCode::Syntax, std::nullopt},  // never closed
      // Line breaks that are not folds start a new header field.
      {"a@b.example\r\nBcc: x@y.example", FromErrorCode::Syntax, 11},
      {"a@b.example\nBcc: x@y.example", FromErrorCode::Syntax, 11},
      {"a@b.example\rx", FromErrorCode::Syntax, 11},
      {"a@b.example\r", FromErrorCode::Syntax, 11},
      {"\"a\r\nb\" <x@b.example>", FromErrorCode::Syntax, 2},
      {"(a\nb) x@b.example", FromErrorCode::Syntax, 2},
      {"\"a\\\r\n b\" <x@b.example>", FromErrorCode::Syntax, 2},
      // Other syntax.
      {"a\\b@example.com", FromErrorCode::Syntax, 1},
      {"a@b.example]", FromErrorCode::Syntax, 11},
      {"a@b.example\x01", FromErrorCode::Syntax, 11},
      {"a@b.example\x7F", FromErrorCode::Syntax, 11},
      {".John <a@b.example>", FromErrorCode::Syntax, 0},
      {";", FromErrorCode::Syntax, 0},
      {"<[x]>", FromErrorCode::Syntax, 1},
  };
  for (const auto& c : cases) check_err(c);
}

TEST_CASE("from: every prefix of valid headers is handled without surprises", "[core][from]") {
  // A cheap stand-in for the fuzz target: no prefix may crash, every
  // success names at least one mailbox with a non-empty domain, and every
  // error offset lies inside the input.
  const std::vector<std::string> inputs = {
      "\"Display \\\" name\" (c (n)) <@r.example,@[1.2.3.4]:a.b@Example.COM>, g: x@y.example, =?utf-8?q?a?= "
      "<z@bücher.example>;",
      "Mary Smith\r\n  \r\n <mary@example.net>, \"x\\\\\" <y@z.example> (end)",
  };
  for (const auto& in : inputs) {
    for (std::size_t n = 0; n <= in.size(); ++n) {
      const std::string p = in.substr(0, n);
      CAPTURE(p);
      auto r = parse_from_header(p);
      if (r) {
        REQUIRE_FALSE(r->mailboxes.empty());
        for (const auto& m : r->mailboxes) CHECK_FALSE(m.domain.empty());
      } else {
        CHECK(r.error().offset <= p.size());
      }
    }
  }
  auto full = parse_from_header(inputs[0]);
  REQUIRE(full);
  REQUIRE(full->mailboxes.size() == 3);
  CHECK(full->mailboxes[0].display_name == "Display \" name");
  CHECK(full->mailboxes[0].local_part == "a.b");
  CHECK(full->mailboxes[0].domain == "example.com");
  CHECK(full->mailboxes[1].domain == "y.example");
  CHECK(full->mailboxes[2].display_name == "a");
  CHECK(full->mailboxes[2].domain == "xn--bcher-kva.example");
}

TEST_CASE("from: RFC 5322 4.4 obsolete list forms are read", "[core][from]") {
  check_ok({", a@example.com", {{"", "a", "example.com"}}});
  check_ok({"a@example.com,", {{"", "a", "example.com"}}});
  check_ok({"a@example.com, ,", {{"", "a", "example.com"}}});
  check_ok({" , , Al <a@example.com> , ,b@example.org,", {{"Al", "a", "example.com"}, {"", "b", "example.org"}}});
  check_ok({"a@example.com,(comment), ", {{"", "a", "example.com"}}});
  // obs-group-list and obs-mbox-list inside a group.
  check_ok({"team: , a@example.com, , b@example.com,;", {{"", "a", "example.com"}, {"", "b", "example.com"}}});
  check_ok({"empty: , ;, a@example.com", {{"", "a", "example.com"}}});
  // The neighbours: obs-domain and obs-local-part with CFWS around the dots,
  // obs-angle-addr with a route, comments everywhere.
  check_ok({"a . b @ example . com", {{"", "a.b", "example.com"}}});
  check_ok({"<@route.example,@other.example:a@example.com>", {{"", "a", "example.com"}}});
  check_ok({"(c1) Al (c2) <(c3) a (c4) @ (c5) example.com (c6)> (c7)", {{"Al", "a", "example.com"}}});
}

TEST_CASE("from: long valid fields within the documented bound", "[core][from]") {
  // Hundreds of nested comments.
  std::string nested = std::string(500, '(') + "x" + std::string(500, ')');
  check_ok({nested + " a@example.com", {{"", "a", "example.com"}}});
  check_ok({"Al " + nested + " <a@example.com>", {{"Al", "a", "example.com"}}});
  // A 20 KB display name folded over many lines.
  std::string name;
  for (int i = 0; i < 1000; ++i) name += "word" + std::to_string(i) + " verylongword\r\n ";
  REQUIRE(name.size() > 20000);
  auto r = parse_from_header("\"" + name + "\" <a@example.com>");
  REQUIRE(r);
  CHECK(r->distinct_domains() == std::vector<std::string>{"example.com"});
  r = parse_from_header(name + "<a@example.com>");
  REQUIRE(r);
  CHECK(r->mailboxes[0].domain == "example.com");
}

TEST_CASE("from: lenient reading of fields that do not parse", "[core][from]") {
  using V = std::vector<std::string>;
  // What sloppy mailers write: one domain, whatever the reading.
  CHECK(lenient_from_domains("Smith, John <j@example.com>") == V{"example.com"});
  CHECK(lenient_from_domains("user@example.com <user@example.com>") == V{"example.com"});
  CHECK(lenient_from_domains("\"Name\" user@example.com") == V{"example.com"});
  CHECK(lenient_from_domains("user@Example.COM>") == V{"example.com"});
  // Every domain anywhere counts: quoted strings and comments included.
  CHECK(lenient_from_domains("\"alice@bank.example\" mallory@evil.example") == V{"bank.example", "evil.example"});
  CHECK(lenient_from_domains("evil@attacker.example <a@victim.example>") == V{"attacker.example", "victim.example"});
  CHECK(lenient_from_domains("x (a@one.example) <b@two.example") == V{"one.example", "two.example"});
  // obs-domain spacing, junk after the name, a final dot.
  CHECK(lenient_from_domains("a@ bank . example junk <") == V{"bank.example"});
  CHECK(lenient_from_domains("a@evil.example!x") == V{"evil.example"});
  CHECK(lenient_from_domains("<a@example.com.") == V{"example.com"});
  // No domain: nothing.
  CHECK(lenient_from_domains("John Doe").empty());
  CHECK(lenient_from_domains("a@[192.0.2.1]>").empty());
  CHECK(lenient_from_domains("@@@").empty());
  CHECK(lenient_from_domains("").empty());
  // Bounded: at most kMaxFromAddresses domains, linear work on hostile input.
  std::string many;
  for (std::size_t i = 0; i < 200; ++i) many += "x@d" + std::to_string(i) + ".example> ";
  CHECK(lenient_from_domains(many).size() == kMaxFromAddresses);
  CHECK(lenient_from_domains(std::string(kMaxFromHeaderLength, '@')).empty());
  CHECK(lenient_from_domains("@" + std::string(kMaxFromHeaderLength, ' ')).empty());
}
