// Loads one YAML document with yaml-cpp 0.7, refusing what that version would silently drop.
#pragma once
#include <string>

#include <yaml-cpp/yaml.h>

namespace ea {

// Like YAML::Load, but a token yaml-cpp cannot place (a stray ',' at block level, say) is a
// YAML::ParserException at its position instead of a document silently read as empty; that same
// input makes YAML::LoadAll loop forever (yaml-cpp#1040), so never call LoadAll on untrusted
// text. `text` must hold one document (see document_splitter.h).
YAML::Node load_document(const std::string& text);

}  // namespace ea
