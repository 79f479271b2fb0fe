// dkim_key_record.cpp - key record checks and PKCS#1 -> SPKI (see the header)
#include "adapters/dkim/dkim_key_record.hpp"

#include "adapters/dkim/dkim_tags.hpp"

namespace dmarc::dkim {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// der_element - read one DER TLV at DER[pos]: its tag, and where its
// contents start and end. Definite lengths of up to 4 octets only.
struct Tlv {
  unsigned char tag = 0;
  std::size_t begin = 0, end = 0;
};
std::optional<Tlv> der_element(const std::vector<unsigned char>& der, std::size_t pos) {
  if (pos + 2 > der.size()) return std::nullopt;
  Tlv t;
  t.tag = der[pos];
  std::size_t len = der[pos + 1];
  std::size_t p = pos + 2;
  if (len & 0x80) {
    std::size_t n = len & 0x7f;
    if (n == 0 || n > 4 || p + n > der.size()) return std::nullopt;
    len = 0;
    for (std::size_t k = 0; k < n; ++k) len = (len << 8) | der[p + k];
    p += n;
  }
  if (len > der.size() - p) return std::nullopt;
  t.begin = p;
  t.end = p + len;
  return t;
}

void der_length(std::vector<unsigned char>& out, std::size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<unsigned char>(len));
    return;
  }
  unsigned char bytes[4];
  int n = 0;
  while (len > 0 && n < 4) {
    bytes[n++] = static_cast<unsigned char>(len & 0xff);
    len >>= 8;
  }
  out.push_back(static_cast<unsigned char>(0x80 | n));
  while (n > 0) out.push_back(bytes[--n]);
}

}  // namespace

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
  // At most two "=" of padding, at the end; no length that leaves 6 bits.
  for (int pad = 0; pad < 2 && !text.empty() && text.back() == '='; ++pad) text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::vector<unsigned char> out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string base64_encode(const std::vector<unsigned char>& data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 0x3f];
  }
  if (i + 1 == data.size()) {
    unsigned v = unsigned{data[i]} << 16;
    out += kB64[(v >> 18) & 0x3f];
    out += kB64[(v >> 12) & 0x3f];
    out += "==";
  } else if (i + 2 == data.size()) {
    unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
    out += kB64[(v >> 18) & 0x3f];
    out += kB64[(v >> 12) & 0x3f];
    out += kB64[(v >> 6) & 0x3f];
    out += '=';
  }
  return out;
}

// spki_from_pkcs1 - RFC 3447 A.1.1 RSAPublicKey -> RFC 5280 SubjectPublicKeyInfo
std::optional<std::vector<unsigned char>> spki_from_pkcs1(const std::vector<unsigned char>& der) {
  auto seq = der_element(der, 0);
  if (!seq || seq->tag != 0x30 || seq->end != der.size()) return std::nullopt;
  auto modulus = der_element(der, seq->begin);
  if (!modulus || modulus->tag != 0x02 || modulus->end == modulus->begin) return std::nullopt;
  auto exponent = der_element(der, modulus->end);
  if (!exponent || exponent->tag != 0x02 || exponent->end != seq->end || exponent->end == exponent->begin)
    return std::nullopt;
  // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
  static const unsigned char kAlg[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                       0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
  std::vector<unsigned char> bit_string;
  bit_string.push_back(0x03);
  der_length(bit_string, der.size() + 1);
  bit_string.push_back(0x00);  // no unused bits
  bit_string.insert(bit_string.end(), der.begin(), der.end());
  std::vector<unsigned char> out;
  out.push_back(0x30);
  der_length(out, sizeof kAlg + bit_string.size());
  out.insert(out.end(), kAlg, kAlg + sizeof kAlg);
  out.insert(out.end(), bit_string.begin(), bit_string.end());
  return out;
}

// prepare_key_record - see the header for what is refused and rewritten
Expected<std::string, std::string> prepare_key_record(std::string_view record) {
  using Err = Unexpected<std::string>;
  if (record.find('\0') != std::string_view::npos) return Err{"key record contains a NUL byte"};
  if (record.size() > kMaxKeyRecord) return Err{"key record longer than " + std::to_string(kMaxKeyRecord) + " octets"};
  auto tags = parse_tag_list(record);
  if (!tags) return Err{"key record syntax: " + tags.error()};

  // RFC 6376 3.6.1 v=: "This tag MUST be the first tag in the record."
  if (tags->get("v") && tags->tags().front().first != "v") return Err{"key record syntax: v= is not the first tag"};
  // p= is REQUIRED; its value is base64 (empty: revoked, for libopendkim).
  auto p = tags->get("p");
  if (!p) return Err{"key record syntax: no p= tag"};
  const std::string key64 = strip_fws(*p);
  if (!key64.empty() && !base64_decode(key64)) return Err{"key record syntax: p= is not base64"};

  auto k = tags->get("k");
  if (k && strip_fws(*k) != "rsa") return std::string(record);
  auto der = base64_decode(key64);
  if (!der) return std::string(record);
  auto spki = spki_from_pkcs1(*der);
  if (!spki) return std::string(record);
  // Same tags, p= re-encoded.
  std::string out;
  for (const auto& [name, value] : tags->tags()) {
    if (!out.empty()) out += "; ";
    out += name;
    out += '=';
    out += name == "p" ? base64_encode(*spki) : value;
  }
  if (out.size() > kMaxKeyRecord) return Err{"key record longer than " + std::to_string(kMaxKeyRecord) + " octets"};
  return out;
}

}  // namespace dmarc::dkim
