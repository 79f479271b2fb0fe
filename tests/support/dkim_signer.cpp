// dkim_signer.cpp - sign test messages with libopendkim
#include "dkim_signer.hpp"

// <opendkim/dkim.h> declares functions with C99 _Bool; C++ bool is the
// same one-octet type on our ABIs.
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace dmarc::test {

namespace {
std::string crlf(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
    out += s[i];
  }
  return out;
}
}  // namespace

std::string dkim_sign_message(const std::string& message, const std::string& domain, const std::string& selector,
                              const std::string& key_file, bool ed25519, long length) {
  std::ifstream kf(key_file);
  if (!kf) throw std::runtime_error("cannot read key " + key_file);
  std::stringstream ks;
  ks << kf.rdbuf();
  std::string key = ks.str();
  std::string msg = crlf(message);
  std::size_t split = msg.find("\r\n\r\n");
  std::string head = split == std::string::npos ? msg : msg.substr(0, split + 2);
  std::string body = split == std::string::npos ? "" : msg.substr(split + 4);

  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (!lib) throw std::runtime_error("dkim_init");
  DKIM_STAT st = DKIM_STAT_OK;
  if (length >= 0) {
    unsigned int flags = DKIM_LIBFLAGS_SIGNLEN;
    (void)dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  }
  DKIM* d = dkim_sign(lib, reinterpret_cast<const unsigned char*>("test"), nullptr,
                      reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key.c_str())),
                      reinterpret_cast<const unsigned char*>(selector.c_str()),
                      reinterpret_cast<const unsigned char*>(domain.c_str()), DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                      ed25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, length, &st);
  if (!d) {
    dkim_close(lib);
    throw std::runtime_error("dkim_sign: " + std::to_string(st));
  }
  // One call per header field, without the final CRLF (folding kept).
  std::size_t pos = 0;
  std::vector<std::string> fields;
  while (pos < head.size()) {
    std::size_t end = pos;
    for (;;) {
      end = head.find("\r\n", end);
      if (end == std::string::npos) end = head.size();
      if (end + 2 < head.size() && (head[end + 2] == ' ' || head[end + 2] == '\t')) {
        end += 2;
        continue;
      }
      break;
    }
    fields.push_back(head.substr(pos, end - pos));
    pos = end + 2;
  }
  for (auto& f : fields) st = dkim_header(d, reinterpret_cast<unsigned char*>(f.data()), f.size());
  st = dkim_eoh(d);
  if (!body.empty()) st = dkim_body(d, reinterpret_cast<unsigned char*>(body.data()), body.size());
  st = dkim_eom(d, nullptr);
  unsigned char* sig = nullptr;
  std::size_t len = 0;
  const std::string name = "DKIM-Signature";
  DKIM_STAT gs = dkim_getsighdr_d(d, name.size() + 2, &sig, &len);
  std::string out;
  if (st == DKIM_STAT_OK && gs == DKIM_STAT_OK && sig) out = name + ": " + std::string(reinterpret_cast<char*>(sig), len);
  dkim_free(d);
  dkim_close(lib);
  if (out.empty()) throw std::runtime_error("signing failed: " + std::to_string(st) + "/" + std::to_string(gs));
  // libopendkim folds with LF: make it CRLF like the rest.
  return crlf(out) + "\r\n" + msg;
}

}  // namespace dmarc::test
