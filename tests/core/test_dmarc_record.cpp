// test_dmarc_record.cpp - DMARC record parser (RFC 7489 6.3/6.4/6.6.3, RFC 9989 4.7)
#include <catch2/catch.hpp>

#include <string>

#include "dmarc/core/dmarc_record.hpp"

using namespace dmarc;

TEST_CASE("record: v=DMARC1 must come first and is case-sensitive", "[record]") {
  CHECK(parse_dmarc_record("v=DMARC1; p=reject").has_value());
  CHECK(parse_dmarc_record("  v = DMARC1 ;p=reject").has_value());
  CHECK(parse_dmarc_record("p=reject; v=DMARC1").error().code == RecordError::NotDmarc);
  CHECK(parse_dmarc_record("v=dmarc1; p=reject").error().code == RecordError::NotDmarc);
  CHECK(parse_dmarc_record("v=DMARC10; p=reject").error().code == RecordError::NotDmarc);
  CHECK(parse_dmarc_record("v=spf1 -all").error().code == RecordError::NotDmarc);
  CHECK(parse_dmarc_record("").error().code == RecordError::Empty);
  CHECK(parse_dmarc_record("   ").error().code == RecordError::Empty);
  CHECK(is_dmarc_record("v=DMARC1"));
  CHECK(is_dmarc_record("v=DMARC1;"));
  CHECK_FALSE(is_dmarc_record("v=DMARC1x"));
}

TEST_CASE("record: defaults (RFC 7489 6.3, RFC 9989 4.7)", "[record]") {
  auto r = parse_dmarc_record("v=DMARC1; p=quarantine");
  REQUIRE(r);
  CHECK(r->p == Policy::Quarantine);
  CHECK_FALSE(r->sp.has_value());
  CHECK(r->subdomain_policy() == Policy::Quarantine);
  CHECK(r->nonexistent_policy() == Policy::Quarantine);
  CHECK(r->adkim == AlignmentMode::Relaxed);
  CHECK(r->aspf == AlignmentMode::Relaxed);
  CHECK(r->fo.text == "0");
  CHECK(r->fo.all_fail);
  CHECK_FALSE(r->t);
  CHECK(r->psd == PsdFlag::Unspecified);
  CHECK(r->pct == 100);
  CHECK(r->rf == "afrf");
  CHECK(r->ri == 86400);
  CHECK(r->rua.empty());
  CHECK(r->problems.empty());
}

TEST_CASE("record: sp and np inherit (RFC 9989 4.7)", "[record]") {
  auto r = parse_dmarc_record("v=DMARC1; p=reject; sp=quarantine");
  REQUIRE(r);
  CHECK(r->subdomain_policy() == Policy::Quarantine);
  CHECK(r->nonexistent_policy() == Policy::Quarantine);
  r = parse_dmarc_record("v=DMARC1; p=none; np=reject");
  REQUIRE(r);
  CHECK(r->subdomain_policy() == Policy::None);
  CHECK(r->nonexistent_policy() == Policy::Reject);
}

TEST_CASE("record: invalid or missing p with and without a usable rua (RFC 7489 6.6.3)", "[record]") {
  CHECK(parse_dmarc_record("v=DMARC1; p=bogus").error().code == RecordError::InvalidPolicy);
  CHECK(parse_dmarc_record("v=DMARC1; p=none; sp=bogus").error().code == RecordError::InvalidPolicy);
  CHECK(parse_dmarc_record("v=DMARC1; p=none; np=bogus").error().code == RecordError::InvalidPolicy);
  CHECK(parse_dmarc_record("v=DMARC1").error().code == RecordError::MissingPolicy);
  CHECK(parse_dmarc_record("v=DMARC1; rua=ftp://example.com").error().code == RecordError::MissingPolicy);
  CHECK(parse_dmarc_record("v=DMARC1; rua=mailto://example.com").error().code == RecordError::MissingPolicy);

  auto r = parse_dmarc_record("v=DMARC1; p=bogus; rua=mailto:d@example.com");
  REQUIRE(r);
  CHECK(r->p == Policy::None);
  CHECK(r->p_from_rua_rule);
  r = parse_dmarc_record("v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com");
  REQUIRE(r);
  CHECK(r->p == Policy::None);  // acts as a record with p=none
  CHECK(r->subdomain_policy() == Policy::None);
  r = parse_dmarc_record("v=DMARC1; rua=mailto:d@example.com");
  REQUIRE(r);
  CHECK(r->p == Policy::None);
  r = parse_dmarc_record("v=DMARC1; psd=y");  // RFC 9989 PSD record
  REQUIRE(r);
  CHECK(r->psd == PsdFlag::Yes);
}

TEST_CASE("record: other bad values fall back to defaults (RFC 7489 6.3)", "[record]") {
  auto r = parse_dmarc_record("v=DMARC1; p=reject; adkim=x; aspf=; fo=9; pct=101; rf=xml; ri=-1; t=maybe; psd=q");
  REQUIRE(r);
  CHECK(r->p == Policy::Reject);
  CHECK(r->adkim == AlignmentMode::Relaxed);
  CHECK(r->aspf == AlignmentMode::Relaxed);
  CHECK(r->fo.text == "0");
  CHECK(r->pct == 100);
  CHECK_FALSE(r->pct_present);
  CHECK(r->rf == "afrf");
  CHECK(r->ri == 86400);
  CHECK_FALSE(r->t);
  CHECK(r->psd == PsdFlag::Unspecified);
  CHECK(r->problems.size() == 8);
}

TEST_CASE("record: a signed or non-digit pct or ri is discarded, never a negative percent (fuzz_dmarc_record)", "[record]") {
  // from_chars reads "-500" for a signed integer: pct=-500 sampled every
  // failure out in RFC 7489 mode, so p=reject stopped no spoof.
  for (const char* v : {"-500", "-0", "+50", " 50x", "5 0", "0x10"}) {
    INFO(v);
    auto r = parse_dmarc_record(std::string("v=DMARC1; p=reject; pct=") + v + "; ri=" + v);
    REQUIRE(r);
    CHECK(r->pct == 100);
    CHECK_FALSE(r->pct_present);
    CHECK(r->ri == 86400);
    CHECK(r->problems.size() == 2);
  }
  auto ok = parse_dmarc_record("v=DMARC1; p=reject; pct=0; ri=3600");
  REQUIRE(ok);
  CHECK(ok->pct == 0);
  CHECK(ok->ri == 3600);
}

TEST_CASE("record: all tags parsed", "[record]") {
  auto r = parse_dmarc_record(
      "v=DMARC1; p=Reject; sp=NONE; np=quarantine; adkim=s; aspf=S; fo=1:d:S; "
      "rua=mailto:a@example.com!10m, mailto:b@example.net ! 2 k; ruf=mailto:f@example.com; "
      "t=y; psd=n; pct=25; rf=afrf; ri=3600; x-future=1");
  REQUIRE(r);
  CHECK(r->p == Policy::Reject);
  CHECK(r->sp == Policy::None);
  CHECK(r->np == Policy::Quarantine);
  CHECK(r->adkim == AlignmentMode::Strict);
  CHECK(r->aspf == AlignmentMode::Strict);
  CHECK(r->fo.text == "1:d:s");
  CHECK(r->fo.any_fail);
  CHECK(r->fo.dkim);
  CHECK(r->fo.spf);
  CHECK_FALSE(r->fo.all_fail);
  REQUIRE(r->rua.size() == 2);
  CHECK(r->rua[0].uri == "mailto:a@example.com");
  CHECK(r->rua[0].max_size == 10u * 1024 * 1024);
  CHECK(r->rua[1].uri == "mailto:b@example.net");
  CHECK(r->rua[1].max_size == 2048);
  CHECK(r->rua[1].mailto_address() == "b@example.net");
  REQUIRE(r->ruf.size() == 1);
  CHECK(r->t);
  CHECK(r->psd == PsdFlag::No);
  CHECK(r->pct == 25);
  CHECK(r->ri == 3600);
  REQUIRE(r->problems.size() == 1);
  CHECK(r->problems[0].severity == ProblemSeverity::Info);
  CHECK(r->problems[0].tag == "x-future");
}

TEST_CASE("record: a repeated tag keeps its first value", "[record]") {
  auto r = parse_dmarc_record("v=DMARC1; p=none; p=reject");
  REQUIRE(r);
  CHECK(r->p == Policy::None);
  CHECK(r->problems.size() == 1);
}

TEST_CASE("record: hostile input is bounded", "[record]") {
  std::string huge = "v=DMARC1; p=reject; rua=" + std::string(kMaxRecordLength, 'a');
  CHECK(parse_dmarc_record(huge).error().code == RecordError::TooLong);
  std::string many = "v=DMARC1; p=reject; rua=";
  for (int i = 0; i < 100; ++i) many += "mailto:r" + std::to_string(i) + "@example.com,";
  auto r = parse_dmarc_record(many);
  REQUIRE(r);
  CHECK(r->rua.size() == kMaxReportUris);
  std::string with_nul("v=DMARC1; p=reject; rua=mailto:a\0b@example.com", 46);
  r = parse_dmarc_record(with_nul);
  REQUIRE(r);
  CHECK(r->rua.empty());  // a URI with a NUL is not a URI
  CHECK(r->p == Policy::Reject);
  CHECK(parse_dmarc_record(";;;;;").error().code == RecordError::NotDmarc);
  CHECK(parse_dmarc_record("v=DMARC1;;;;; p=none;;").has_value());
  CHECK(parse_dmarc_record("v=DMARC1; p=reject; rua=mailto:a@example.com!99999999999999999999").has_value());
}

TEST_CASE("record: backslash-escaped separators are tolerated", "[record]") {
  auto r = parse_dmarc_record("v=DMARC1\\; p=reject\\;");
  REQUIRE(r);
  CHECK(r->p == Policy::Reject);
  CHECK_FALSE(r->problems.empty());
}
