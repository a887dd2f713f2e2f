#include "spec/parser.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "spec/diagnostics.h"
#include "spec/document_splitter.h"
#include "spec/parse_internal.h"
#include "spec/yaml_load.h"

namespace ea {
namespace {

SourcePos position_of_offset(std::string_view text, size_t offset, const std::string& file) {
  SourcePos pos{file, 1, 1};
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
  }
  return pos;
}

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or of the first NUL (a spec is text); npos when clean.
size_t first_bad_byte(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t i = 0; i < text.size();) {
    unsigned char lead = byte(i);
    if (lead == 0) return i;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length == 0 || i + length > text.size()) return i;
    // The second byte's range is narrower after E0, ED, F0 and F4.
    unsigned char low = lead == 0xe0 ? 0xa0 : lead == 0xf0 ? 0x90 : 0x80;
    unsigned char high = lead == 0xed ? 0x9f : lead == 0xf4 ? 0x8f : 0xbf;
    if (byte(i + 1) < low || byte(i + 1) > high) return i;
    for (size_t k = 2; k < length; ++k)
      if ((byte(i + k) & 0xc0) != 0x80) return i;
    i += length;
  }
  return std::string_view::npos;
}

void parse_document_text(const DocumentText& document, const std::string& source_file, const std::string& base_dir,
                         Diagnostics& diagnostics, std::vector<std::pair<Spec, SourcePos>>& specs) {
  YamlReader reader(diagnostics, source_file, document.line_offset);
  try {
    YAML::Node node = load_document(std::string(document.text));
    if (!node.IsDefined() || node.IsNull()) return;  // `---` with nothing after it
    auto parsed = parse_spec_document(reader, node);
    if (!parsed) return;
    parsed->spec.source_file = source_file;
    parsed->spec.base_dir = base_dir;
    parsed->spec.yaml_text = std::string(document.text);
    specs.emplace_back(std::move(parsed->spec), std::move(parsed->name_pos));
  } catch (const YAML::Exception& error) {
    SourcePos at{source_file, 0, 0};
    if (!error.mark.is_null()) at = {source_file, error.mark.line + 1 + document.line_offset, error.mark.column + 1};
    diagnostics.add(at, "", fmt::format("YAML syntax error: {} — check the indentation and quoting here", error.msg));
  } catch (const std::exception& error) {
    diagnostics.add({source_file, document.line_offset + 1, 0}, "",
                    fmt::format("cannot read this document: {}", error.what()));
  }
}

}  // namespace

Result<std::vector<Spec>> parse_specs(std::string_view text, const std::string& source_file, const std::string& base_dir) {
  if (text.size() > kMaxSpecBytes)
    return failf("{}: the spec text is {} bytes, more than the {} allowed — split it into several files", source_file,
                 text.size(), kMaxSpecBytes);
  if (size_t bad = first_bad_byte(text); bad != std::string_view::npos)
    return failf("{}: {} — a spec is UTF-8 YAML text; is this a binary file?",
                 position_of_offset(text, bad, source_file).str(),
                 text[bad] == '\0' ? "a NUL byte" : "a byte that is not valid UTF-8");

  Diagnostics diagnostics;
  std::vector<std::pair<Spec, SourcePos>> parsed;  // spec, where its name was written
  for (const DocumentText& document : split_documents(text))
    parse_document_text(document, source_file, base_dir, diagnostics, parsed);

  std::map<std::string_view, int> name_lines;
  for (const auto& [spec, name_pos] : parsed) {
    if (spec.name.empty()) continue;
    auto [first, inserted] = name_lines.emplace(spec.name, name_pos.line);
    if (!inserted)
      diagnostics.add(name_pos, "name",
                      fmt::format("a spec named '{}' is already defined at line {} — spec names must be unique",
                                  spec.name, first->second));
  }
  if (parsed.empty() && diagnostics.empty())
    diagnostics.add({source_file, 0, 0}, "", "no spec found — the text holds no YAML document with 'kind: ebpfprogram'");
  if (!diagnostics.empty()) return fail(diagnostics.render());

  std::vector<Spec> specs;
  for (auto& [spec, name_pos] : parsed) specs.push_back(std::move(spec));
  return specs;
}

Result<std::vector<Spec>> parse_spec_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    return failf("{}: cannot read the spec: {} — check the path", path, std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return failf("{}: is not a regular file — give the path of a YAML spec", path);
  if (static_cast<uint64_t>(info.st_size) > kMaxSpecBytes)
    return failf("{}: the spec file is {} bytes, more than the {} allowed — split it into several files", path,
                 info.st_size, kMaxSpecBytes);

  std::ifstream in(path, std::ios::binary);
  if (!in) return failf("{}: cannot open the spec: {}", path, std::strerror(errno));
  std::string text(kMaxSpecBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return failf("{}: cannot read the spec: {}", path, std::strerror(errno));
  text.resize(static_cast<size_t>(in.gcount()));

  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return failf("{}: cannot resolve the spec's directory: {}", path, ec.message());
  return parse_specs(text, path, absolute.lexically_normal().parent_path().string());
}

}  // namespace ea
