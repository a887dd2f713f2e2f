#include "spec/document_splitter.h"

namespace ea {
namespace {

// `---` or `...` at column 0, alone or followed by white space (YAML's document markers).
bool is_marker(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n';
}

enum class LineKind { Blank, Directive, Content };

LineKind classify(std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || line[first] == '#') return LineKind::Blank;
  return line[0] == '%' ? LineKind::Directive : LineKind::Content;
}

}  // namespace

std::vector<DocumentText> split_documents(std::string_view text) {
  std::vector<DocumentText> documents;
  size_t chunk_begin = 0;
  int chunk_line = 0;
  bool has_content = false;
  bool has_directive = false;
  auto close_chunk = [&](size_t end, size_t next_begin, int next_line) {
    if (has_content) documents.push_back({text.substr(chunk_begin, end - chunk_begin), chunk_line});
    // Directives belong to the document after them: keep the chunk open across the boundary.
    if (has_content || !has_directive) {
      chunk_begin = next_begin;
      chunk_line = next_line;
      has_directive = false;
    }
    has_content = false;
  };
  int line_number = 0;
  for (size_t begin = 0; begin < text.size(); ++line_number) {
    size_t newline = text.find('\n', begin);
    size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    std::string_view line = text.substr(begin, end - begin);
    if (is_marker(line, "---")) {
      close_chunk(begin, begin, line_number);
      has_content = true;  // `---` itself starts a (possibly empty) document
    } else if (is_marker(line, "...")) {
      close_chunk(end, end, line_number + 1);
    } else {
      LineKind kind = classify(line);
      has_content |= kind == LineKind::Content;
      has_directive |= kind == LineKind::Directive;
    }
    begin = end;
  }
  close_chunk(text.size(), text.size(), line_number);
  return documents;
}

}  // namespace ea
