// test_domain.cpp - domain normalisation and Punycode (RFC 1035 2.3.4, RFC 5891, RFC 3492)
#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "dmarc/core/domain.hpp"

using namespace dmarc;
using namespace std::string_literals;

namespace {

// utf8 - encode code points as UTF-8, so the RFC 3492 samples can be
// written exactly as the RFC lists them.
std::string utf8(std::initializer_list<std::uint32_t> cps) {
  std::string s;
  for (std::uint32_t c : cps) {
    if (c < 0x80) {
      s.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (c >> 6)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (c >> 12)));
      s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (c >> 18)));
      s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return s;
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

struct PunyCase {
  const char* name;
  std::string input;
  std::string output;
};

}  // namespace

TEST_CASE("domain: RFC 3492 7.1 sample strings", "[core][domain]") {
  // The Punycode column is copied from RFC 3492 7.1. Example (I) is shown
  // there with a mixed-case annotation ("...gefbaDotc..."); an encoder
  // without case flags emits lower-case digits, so it is lower-cased here.
  const std::vector<PunyCase> cases = {
      {"(A) Arabic (Egyptian)",
       utf8({0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645, 0x0648, 0x0634,
             0x0639, 0x0631, 0x0628, 0x064A, 0x061F}),
       "egbpdaj6bu4bxfgehfvwxn"},
      {"(B) Chinese (simplified)",
       utf8({0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587}), "ihqwcrb4cv8a8dqg056pqjye"},
      {"(C) Chinese (traditional)",
       utf8({0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587}),
       "ihqwctvzc91f659drss3x8bo0yb"},
      {"(D) Czech",
       utf8({0x0050, 0x0072, 0x006F, 0x010D, 0x0070, 0x0072, 0x006F, 0x0073, 0x0074, 0x011B, 0x006E,
             0x0065, 0x006D, 0x006C, 0x0075, 0x0076, 0x00ED, 0x010D, 0x0065, 0x0073, 0x006B, 0x0079}),
       "Proprostnemluvesky-uyb24dma41a"},
      {"(E) Hebrew",
       utf8({0x05DC, 0x05DE, 0x05D4, 0x05D4, 0x05DD, 0x05E4, 0x05E9, 0x05D5, 0x05D8, 0x05DC, 0x05D0,
             0x05DE, 0x05D3, 0x05D1, 0x05E8, 0x05D9, 0x05DD, 0x05E2, 0x05D1, 0x05E8, 0x05D9, 0x05EA}),
       "4dbcagdahymbxekheh6e0a7fei0b"},
      {"(F) Hindi (Devanagari)",
       utf8({0x092F, 0x0939, 0x0932, 0x094B, 0x0917, 0x0939, 0x093F, 0x0928, 0x094D, 0x0926,
             0x0940, 0x0915, 0x094D, 0x092F, 0x094B, 0x0902, 0x0928, 0x0939, 0x0940, 0x0902,
             0x092C, 0x094B, 0x0932, 0x0938, 0x0915, 0x0924, 0x0947, 0x0939, 0x0948, 0x0902}),
       "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"},
      {"(G) Japanese (kanji and hiragana)",
       utf8({0x306A, 0x305C, 0x307F, 0x3093, 0x306A, 0x65E5, 0x672C, 0x8A9E, 0x3092, 0x8A71, 0x3057,
             0x3066, 0x304F, 0x308C, 0x306A, 0x3044, 0x306E, 0x304B}),
       "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"},
      {"(H) Korean (Hangul syllables)",
       utf8({0xC138, 0xACC4, 0xC758, 0xBAA8, 0xB4E0, 0xC0AC, 0xB78C, 0xB4E4, 0xC774, 0xD55C, 0xAD6D, 0xC5B4,
             0xB97C, 0xC774, 0xD574, 0xD55C, 0xB2E4, 0xBA74, 0xC5BC, 0xB9C8, 0xB098, 0xC88B, 0xC744, 0xAE4C}),
       "989aomsvi5e83db1d2a355cv1e0vak1dwrv93d5xbh15a0dt30a5jpsd879ccm6fea98c"},
      {"(I) Russian (Cyrillic)",
       utf8({0x043F, 0x043E, 0x0447, 0x0435, 0x043C, 0x0443, 0x0436, 0x0435, 0x043E, 0x043D,
             0x0438, 0x043D, 0x0435, 0x0433, 0x043E, 0x0432, 0x043E, 0x0440, 0x044F, 0x0442,
             0x043F, 0x043E, 0x0440, 0x0443, 0x0441, 0x0441, 0x043A, 0x0438}),
       "b1abfaaepdrnnbgefbadotcwatmq2g4l"},
      {"(J) Spanish",
       utf8({0x0050, 0x006F, 0x0072, 0x0071, 0x0075, 0x00E9, 0x006E, 0x006F, 0x0070, 0x0075, 0x0065,
             0x0064, 0x0065, 0x006E, 0x0073, 0x0069, 0x006D, 0x0070, 0x006C, 0x0065, 0x006D, 0x0065,
             0x006E, 0x0074, 0x0065, 0x0068, 0x0061, 0x0062, 0x006C, 0x0061, 0x0072, 0x0065, 0x006E,
             0x0045, 0x0073, 0x0070, 0x0061, 0x00F1, 0x006F, 0x006C}),
       "PorqunopuedensimplementehablarenEspaol-fmd56a"},
      {"(K) Vietnamese",
       utf8({0x0054, 0x1EA1, 0x0069, 0x0073, 0x0061, 0x006F, 0x0068, 0x1ECD, 0x006B, 0x0068, 0x00F4,
             0x006E, 0x0067, 0x0074, 0x0068, 0x1EC3, 0x0063, 0x0068, 0x1EC9, 0x006E, 0x00F3, 0x0069,
             0x0074, 0x0069, 0x1EBF, 0x006E, 0x0067, 0x0056, 0x0069, 0x1EC7, 0x0074}),
       "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g"},
      {"(L) 3<nen>B<gumi><kinpachi><sensei>",
       utf8({0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F}), "3B-ww4c5e180e575a65lsy2b"},
      {"(M) <amuro><namie>-with-SUPER-MONKEYS",
       utf8({0x5B89, 0x5BA4, 0x5948, 0x7F8E, 0x6075, 0x002D, 0x0077, 0x0069, 0x0074, 0x0068, 0x002D, 0x0053,
             0x0055, 0x0050, 0x0045, 0x0052, 0x002D, 0x004D, 0x004F, 0x004E, 0x004B, 0x0045, 0x0059, 0x0053}),
       "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n"},
      {"(N) Hello-Another-Way-<sorezore><no><basho>",
       utf8({0x0048, 0x0065, 0x006C, 0x006C, 0x006F, 0x002D, 0x0041, 0x006E, 0x006F, 0x0074, 0x0068, 0x0065,
             0x0072, 0x002D, 0x0057, 0x0061, 0x0079, 0x002D, 0x305D, 0x308C, 0x305E, 0x308C, 0x306E, 0x5834,
             0x6240}),
       "Hello-Another-Way--fc4qua05auwb3674vfr0b"},
      {"(O) <hitotsu><yane><no><shita>2",
       utf8({0x3072, 0x3068, 0x3064, 0x5C4B, 0x6839, 0x306E, 0x4E0B, 0x0032}), "2-u9tlzr9756bt3uc0v"},
      {"(P) Maji<de>Koi<suru>5<byou><mae>",
       utf8({0x004D, 0x0061, 0x006A, 0x0069, 0x3067, 0x004B, 0x006F, 0x0069, 0x3059, 0x308B, 0x0035, 0x79D2,
             0x524D}),
       "MajiKoi5-783gue6qz075azm5e"},
      {"(Q) <pafii>de<runba>",
       utf8({0x30D1, 0x30D5, 0x30A3, 0x30FC, 0x0064, 0x0065, 0x30EB, 0x30F3, 0x30D0}), "de-jg4avhby1noc0d"},
      {"(R) <sono><supiido><de>", utf8({0x305D, 0x306E, 0x30B9, 0x30D4, 0x30FC, 0x30C9, 0x3067}),
       "d9juau41awczczp"},
      {"(S) -> $1.00 <-",
       utf8({0x002D, 0x003E, 0x0020, 0x0024, 0x0031, 0x002E, 0x0030, 0x0030, 0x0020, 0x003C, 0x002D}),
       "-> $1.00 <--"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto got = punycode_encode(c.input);
    REQUIRE(got.has_value());
    CHECK(*got == c.output);
  }
  // The literal forms the brief names, written directly in UTF-8.
  CHECK(punycode_encode("ليهمابتكلموشعربي؟") == "egbpdaj6bu4bxfgehfvwxn");
  CHECK(punycode_encode("他们为什么不说中文") == "ihqwcrb4cv8a8dqg056pqjye");
  CHECK(punycode_encode("3年B組金八先生") == "3B-ww4c5e180e575a65lsy2b");
}

TEST_CASE("domain: punycode_encode edge cases and overflow (RFC 3492 6.3, 6.4)", "[core][domain]") {
  CHECK(punycode_encode("") == ""s);
  CHECK(punycode_encode("abc") == "abc-"s);  // all basic: literal part and delimiter
  CHECK(punycode_encode("bücher") == "bcher-kva"s);
  CHECK(punycode_encode("ü") == "tda"s);
  CHECK(punycode_encode(utf8({0x10FFFF})) == "dn32g"s);
  // Invalid UTF-8 (RFC 3629 3/4): truncated, stray continuation, overlong,
  // surrogate, beyond U+10FFFF, F5..FF leads.
  for (const std::string& bad : {"\xC3"s, "\x80"s, "a\xBF"s, "\xC0\xAF"s, "\xE0\x80\xAF"s, "\xED\xA0\x80"s,
                                 "\xF4\x90\x80\x80"s, "\xF5\x80\x80\x80"s, "\xFF"s, "\xE2\x82"s}) {
    CAPTURE(bad);
    CHECK_FALSE(punycode_encode(bad).has_value());
  }
  // 4000 x U+0080 then U+10FFFF: the delta for U+10FFFF is
  // (0x10FFFF - 0x81) * 4001 > 2^32 - 1, which must be detected (6.4).
  CHECK_FALSE(punycode_encode(repeat(utf8({0x80}), 4000) + utf8({0x10FFFF})).has_value());
  // Without the large jump the same length encodes fine.
  CHECK(punycode_encode(repeat(utf8({0x80}), 4000)).has_value());
  // Work bound: inputs far beyond any label are refused.
  CHECK_FALSE(punycode_encode(std::string(9000, 'a')).has_value());
}

TEST_CASE("domain: normalize_domain accepts and canonicalises", "[core][domain]") {
  struct Case {
    std::string in;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"example.com", "example.com"},
      {"Example.COM", "example.com"},
      {"EXAMPLE.COM.", "example.com"},  // one trailing dot stripped (RFC 1034 3.1)
      {"com", "com"},
      {"_dmarc.Example.com", "_dmarc.example.com"},  // underscored names (RFC 8552)
      {"a-b.example", "a-b.example"},
      {"1.2.3.4", "1.2.3.4"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},  // A-label kept
      {"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
      {"bücher.example", "xn--bcher-kva.example"},
      {"Bücher.Example", "xn--bcher-kva.example"},  // ASCII case folded before encoding
      {"münchen.de", "xn--mnchen-3ya.de"},
      {"例え.テスト", "xn--r8jz45g.xn--zckzah"},
      {"mail.bücher.example.", "mail.xn--bcher-kva.example"},
      // Only ASCII is lower-cased: U+00DC is encoded as it is (see domain.cpp).
      {"BÜCHER.example", "xn--bcher-2pa.example"},
      {std::string(63, 'a') + ".example", std::string(63, 'a') + ".example"},
      {repeat("ü", 57) + ".example", "xn--tda" + std::string(56, 'a') + ".example"},  // A-label of 63
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    auto got = normalize_domain(c.in);
    REQUIRE(got.has_value());
    CHECK(*got == c.want);
    // Idempotent: a canonical name is its own canonical form.
    CHECK(normalize_domain(*got) == got);
  }
}

TEST_CASE("domain: normalize_domain length limits (RFC 1035 2.3.4)", "[core][domain]") {
  const std::string l63(63, 'a');
  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 octets
  const std::string n253 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  REQUIRE(n253.size() == 253);
  CHECK(normalize_domain(n253) == n253);
  CHECK(normalize_domain(n253 + ".") == n253);  // the trailing dot does not count
  CHECK_FALSE(normalize_domain(n253 + "b").has_value());
  CHECK_FALSE(normalize_domain(n253 + ".b").has_value());
  CHECK_FALSE(normalize_domain(std::string(64, 'a') + ".example").has_value());
  CHECK_FALSE(normalize_domain(repeat("ü", 58) + ".example").has_value());  // A-label of 64
  CHECK_FALSE(normalize_domain(std::string(5000, 'a')).has_value());
  CHECK_FALSE(normalize_domain(repeat("a.", 200)).has_value());
}

TEST_CASE("domain: normalize_domain rejects", "[core][domain]") {
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "example.com..",  // only one trailing dot is stripped
      ".example.com",
      "a..b",
      "exa mple.com",
      "exa\tmple.com",
      "exa\0mple.com"s,
      "exa\rmple.com",
      "exa\nmple.com",
      "a@b.example",
      "a:b.example",
      "a/b.example",
      "[192.0.2.1]",
      "-a.example",
      "a-.example",
      "a.-",
      "-",
      "exa\xC3mple.com",           // truncated UTF-8
      "exa\xC0\xAFmple.com",       // overlong
      "\xED\xA0\x80.example",      // surrogate
      "\xF4\x90\x80\x80.example",  // > U+10FFFF
      "\xE9t\xE9.example",         // Latin-1, not UTF-8
      utf8({'a', 0x85, 'b'}) + ".example",            // C1 control (NEL)
      utf8({'e', 'x', 0xA0, 'a'}) + ".example",       // NO-BREAK SPACE
      utf8({'p', 'a', 'y', 0x200B, 'p', 'a', 'l'}) + ".example",  // ZERO WIDTH SPACE
      utf8({'p', 'a', 'y', 0x202E, 'p', 'a', 'l'}) + ".example",  // RIGHT-TO-LEFT OVERRIDE
      utf8({'p', 'a', 'y', 'p', 'a', 'l', 0x3002, 'c', 'o', 'm'}),  // IDEOGRAPHIC FULL STOP
      utf8({'p', 'a', 'y', 'p', 'a', 'l', 0xFF0E, 'c', 'o', 'm'}),  // FULLWIDTH FULL STOP
      utf8({0xFEFF, 'a'}) + ".example",                            // BOM
      utf8({'-', 0xFC}) + ".example",  // U-label starting with a hyphen (RFC 5891 4.2.3.1)
      utf8({0xFC, ' '}) + ".example",  // ASCII space inside a U-label
  };
  for (const auto& b : bad) {
    CAPTURE(b);
    CHECK_FALSE(normalize_domain(b).has_value());
  }
}

TEST_CASE("domain: labels and label_count", "[core][domain]") {
  CHECK(labels("").empty());
  CHECK(labels("com") == std::vector<std::string_view>{"com"});
  CHECK(labels("a.b.example") == std::vector<std::string_view>{"a", "b", "example"});
  CHECK(labels("_dmarc.example.com") == std::vector<std::string_view>{"_dmarc", "example", "com"});
  CHECK(label_count("") == 0);
  CHECK(label_count("com") == 1);
  CHECK(label_count("example.com") == 2);
  CHECK(label_count("a.b.c.d.e.f.g.h") == 8);
}

TEST_CASE("domain: strip_labels and last_labels", "[core][domain]") {
  struct Strip {
    std::size_t n;
    std::string_view want;
  };
  const std::string_view d = "a.b.example.com";
  for (const auto& c : {Strip{0, "a.b.example.com"}, Strip{1, "b.example.com"}, Strip{2, "example.com"},
                        Strip{3, "com"}, Strip{4, ""}, Strip{5, ""}, Strip{100, ""}}) {
    CAPTURE(c.n);
    CHECK(strip_labels(d, c.n) == c.want);
  }
  for (const auto& c : {Strip{0, ""}, Strip{1, "com"}, Strip{2, "example.com"}, Strip{3, "b.example.com"},
                        Strip{4, "a.b.example.com"}, Strip{5, "a.b.example.com"}, Strip{100, "a.b.example.com"}}) {
    CAPTURE(c.n);
    CHECK(last_labels(d, c.n) == c.want);
  }
  CHECK(strip_labels("", 0) == "");
  CHECK(strip_labels("", 1) == "");
  CHECK(strip_labels("com", 1) == "");
  CHECK(last_labels("", 1) == "");
  CHECK(last_labels("com", 1) == "com");
  CHECK(last_labels("com", 2) == "com");
}

TEST_CASE("domain: is_subdomain_or_same", "[core][domain]") {
  struct Case {
    std::string_view child;
    std::string_view parent;
    bool want;
  };
  for (const auto& c : {
           Case{"example.com", "example.com", true},
           Case{"a.example.com", "example.com", true},
           Case{"a.b.example.com", "example.com", true},
           Case{"a.b.example.com", "com", true},
           Case{"badexample.com", "example.com", false},  // label boundary matters
           Case{"example.com", "a.example.com", false},
           Case{"example.org", "example.com", false},
           Case{"xample.com", "example.com", false},
           Case{"example.com", "", false},
           Case{"", "", true},
           Case{"", "com", false},
       }) {
    CAPTURE(c.child, c.parent);
    CHECK(is_subdomain_or_same(c.child, c.parent) == c.want);
  }
}
