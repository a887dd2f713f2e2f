#include "spec/yaml_load.h"

#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace ea {
namespace {

// Remembers where the first node of a document starts.
class FirstMark : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> mark;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& at, YAML::anchor_t) override { remember(at); }
  void OnAlias(const YAML::Mark& at, YAML::anchor_t) override { remember(at); }
  void OnScalar(const YAML::Mark& at, const std::string&, YAML::anchor_t, const std::string&) override { remember(at); }
  void OnSequenceStart(const YAML::Mark& at, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    remember(at);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& at, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    remember(at);
  }
  void OnMapEnd() override {}

 private:
  void remember(const YAML::Mark& at) {
    if (!mark) mark = at;
  }
};

}  // namespace

YAML::Node load_document(const std::string& text) {
  YAML::Node document = YAML::Load(text);
  // yaml-cpp stops at a token it cannot place and reports the document so far; a second document
  // then "starts" at that token. The text holds one document, so any second one is that leftover.
  std::istringstream in(text);
  YAML::Parser parser(in);
  FirstMark ignored, leftover;
  parser.HandleNextDocument(ignored);
  if (parser.HandleNextDocument(leftover) && leftover.mark) {
    const YAML::Mark& at = *leftover.mark;
    std::string what = at.pos >= 0 && static_cast<size_t>(at.pos) < text.size()
                           ? fmt::format("unexpected '{}' here", text[static_cast<size_t>(at.pos)])
                           : std::string("unexpected text here");
    throw YAML::ParserException(at, what);
  }
  return document;
}

}  // namespace ea
