// corpus.hpp - the replayed mail: SMTP sessions, their envelopes and messages
//
// A corpus directory holds manifest.tsv and the .eml files it names. One
// manifest line is one message; consecutive lines with the same session id
// are one SMTP session (one client, one milter connection, several
// messages). Columns, tab-separated, '#' starts a comment line:
//
//   session  client_ip  client_name  helo  <mail_from>  <rcpt>[,<rcpt>]  file  expect
//
// expect is the DMARC result the generator built the message for (pass,
// fail, none); the load generator compares it with the dmarc= of each
// Authentication-Results field a milter adds.
//
// Messages are parsed once, as Postfix hands them to a milter: header
// values keep the text after the colon (leading space included), folded
// lines joined by LF without CR; the body has CRLF line ends.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace bench {

struct Header {
  std::string name;
  std::string value;  // after the colon, leading white space kept, folds as "\n"
};

struct Message {
  std::string file;
  std::string mail_from;  // with angle brackets, "<>" for the null sender
  std::vector<std::string> rcpts;
  std::vector<Header> headers;
  std::string body;  // CRLF line ends
  std::string expect;
  std::size_t size = 0;  // octets on disk
};

struct Session {
  std::string id;
  std::string client_ip;
  std::string client_name;
  std::string helo;
  std::vector<std::size_t> messages;  // indexes into Corpus::messages
};

struct Corpus {
  std::vector<Message> messages;
  std::vector<Session> sessions;
};

// load_corpus - read DIR/manifest.tsv and every message it names.
// Throws std::runtime_error naming the file and line.
Corpus load_corpus(const std::string& dir);

// parse_message - split raw message text into header fields and body.
void parse_message(const std::string& raw, Message& out);

}  // namespace bench
