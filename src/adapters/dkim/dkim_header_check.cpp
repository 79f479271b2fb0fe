// dkim_header_check.cpp - see dkim_header_check.hpp
#include "adapters/dkim/dkim_header_check.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>

#include "adapters/dkim/dkim_key_record.hpp"
#include "dmarc/core/domain.hpp"

namespace dmarc::dkim {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }


std::string_view name_of(std::string_view field) {
  std::size_t colon = field.find(':');
  std::string_view n = field.substr(0, colon == std::string_view::npos ? 0 : colon);
  while (!n.empty() && is_wsp(n.back())) n.remove_suffix(1);
  return n;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// verify - SIG over DATA with KEY: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376
// 3.3.1) or ed25519 over the SHA-256 hash of DATA (RFC 8463 3).
bool verify(EVP_PKEY* key, bool ed25519, const std::string& data, const std::vector<unsigned char>& sig) {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (ed25519) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), digest, sizeof digest) == 1;
  }
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

}  // namespace

std::string rfc_strip_b(std::string_view field) {
  std::size_t colon = field.find(':');
  if (colon == std::string_view::npos) return std::string(field);
  std::string out(field.substr(0, colon + 1));
  std::size_t pos = colon + 1;
  while (pos <= field.size()) {
    std::size_t semi = field.find(';', pos);
    std::size_t end = semi == std::string_view::npos ? field.size() : semi;
    std::string_view spec = field.substr(pos, end - pos);
    std::size_t eq = spec.find('=');
    if (eq != std::string_view::npos && strip_fws(spec.substr(0, eq)) == "b")
      out.append(spec.substr(0, eq + 1));  // "b=": its value and the whitespace around it go
    else
      out.append(spec);
    if (semi == std::string_view::npos) break;
    out += ';';
    pos = semi + 1;
  }
  return out;
}

std::string library_strip_b(std::string_view field) {
  // libopendkim 2.11 dkim_canon_runheaders(): copy the field, except what
  // follows an "=" whose preceding character is "b", up to the next ";".
  std::string out;
  out.reserve(field.size());
  char in = '\0', last = '\0';
  for (char c : field) {
    if (c == '\0') break;  // it walks a C string
    if (c == ';') in = '\0';
    if (in == 'b') {
      last = c;
      continue;
    }
    if (in == '\0' && c == '=') in = last;
    out += c;
    last = c;
  }
  return out;
}

Canon canon_of(const TagList& tags) {
  Canon out;
  auto c = tags.get("c");
  if (!c) return out;
  std::string v = strip_fws(*c);
  std::size_t slash = v.find('/');
  auto relaxed = [&](std::string_view part, bool& into) {
    if (part == "relaxed") into = true;
    else if (part != "simple") out.valid = false;
  };
  relaxed(std::string_view(v).substr(0, slash), out.header_relaxed);
  if (slash != std::string::npos) relaxed(std::string_view(v).substr(slash + 1), out.body_relaxed);
  return out;
}

bool library_strip_differs(std::string_view field) noexcept {
  if (field.find('\0') != std::string_view::npos) return true;
  std::size_t colon = field.find(':');
  if (colon == std::string_view::npos) return false;
  std::size_t pos = colon + 1;
  while (pos < field.size()) {
    std::size_t semi = field.find(';', pos);
    std::string_view spec = field.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    std::size_t eq = spec.find('=');
    if (eq != std::string_view::npos) {
      std::string_view name = spec.substr(0, eq);
      const bool library_blanks = eq > 0 && name.back() == 'b';
      while (!name.empty() && (is_wsp(name.front()) || name.front() == '\r' || name.front() == '\n')) name.remove_prefix(1);
      while (!name.empty() && (is_wsp(name.back()) || name.back() == '\r' || name.back() == '\n')) name.remove_suffix(1);
      if (library_blanks != (name == "b")) return true;
    }
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return false;
}

std::string canon_header(std::string_view field, bool relaxed) {
  if (!relaxed) return std::string(field);
  // RFC 6376 3.4.2: lower-case name, unfold, WSP runs to one SP, no WSP at
  // the end of the value or around the colon.
  std::size_t colon = field.find(':');
  if (colon == std::string_view::npos) return std::string(field);
  std::string out = ascii_lowercase(name_of(field));
  out += ':';
  bool pending_sp = false;
  bool started = false;
  for (char c : field.substr(colon + 1)) {
    if (c == '\r' || c == '\n') continue;
    if (is_wsp(c)) {
      pending_sp = started;
      continue;
    }
    if (pending_sp) out += ' ';
    pending_sp = false;
    started = true;
    out += c;
  }
  return out;
}

HeaderCheck check_header_signature(const std::vector<std::string_view>& fields, std::size_t sig_index,
                                   const TagList& tags, std::string_view key_record) {
  if (sig_index >= fields.size()) return HeaderCheck::Unable;
  auto a = tags.get("a"), h = tags.get("h"), b = tags.get("b");
  if (!a || !h || !b) return HeaderCheck::Unable;
  const std::string alg = strip_fws(*a);
  if (alg != "rsa-sha256" && alg != "ed25519-sha256") return HeaderCheck::Unable;
  const bool ed25519 = alg == "ed25519-sha256";
  const Canon canon = canon_of(tags);
  if (!canon.valid) return HeaderCheck::Unable;
  const bool relaxed = canon.header_relaxed;

  // RFC 6376 5.4.2: each name of h= takes the last instance not yet taken;
  // a name with no instance left contributes nothing.
  std::string data;
  std::vector<bool> used(fields.size(), false);
  used[sig_index] = true;
  std::string hlist = strip_fws(*h);
  std::size_t pos = 0;
  while (pos <= hlist.size()) {
    std::size_t colon = hlist.find(':', pos);
    std::string_view name = std::string_view(hlist).substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    for (std::size_t j = fields.size(); j-- > 0;) {
      if (used[j] || !ascii_iequals(name_of(fields[j]), name)) continue;
      used[j] = true;
      data += canon_header(fields[j], relaxed);
      data += "\r\n";
      break;
    }
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  // RFC 6376 3.7: the signature field last, b= empty, no final CRLF.
  std::string self = canon_header(rfc_strip_b(fields[sig_index]), relaxed);
  while (!relaxed && !self.empty() && (self.back() == '\r' || self.back() == '\n')) self.pop_back();
  data += self;

  auto sig = base64_decode(strip_fws(*b));
  if (!sig || sig->empty()) return HeaderCheck::Unable;
  auto key_tags = parse_tag_list(key_record);
  if (!key_tags || !key_tags->get("p")) return HeaderCheck::Unable;
  std::string k = key_tags->get("k") ? strip_fws(*key_tags->get("k")) : std::string("rsa");
  if ((k == "ed25519") != ed25519) return HeaderCheck::Unable;
  auto p = base64_decode(strip_fws(*key_tags->get("p")));
  if (!p || p->empty()) return HeaderCheck::Unable;
  Pkey key;
  if (ed25519) {
    if (p->size() != 32) return HeaderCheck::Unable;
    key.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, p->data(), p->size()));
  } else {
    const unsigned char* der = p->data();
    key.reset(d2i_PUBKEY(nullptr, &der, static_cast<long>(p->size())));
    if (key && EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) return HeaderCheck::Unable;
  }
  if (!key) return HeaderCheck::Unable;
  return verify(key.get(), ed25519, data, *sig) ? HeaderCheck::Pass : HeaderCheck::Fail;
}

}  // namespace dmarc::dkim
