// corpus.cpp - load the manifest and the messages of a corpus
#include "corpus.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bench {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// next_line - the line at POS without its line end (LF or CRLF); POS moves
// past it. Returns false at the end of TEXT.
bool next_line(const std::string& text, std::size_t& pos, std::string& line) {
  if (pos >= text.size()) return false;
  std::size_t nl = text.find('\n', pos);
  std::size_t end = nl == std::string::npos ? text.size() : nl;
  std::size_t stop = end > pos && text[end - 1] == '\r' ? end - 1 : end;
  line.assign(text, pos, stop - pos);
  pos = nl == std::string::npos ? text.size() : nl + 1;
  return true;
}

}  // namespace

void parse_message(const std::string& raw, Message& out) {
  out.headers.clear();
  out.body.clear();
  std::size_t pos = 0;
  std::string line;
  bool in_body = false;
  while (!in_body && next_line(raw, pos, line)) {
    if (line.empty()) {
      in_body = true;
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !out.headers.empty()) {
      // Postfix joins the lines of a folded field with a bare LF.
      out.headers.back().value += '\n';
      out.headers.back().value += line;
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) {
      // Not a header field: Postfix would end the header here.
      in_body = true;
      out.body += line;
      out.body += "\r\n";
      break;
    }
    std::size_t name_end = colon;
    while (name_end > 0 && (line[name_end - 1] == ' ' || line[name_end - 1] == '\t')) --name_end;
    out.headers.push_back({line.substr(0, name_end), line.substr(colon + 1)});
  }
  while (next_line(raw, pos, line)) {
    out.body += line;
    out.body += "\r\n";
  }
}

Corpus load_corpus(const std::string& dir) {
  Corpus corpus;
  const std::string manifest = dir + "/manifest.tsv";
  const std::string text = read_all(manifest);
  std::size_t pos = 0;
  std::string line;
  int lineno = 0;
  while (next_line(text, pos, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, '\t');
    if (f.size() != 8) {
      throw std::runtime_error(manifest + ":" + std::to_string(lineno) + ": expected 8 tab-separated columns, got " +
                               std::to_string(f.size()));
    }
    if (corpus.sessions.empty() || corpus.sessions.back().id != f[0]) {
      Session s;
      s.id = f[0];
      s.client_ip = f[1];
      s.client_name = f[2];
      s.helo = f[3];
      corpus.sessions.push_back(std::move(s));
    }
    Message m;
    m.mail_from = f[4];
    m.rcpts = split(f[5], ',');
    m.file = f[6];
    m.expect = f[7];
    if (m.mail_from.empty() || m.mail_from.front() != '<' || m.mail_from.back() != '>') {
      throw std::runtime_error(manifest + ":" + std::to_string(lineno) + ": MAIL FROM must be in angle brackets");
    }
    const std::string raw = read_all(dir + "/" + m.file);
    m.size = raw.size();
    parse_message(raw, m);
    corpus.sessions.back().messages.push_back(corpus.messages.size());
    corpus.messages.push_back(std::move(m));
  }
  if (corpus.messages.empty()) throw std::runtime_error(manifest + ": no messages");
  return corpus;
}

}  // namespace bench
