// NAME
//   dkim_header_check - our own check of a DKIM header signature where
//   libopendkim hashes the DKIM-Signature field wrongly
// STANDARDS
//   RFC 6376 3.2 (tag-list: FWS around "=" and ";"), 3.4.1 and 3.4.2
//   (simple and relaxed header canonicalization), 3.5 b=, 3.7 (the
//   signature field is hashed with the value of b= deleted, surrounding
//   whitespace included), 5.4.2 (h= picks instances from the bottom up);
//   RFC 8463 3 (ed25519-sha256 signs the SHA-256 hash).
// DESCRIPTION
//   libopendkim 2.11 deletes the value of b= before hashing the field by
//   watching for "=" right after a "b" (dkim-canon.c, dkim_canon_runheaders).
//   With FWS between a tag name and "=" ("b = ..."), which RFC 6376 3.2
//   allows, it keeps the b= value in the hash, so a valid signature fails;
//   the value of any other tag whose name ends in "b" ("xb=...") it deletes
//   wrongly. Every other step (tag parsing, key, body hash) it does right.
//
//   library_strip_differs() tells whether FIELD is such a field: it runs
//   libopendkim's rule and the RFC's on it and compares the results.
//   check_header_signature() then verifies the header signature of such a
//   field itself: the fields named by h= (5.4.2), canonicalized per c=, the
//   signature field with b= deleted, hashed with SHA-256, and the b= value
//   verified with the key record's p= (rsa-sha256 or ed25519-sha256 only;
//   rsa-sha1 never passes anyway, RFC 8301). The body hash stays
//   libopendkim's.
// SECURITY
//   All input is untrusted (the message and the key record); nothing here
//   reads past a buffer, and any malformed piece is Unable, never Pass.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adapters/dkim/dkim_tags.hpp"

namespace dmarc::dkim {

// rfc_strip_b - FIELD ("DKIM-Signature:value") with the value of its b=
// tag and the whitespace around that value deleted (RFC 6376 3.7).
std::string rfc_strip_b(std::string_view field);
// library_strip_b - FIELD as libopendkim 2.11 strips it (see DESCRIPTION).
std::string library_strip_b(std::string_view field);
// library_strip_differs - whether the two differ, without building them
// (once per DKIM-Signature on the message path): libopendkim blanks a
// tag's value when the character before its "=" is "b", RFC 6376 3.7 when
// the tag's name is "b"; a NUL cuts libopendkim's copy short.
bool library_strip_differs(std::string_view field) noexcept;

enum class HeaderCheck { Pass, Fail, Unable };

// check_header_signature - FIELDS are all header fields of the message in
// order, each "Name:value" with CRLF folding and no final line end; the
// signature is FIELDS[SIG_INDEX], its tag-list TAGS; KEY_RECORD the key
// record as served (p= base64 of a SubjectPublicKeyInfo, or the raw 32
// octets for k=ed25519).
HeaderCheck check_header_signature(const std::vector<std::string_view>& fields, std::size_t sig_index,
                                   const TagList& tags, std::string_view key_record);

// Canon - c= (RFC 6376 3.5): "simple" when absent, "relaxed" or "simple"
// for each part; valid false for any other value.
struct Canon {
  bool header_relaxed = false, body_relaxed = false, valid = true;
};
Canon canon_of(const TagList& tags);

// canon_header - one field canonicalized (3.4.1 simple, 3.4.2 relaxed),
// without the final CRLF.
std::string canon_header(std::string_view field, bool relaxed);

}  // namespace dmarc::dkim
