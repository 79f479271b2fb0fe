// bench_sign.cpp - DKIM-sign the generated corpus with libopendkim
//
// USAGE
//   bench-sign < LIST
//
// DESCRIPTION
//   Each line of LIST is "IN<TAB>OUT<TAB>SIGNATURE[ SIGNATURE...]" with
//   SIGNATURE = DOMAIN:SELECTOR:KEYFILE:ALG:HEADERCANON/BODYCANON, ALG
//   rsa-sha256 or ed25519-sha256, canonicalizations simple or relaxed.
//   KEYFILE is a PEM private key (openssl genpkey). Every signature is
//   computed over IN as it is (so a message signed twice, RSA and Ed25519,
//   carries two independent signatures, as dual-signing senders do); the
//   DKIM-Signature fields go on top and OUT is written with CRLF line ends.
//   Header fields signed: the ones senders commonly sign (From, To, Cc,
//   Subject, Date, Message-ID, MIME and List fields, Reply-To, In-Reply-To,
//   References), not Received. No x= (signatures do not expire).
//
// EXIT STATUS
//   0, or 1 with a message naming the line on the first failure.
#define _Bool bool  // <opendkim/dkim.h> uses C99 _Bool: the same one-octet type
#include <opendkim/dkim.h>
#undef _Bool

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string to_crlf(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
    out += s[i];
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

dkim_canon_t canon(const std::string& c) {
  if (c == "simple") return DKIM_CANON_SIMPLE;
  if (c == "relaxed") return DKIM_CANON_RELAXED;
  throw std::runtime_error("canonicalization must be simple or relaxed, not " + c);
}

// header_fields - the header of MSG (CRLF) as whole fields, folds kept,
// without their final CRLF; BODY gets the rest.
std::vector<std::string> header_fields(const std::string& msg, std::string& body) {
  std::vector<std::string> fields;
  std::size_t end_of_header = msg.find("\r\n\r\n");
  std::string head = end_of_header == std::string::npos ? msg + "\r\n" : msg.substr(0, end_of_header + 2);
  body = end_of_header == std::string::npos ? "" : msg.substr(end_of_header + 4);
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    while (end != std::string::npos && end + 2 < head.size() && (head[end + 2] == ' ' || head[end + 2] == '\t'))
      end = head.find("\r\n", end + 2);
    if (end == std::string::npos) end = head.size();
    fields.push_back(head.substr(pos, end - pos));
    pos = end + 2;
  }
  return fields;
}

class Signer {
 public:
  Signer() : lib_(dkim_init(nullptr, nullptr)) {
    if (!lib_) throw std::runtime_error("dkim_init failed");
    static const char* sign_headers[] = {"from", "to", "cc", "subject", "date", "message-id", "mime-version",
                                         "content-type", "content-transfer-encoding", "reply-to", "in-reply-to",
                                         "references", "list-id", "list-unsubscribe", nullptr};
    if (dkim_options(lib_, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign_headers, sizeof(char**)) != DKIM_STAT_OK)
      throw std::runtime_error("cannot set the signed header fields");
  }
  ~Signer() { dkim_close(lib_); }

  // signature_field - "DKIM-Signature: ..." (CRLF folds, no final CRLF).
  std::string signature_field(const std::string& msg, const std::string& spec, unsigned long job) {
    auto p = split(spec, ':');
    if (p.size() != 5) throw std::runtime_error("signature must be DOMAIN:SELECTOR:KEYFILE:ALG:HC/BC, not " + spec);
    const std::string& domain = p[0];
    const std::string& selector = p[1];
    std::string& key = key_of(p[2]);
    dkim_alg_t alg;
    if (p[3] == "rsa-sha256") alg = DKIM_SIGN_RSASHA256;
    else if (p[3] == "ed25519-sha256") alg = DKIM_SIGN_ED25519SHA256;
    else throw std::runtime_error("algorithm must be rsa-sha256 or ed25519-sha256, not " + p[3]);
    auto c = split(p[4], '/');
    if (c.size() != 2) throw std::runtime_error("canonicalization must be HEADER/BODY, not " + p[4]);

    const std::string id = "bench-" + std::to_string(job);
    DKIM_STAT st = DKIM_STAT_OK;
    DKIM* d = dkim_sign(lib_, reinterpret_cast<const unsigned char*>(id.c_str()), nullptr,
                        reinterpret_cast<dkim_sigkey_t>(key.data()), reinterpret_cast<const unsigned char*>(selector.c_str()),
                        reinterpret_cast<const unsigned char*>(domain.c_str()), canon(c[0]), canon(c[1]), alg, -1, &st);
    if (!d) throw std::runtime_error("dkim_sign failed, status " + std::to_string(st));
    std::string body;
    auto fields = header_fields(msg, body);
    std::string out;
    try {
      for (auto& f : fields) {
        if (dkim_header(d, reinterpret_cast<unsigned char*>(f.data()), f.size()) != DKIM_STAT_OK)
          throw std::runtime_error("dkim_header refused: " + f.substr(0, 40));
      }
      if (dkim_eoh(d) != DKIM_STAT_OK) throw std::runtime_error("dkim_eoh failed");
      if (!body.empty() && dkim_body(d, reinterpret_cast<unsigned char*>(body.data()), body.size()) != DKIM_STAT_OK)
        throw std::runtime_error("dkim_body failed");
      if ((st = dkim_eom(d, nullptr)) != DKIM_STAT_OK) throw std::runtime_error("dkim_eom failed, status " + std::to_string(st));
      unsigned char* sig = nullptr;
      std::size_t len = 0;
      const std::string name = "DKIM-Signature";
      if (dkim_getsighdr_d(d, name.size() + 2, &sig, &len) != DKIM_STAT_OK || !sig)
        throw std::runtime_error("dkim_getsighdr_d failed");
      out = to_crlf(name + ": " + std::string(reinterpret_cast<char*>(sig), len));
    } catch (...) {
      dkim_free(d);
      throw;
    }
    dkim_free(d);
    return out;
  }

 private:
  std::string& key_of(const std::string& path) {
    auto it = keys_.find(path);
    if (it == keys_.end()) it = keys_.emplace(path, read_file(path)).first;
    return it->second;
  }

  DKIM_LIB* lib_;
  std::map<std::string, std::string> keys_;
};

}  // namespace

int main() {
  try {
    Signer signer;
    std::string line;
    unsigned long lineno = 0;
    while (std::getline(std::cin, line)) {
      ++lineno;
      if (line.empty() || line[0] == '#') continue;
      try {
        auto f = split(line, '\t');
        if (f.size() != 3) throw std::runtime_error("expected IN<TAB>OUT<TAB>SIGNATURES");
        const std::string msg = to_crlf(read_file(f[0]));
        std::string top;
        for (const auto& spec : split(f[2], ' ')) {
          if (spec.empty()) continue;
          top += signer.signature_field(msg, spec, lineno) + "\r\n";
        }
        std::ofstream out(f[1], std::ios::binary | std::ios::trunc);
        out << top << msg;
        if (!out) throw std::runtime_error("cannot write " + f[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-sign: line %lu: %s\n", lineno, e.what());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-sign: %s\n", e.what());
    return 1;
  }
  return 0;
}
