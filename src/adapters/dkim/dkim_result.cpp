// dkim_result.cpp - signature facts to an RFC 8601 result (see dkim_result.hpp)
#include "adapters/dkim/dkim_result.hpp"

#include "adapters/dkim/dkim_handles.hpp"

namespace dmarc::dkim {

// sigerror_reason - our wording for a DKIM_SIGERROR_* code
std::string sigerror_reason(int sig_error) {
  switch (sig_error) {
    // RFC 6376 3.5 v=: "1" is the only version; 6.1.1: anything else is PERMFAIL.
    case DKIM_SIGERROR_VERSION: return "unsupported signature version (v= is not 1)";
    case DKIM_SIGERROR_MISSING_V: return "signature has no v= tag";
    case DKIM_SIGERROR_EMPTY_V: return "signature has an empty v= tag";
    // RFC 6376 3.5 i=: its domain must be d= or a subdomain of it.
    case DKIM_SIGERROR_DOMAIN: return "i= is not in the d= domain";
    case DKIM_SIGERROR_SUBDOMAIN: return "key has t=s but i= is a subdomain of d=";
    // RFC 6376 3.5 x=, t=.
    case DKIM_SIGERROR_EXPIRED: return "signature expired (x=)";
    case DKIM_SIGERROR_FUTURE: return "signature timestamp is in the future (t=)";
    case DKIM_SIGERROR_TIMESTAMPS: return "x= is not later than t=";
    case DKIM_SIGERROR_INVALID_HC: return "unknown header canonicalization (c=)";
    case DKIM_SIGERROR_INVALID_BC: return "unknown body canonicalization (c=)";
    case DKIM_SIGERROR_MISSING_A: return "signature has no a= tag";
    case DKIM_SIGERROR_INVALID_A: return "unsupported signature algorithm (a=)";
    case DKIM_SIGERROR_MISSING_H: return "signature has no h= tag";
    case DKIM_SIGERROR_EMPTY_H: return "signature has an empty h= tag";
    // RFC 6376 6.1.1: From must be among the signed header fields.
    case DKIM_SIGERROR_INVALID_H: return "h= does not include From";
    case DKIM_SIGERROR_INVALID_L: return "invalid l= value";
    case DKIM_SIGERROR_TOOLARGE_L: return "l= is larger than the body";
    case DKIM_SIGERROR_INVALID_Q: return "unsupported key query method (q=)";
    case DKIM_SIGERROR_INVALID_QO: return "unsupported key query option (q=)";
    case DKIM_SIGERROR_MISSING_D: return "signature has no d= tag";
    case DKIM_SIGERROR_EMPTY_D: return "signature has an empty d= tag";
    case DKIM_SIGERROR_MISSING_S: return "signature has no s= tag";
    case DKIM_SIGERROR_EMPTY_S: return "signature has an empty s= tag";
    case DKIM_SIGERROR_MISSING_B: return "signature has no b= tag";
    case DKIM_SIGERROR_EMPTY_B: return "signature has an empty b= tag";
    case DKIM_SIGERROR_CORRUPT_B: return "b= is not valid base64";
    case DKIM_SIGERROR_MISSING_BH: return "signature has no bh= tag";
    case DKIM_SIGERROR_EMPTY_BH: return "signature has an empty bh= tag";
    case DKIM_SIGERROR_CORRUPT_BH: return "bh= is not valid base64";
    // RFC 6376 6.1.2 steps 2-6: key retrieval and key record checks.
    case DKIM_SIGERROR_NOKEY: return "no key record";
    case DKIM_SIGERROR_DNSSYNTAX: return "key record syntax error";
    case DKIM_SIGERROR_KEYFAIL: return "key lookup failed";
    case DKIM_SIGERROR_MULTIREPLY: return "more than one key record";
    case DKIM_SIGERROR_KEYVERSION: return "key record v= is not DKIM1";
    case DKIM_SIGERROR_KEYUNKNOWNHASH: return "key record h= lists no known hash";
    case DKIM_SIGERROR_KEYHASHMISMATCH: return "key record h= does not allow the signature's hash";
    case DKIM_SIGERROR_NOTEMAILKEY: return "key record s= does not include email";
    case DKIM_SIGERROR_KEYTYPEMISSING: return "key record has no key type";
    case DKIM_SIGERROR_KEYTYPEUNKNOWN: return "unknown key type (k=)";
    case DKIM_SIGERROR_KEYREVOKED: return "key revoked (empty p=)";
    case DKIM_SIGERROR_KEYDECODE: return "key p= could not be decoded";
    case DKIM_SIGERROR_KEYTOOSMALL: return "key too small";
    case DKIM_SIGERROR_BADSIG: return "signature did not verify";
    case DKIM_SIGERROR_MBSFAILED: return "a must-be-signed header field is not signed";
    case DKIM_SIGERROR_CONDITIONAL: return "conditional signature not satisfied";
    case DKIM_SIGERROR_CONDLOOP: return "conditional signature loop";
    default: break;
  }
  const char* s = dkim_sig_geterrorstr(sig_error);
  return s ? std::string("libopendkim: ") + s : std::string("unknown signature error");
}

namespace {

Classification make(AuthResult r, std::string reason) {
  Classification c;
  c.result = r;
  c.reason = std::move(reason);
  return c;
}

// key_failure - RFC 6376 6.1.2 step 3: a key query that could not be
// answered is TEMPFAIL; one we refused or that was malformed is PERMFAIL.
// The temp/perm decision is dns_error_kind()'s, the project's only one.
Classification key_failure(const std::optional<KeyLookup>& lookup) {
  if (!lookup) return make(AuthResult::TempError, "key lookup failed");
  if (!lookup->refused.empty()) return make(AuthResult::PermError, lookup->refused);
  std::string why = lookup->why.empty() ? std::string(to_token(lookup->status)) : lookup->why;
  switch (dns_error_kind(lookup->status)) {
    case DnsErrorKind::Temporary: return make(AuthResult::TempError, "key lookup failed: " + why);
    case DnsErrorKind::Permanent: return make(AuthResult::PermError, "key lookup failed: " + why);
    case DnsErrorKind::None: break;
  }
  // An answer libopendkim could not use although the resolver had one.
  return make(AuthResult::PermError, "key record unusable");
}

bool is_rsa(int alg) { return alg == DKIM_SIGN_RSASHA1 || alg == DKIM_SIGN_RSASHA256; }

std::string small_key(unsigned bits, unsigned min_bits) {
  return "RSA key of " + std::to_string(bits) + " bits is below " + std::to_string(min_bits) +
         " (RFC 8301 3.2)";
}

}  // namespace

// classify_signature - the one mapping (order in dkim_result.hpp)
Classification classify_signature(const SignatureFacts& f) {
  if (f.ignored)
    return make(AuthResult::Neutral,
                "not checked: more than " + std::to_string(f.max_signatures) + " signatures");
  // RFC 6376 3.2: an invalid tag-list (e.g. a duplicate tag) invalidates it.
  if (f.syntax_error) return make(AuthResult::PermError, "signature syntax: " + *f.syntax_error);
  // RFC 6376 3.5 x= (6.1.1: expired is PERMFAIL); t= in the future MAY be ignored.
  if (f.clock_error) return make(AuthResult::PermError, *f.clock_error);

  if (!f.in_library) {
    if (f.library_failure) return make(AuthResult::TempError, "not verified: " + *f.library_failure);
    return make(AuthResult::PermError, "signature not processed by libopendkim");
  }

  // RFC 6376 6.1.2: a key unsuitable for the a= algorithm and k= type is
  // PERMFAIL (inappropriate key algorithm). libopendkim 2.11 goes by a=
  // alone and would verify an RSA signature with a key marked k=ed25519.
  if (f.key_lookup && (f.key_lookup->key_type == "rsa" || f.key_lookup->key_type == "ed25519")) {
    bool rsa_key = f.key_lookup->key_type == "rsa";
    if ((is_rsa(f.alg) && !rsa_key) || (f.alg == DKIM_SIGN_ED25519SHA256 && rsa_key))
      return make(AuthResult::PermError, "key type k=" + f.key_lookup->key_type + " does not suit a=");
  }

  const bool bh_mismatch = f.bh == DKIM_SIGBH_MISMATCH;
  switch (f.sig_error) {
    case DKIM_SIGERROR_OK:
    case DKIM_SIGERROR_UNKNOWN: break;
    case DKIM_SIGERROR_KEYFAIL: return key_failure(f.key_lookup);
    case DKIM_SIGERROR_NOKEY: {
      // RFC 6376 6.1.2 step 3: NXDOMAIN or no TXT record is PERMFAIL (no key).
      std::string why = "no key record";
      if (f.key_lookup && f.key_lookup->status != DnsStatus::Ok)
        why += " (" + std::string(to_token(f.key_lookup->status)) + ")";
      return make(AuthResult::PermError, why);
    }
    case DKIM_SIGERROR_BADSIG:
      // RFC 6376 6.1.3: body hash or signature mismatch is a failure.
      return make(AuthResult::Fail, bh_mismatch ? "body hash mismatch" : "signature did not verify");
    case DKIM_SIGERROR_KEYTOOSMALL:
      if (bh_mismatch) return make(AuthResult::Fail, "body hash mismatch");
      return make(AuthResult::Policy, small_key(f.key_bits, f.min_rsa_bits));
    default: return make(AuthResult::PermError, sigerror_reason(f.sig_error));
  }

  // Undecided because libopendkim failed (no memory, internal error): try
  // again later rather than call the signature bad.
  if (f.library_failure && (f.flags & DKIM_SIGFLAG_PROCESSED) == 0)
    return make(AuthResult::TempError, "not verified: " + *f.library_failure);
  if (bh_mismatch) return make(AuthResult::Fail, "body hash mismatch");
  if ((f.flags & DKIM_SIGFLAG_PASSED) == 0 || f.bh != DKIM_SIGBH_MATCH)
    return make(AuthResult::Fail, "signature did not verify");
  // RFC 8301 3.1: rsa-sha1 signatures MUST NOT be considered valid.
  if (f.alg == DKIM_SIGN_RSASHA1) return make(AuthResult::Policy, "rsa-sha1 is not accepted (RFC 8301 3.1)");
  // RFC 8301 3.2: RSA keys under 1024 bits MUST NOT be considered valid.
  if (is_rsa(f.alg) && f.key_bits < f.min_rsa_bits) return make(AuthResult::Policy, small_key(f.key_bits, f.min_rsa_bits));
  if (f.alg != DKIM_SIGN_RSASHA256 && f.alg != DKIM_SIGN_ED25519SHA256)
    return make(AuthResult::PermError, "unsupported signature algorithm");
  // RFC 6376 8.2: content after the signed length is not vouched for by
  // the signer; such a signature is signed but not acceptable here.
  if (f.unsigned_trailer) return make(AuthResult::Policy, "unsigned content after l=");
  return make(AuthResult::Pass, "");
}

}  // namespace dmarc::dkim
