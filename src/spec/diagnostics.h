// Collects every problem found in a spec text so one run reports them all, in file order.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "spec/spec.h"

namespace ea {

// User text made safe to echo in a one-line message: control bytes escaped, long text cut.
std::string printable(std::string_view text);

class Diagnostics {
 public:
  // `field` is the dotted path of the offending field ("spec.programs[0].type"); may be empty.
  void add(SourcePos pos, std::string field, std::string message);
  bool empty() const { return problems_.empty(); }
  size_t size() const { return problems_.size() + dropped_; }
  // One line per problem, "FILE:LINE:COL: field 'PATH': MESSAGE", sorted by position; very long
  // lists are cut with a count of what was left out.
  std::string render() const;

 private:
  struct Problem {
    SourcePos pos;
    std::string field;
    std::string message;
  };
  std::vector<Problem> problems_;
  size_t dropped_ = 0;  // beyond the storage cap
};

}  // namespace ea
