// dkim_signer.hpp - sign test messages with libopendkim (test code only)
//
// dkim_sign_message() returns MESSAGE with a DKIM-Signature field on top,
// signed by DOMAIN/SELECTOR with the PEM private key in KEY_FILE (RSA or
// Ed25519), relaxed/relaxed, over the whole body (or, with LENGTH >= 0,
// the first LENGTH canonicalized octets, l=). MESSAGE may use LF or
// CRLF line ends; the result uses CRLF. Throws std::runtime_error.
#pragma once

#include <string>

namespace dmarc::test {

std::string dkim_sign_message(const std::string& message, const std::string& domain, const std::string& selector,
                              const std::string& key_file, bool ed25519 = false, long length = -1);

}  // namespace dmarc::test
