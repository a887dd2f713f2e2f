// Splits a multi-document YAML text at its `---` / `...` markers, so each document is parsed on
// its own: a syntax error in one still lets the others be checked, and each Spec keeps its text.
#pragma once
#include <string_view>
#include <vector>

namespace ea {

struct DocumentText {
  std::string_view text;  // from its `---` line (if any) to the next document
  int line_offset = 0;    // lines before it in the whole text
};

// Documents with content, in order; chunks holding only comments and blank lines are left out,
// directives (`%YAML 1.2`) stay with the document they introduce.
std::vector<DocumentText> split_documents(std::string_view text);

}  // namespace ea
