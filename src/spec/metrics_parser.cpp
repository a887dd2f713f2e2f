// `metrics:` of an ebpf_object program: which BPF maps are counters, gauges or histograms and how
// each map key decodes into labels. Everything that does not need the loaded object is checked
// here (names, sizes, decoder order, bucket layout, regexps); the map's own key and value sizes
// are checked when the object is loaded.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "metrics/bpf_map_decoders.h"
#include "spec/names.h"
#include "spec/parse_internal.h"
#include "spec/suggest.h"

namespace ea {
namespace {

constexpr std::array<std::string_view, 12> kMetricFields{
    "name", "help", "type", "map", "unit", "labels", "value_scale", "bucket_type", "bucket_multiplier",
    "bucket_min", "bucket_max", "bucket_keys"};
constexpr std::array<std::string_view, 4> kLabelFields{"name", "size", "decoders", "padding"};
constexpr std::array<std::string_view, 4> kDecoderFields{"name", "byte_order", "static_map", "regexps"};
constexpr std::array<std::string_view, 3> kMetricTypes{"counter", "gauge", "histogram"};
constexpr std::array<std::string_view, 3> kBucketTypes{"exp2", "linear", "fixed"};
constexpr std::array<std::string_view, 8> kDecoderNames{"uint", "int",        "string", "hex",
                                                        "inet_ip", "ksym", "static_map", "regexp"};
constexpr std::array<std::string_view, 2> kByteOrders{"little", "big"};
constexpr std::array<std::string_view, 4> kHistogramOnly{"bucket_type", "bucket_multiplier", "bucket_min",
                                                         "bucket_max"};

std::optional<LabelDecoderKind> decoder_named(std::string_view name) {
  for (size_t i = 0; i < kDecoderNames.size(); ++i)
    if (kDecoderNames[i] == name) return static_cast<LabelDecoderKind>(i);
  return std::nullopt;
}

bool is_byte_decoder(LabelDecoderKind kind) {
  return kind != LabelDecoderKind::StaticMap && kind != LabelDecoderKind::Regexp;
}

// A finite number (YAML int or float).
std::optional<double> read_number(YamlReader& reader, const Field& field, std::string_view example) {
  auto value = reader.value(field);
  if (!value) return std::nullopt;
  if (!value->is_number() || !std::isfinite(value->get<double>())) {
    reader.error(field, fmt::format("expected a finite number, e.g. {}", example));
    return std::nullopt;
  }
  return value->get<double>();
}

std::optional<double> read_positive(YamlReader& reader, const Field& field, std::string_view example) {
  auto number = read_number(reader, field, example);
  if (number && !(*number > 0)) {
    reader.error(field, fmt::format("must be greater than 0, e.g. {}", example));
    return std::nullopt;
  }
  return number;
}

// Sizes a byte decoder accepts, as a fix when the label's size does not fit.
std::optional<std::string> size_problem(LabelDecoderKind kind, uint32_t size) {
  switch (kind) {
    case LabelDecoderKind::Uint:
    case LabelDecoderKind::Int:
      if (size == 1 || size == 2 || size == 4 || size == 8) return std::nullopt;
      return fmt::format("decodes integers of 1, 2, 4 or 8 bytes, and this label is {} bytes — fix 'size' or use "
                         "'hex' (raw bytes) or 'string'",
                         size);
    case LabelDecoderKind::InetIp:
      if (size == 4 || size == 16) return std::nullopt;
      return fmt::format("decodes a 4-byte IPv4 or 16-byte IPv6 address, and this label is {} bytes", size);
    case LabelDecoderKind::Ksym:
      if (size == 8) return std::nullopt;
      return fmt::format("decodes an 8-byte kernel address, and this label is {} bytes", size);
    default: return std::nullopt;
  }
}

void read_static_map(YamlReader& reader, const Field& field, LabelDecoder& decoder) {
  for (const Field& entry : reader.entries(field, kMaxMetricMapEntries).value_or(std::vector<Field>{})) {
    auto text = reader.string(entry);
    if (!text) continue;
    if (text->size() > kMaxLabelValueSize) {
      reader.error(entry, fmt::format("is {} bytes, more than the {} a label value may have — shorten it",
                                      text->size(), kMaxLabelValueSize));
      continue;
    }
    decoder.static_map.emplace(entry.name, std::move(*text));
  }
  if (decoder.static_map.empty())
    reader.error(field, "maps nothing — give 'decoded value: label value' pairs, e.g. {1: read, 2: write}");
}

void read_regexps(YamlReader& reader, const Field& field, LabelDecoder& decoder) {
  auto items = reader.items(field, kMaxRegexps);
  if (!items) return;
  for (const Field& item : *items) {
    auto text = reader.string(item);
    if (!text) continue;
    if (text->empty() || text->size() > kMaxRegexpSize) {
      reader.error(item, fmt::format("a regexp is 1 to {} characters", kMaxRegexpSize));
      continue;
    }
    if (auto compiled = compile_label_regexp(*text); !compiled) {
      reader.error(item, compiled.error().message);
      continue;
    }
    decoder.regexps.push_back(std::move(*text));
  }
  if (items->empty()) reader.error(field, "lists no regexps — keys whose label matches none are dropped");
}

std::optional<LabelDecoder> read_decoder(YamlReader& reader, const Field& item, uint32_t label_size, bool first) {
  auto fields = reader.fields(item, kDecoderFields);
  if (!fields) return std::nullopt;
  LabelDecoder decoder{.pos = reader.pos(item)};
  const Field* name = fields->get("name");
  if (!name) {
    reader.missing(item, "name", fmt::format("add 'name: ...'{}", use_one_of("", kDecoderNames)));
    return std::nullopt;
  }
  auto text = reader.string(*name);
  if (!text) return std::nullopt;
  auto kind = decoder_named(*text);
  if (!kind) {
    reader.error(*name, fmt::format("unknown decoder '{}'{}", printable(*text), use_one_of(*text, kDecoderNames)));
    return std::nullopt;
  }
  decoder.kind = *kind;
  bool ok = true;
  if (first && !is_byte_decoder(*kind)) {
    reader.error(*name, fmt::format("'{}' works on the text a decoder made; start with one that reads the key's "
                                    "bytes (uint, int, string, hex, inet_ip, ksym)",
                                    *text));
    ok = false;
  } else if (!first && is_byte_decoder(*kind)) {
    reader.error(*name, fmt::format("'{}' reads the key's bytes, which the first decoder already did — keep one byte "
                                    "decoder, first; static_map and regexp may follow",
                                    *text));
    ok = false;
  } else if (first) {
    if (auto problem = size_problem(*kind, label_size)) {
      reader.error(*name, fmt::format("'{}' {}", *text, *problem));
      ok = false;
    }
  }
  const bool integer = *kind == LabelDecoderKind::Uint || *kind == LabelDecoderKind::Int;
  if (const Field* order = fields->get("byte_order")) {
    auto value = reader.string(*order);
    if (value && !integer) {
      reader.error(*order, fmt::format("only uint and int decoders have a byte order — remove it"));
    } else if (value && std::ranges::find(kByteOrders, *value) == kByteOrders.end()) {
      reader.error(*order, fmt::format("unknown byte order '{}'{}", printable(*value), use_one_of(*value, kByteOrders)));
    } else if (value) {
      decoder.byte_order = *value == "big" ? ByteOrder::Big : ByteOrder::Little;
    }
  }
  const Field* static_map = fields->get("static_map");
  if (*kind == LabelDecoderKind::StaticMap) {
    if (static_map)
      read_static_map(reader, *static_map, decoder);
    else
      reader.missing(item, "static_map", "add the mapping, e.g. 'static_map: {1: read, 2: write}'");
  } else if (static_map) {
    reader.error(*static_map, "belongs to a 'static_map' decoder — remove it, or set 'name: static_map'");
  }
  const Field* regexps = fields->get("regexps");
  if (*kind == LabelDecoderKind::Regexp) {
    if (regexps)
      read_regexps(reader, *regexps, decoder);
    else
      reader.missing(item, "regexps", "add 'regexps: [\"^nginx\"]': keys whose label matches none are dropped");
  } else if (regexps) {
    reader.error(*regexps, "belongs to a 'regexp' decoder — remove it, or set 'name: regexp'");
  }
  return ok ? std::optional(std::move(decoder)) : std::nullopt;
}

bool valid_label(YamlReader& reader, const Field& field, const std::string& name) {
  std::string_view problem;
  if (!valid_label_name(name))
    problem = "is not a label name: use letters, digits and '_', not starting with a digit";
  else if (name.starts_with("__"))
    problem = "starts with '__', which Prometheus reserves — rename it";
  else if (name == "le" || name == "quantile")
    problem = "is the label Prometheus gives histogram buckets — rename it";
  else if (name == kOverflowLabel)
    problem = "marks the series folded past the cardinality cap — rename it";
  if (problem.empty()) return true;
  reader.error(field, fmt::format("'{}' {}", printable(name), problem));
  return false;
}

std::optional<MapMetricLabel> read_label(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kLabelFields);
  if (!fields) return std::nullopt;
  MapMetricLabel label{.pos = reader.pos(item)};
  if (const Field* padding = fields->get("padding")) {
    for (std::string_view other : {"name", "size", "decoders"})
      if (const Field* extra = fields->get(other)) {
        reader.error(*extra, "a padding item only skips bytes — give it alone, e.g. '{padding: 4}'");
        return std::nullopt;
      }
    auto size = reader.unsigned_integer(*padding, kMaxLabelSize);
    if (size == 0u) reader.error(*padding, "skips nothing — give the number of bytes, or remove the item");
    if (!size || *size == 0) return std::nullopt;
    label.size = static_cast<uint32_t>(*size);
    return label;
  }
  bool ok = true;
  if (const Field* name = fields->get("name")) {
    auto text = reader.string(*name);
    ok = text && valid_label(reader, *name, *text);
    if (ok) label.name = *text;
  } else {
    reader.missing(item, "name", "add 'name: ...' (the Prometheus label), or write '{padding: N}' to skip N bytes");
    ok = false;
  }
  const Field* size = fields->get("size");
  if (!size) {
    reader.missing(item, "size", "add 'size: N', the bytes of the key this label takes");
    return std::nullopt;
  }
  auto bytes = reader.unsigned_integer(*size, kMaxLabelSize);
  if (bytes == 0u) reader.error(*size, fmt::format("a label takes 1 to {} bytes of the key", kMaxLabelSize));
  if (!bytes || *bytes == 0) return std::nullopt;
  label.size = static_cast<uint32_t>(*bytes);
  if (const Field* decoders = fields->get("decoders")) {
    auto items = reader.items(*decoders, kMaxDecoders);
    if (!items) return std::nullopt;
    if (items->empty()) reader.error(*decoders, "lists no decoders — e.g. '[{name: uint}]' or '[{name: string}]'");
    for (size_t i = 0; i < items->size(); ++i) {
      auto decoder = read_decoder(reader, (*items)[i], label.size, i == 0);
      if (decoder)
        label.decoders.push_back(std::move(*decoder));
      else
        ok = false;
    }
  } else if (size_problem(LabelDecoderKind::Uint, label.size)) {
    reader.missing(item, "decoders",
                   fmt::format("a {}-byte label is not an integer: say how it decodes, e.g. 'decoders: [{{name: "
                               "string}}]'",
                               label.size));
    ok = false;
  } else {
    label.decoders.push_back(LabelDecoder{.kind = LabelDecoderKind::Uint, .pos = label.pos});
  }
  return ok && !label.decoders.empty() ? std::optional(std::move(label)) : std::nullopt;
}

void read_labels(YamlReader& reader, const Field& field, MapMetricSpec& metric) {
  auto items = reader.items(field, kMaxMetricLabels);
  if (!items) return;
  std::vector<MapMetricLabel> labels;
  std::set<std::string, std::less<>> names;
  uint64_t key_size = 0;
  bool complete = true;
  for (const Field& item : *items) {
    auto label = read_label(reader, item);
    if (!label) {
      complete = false;
      continue;
    }
    if (!label->name.empty() && !names.insert(label->name).second) {
      reader.error(item, fmt::format("label '{}' is given twice — each label needs its own name", label->name));
      complete = false;
    }
    key_size += label->size;
    labels.push_back(std::move(*label));
  }
  if (key_size > kMaxMetricKeySize) {
    reader.error(field, fmt::format("the labels take {} bytes of key, more than the {} a map metric may read",
                                    key_size, kMaxMetricKeySize));
    complete = false;
  }
  if (complete && labels.empty()) {
    reader.error(field, "lists no labels — describe the key field by field, or remove 'labels' to infer them from "
                        "the key's BTF");
    complete = false;
  }
  if (complete && metric.kind == MetricKind::Histogram) {
    auto bucket = std::ranges::find_if(labels.rbegin(), labels.rend(), [](const auto& l) { return !l.name.empty(); });
    const auto integer = [](const LabelDecoder& d) {
      return d.kind == LabelDecoderKind::Uint || d.kind == LabelDecoderKind::Int;
    };
    if (bucket == labels.rend() || bucket->decoders.size() != 1 || !integer(bucket->decoders[0])) {
      reader.error(field, "the last label of a histogram is its bucket key: make it an integer, e.g. "
                          "'{name: bucket, size: 4, decoders: [{name: uint}]}'");
      complete = false;
    }
  }
  if (complete) metric.labels = std::move(labels);
}

std::optional<MetricKind> read_type(YamlReader& reader, const Field& field) {
  auto text = reader.string(field);
  if (!text) return std::nullopt;
  if (*text == "counter") return MetricKind::Counter;
  if (*text == "gauge") return MetricKind::Gauge;
  if (*text == "histogram") return MetricKind::Histogram;
  reader.error(field, fmt::format("unknown metric type '{}'{}", printable(*text), use_one_of(*text, kMetricTypes)));
  return std::nullopt;
}

void read_name(YamlReader& reader, const Field& field, MapMetricSpec& metric) {
  auto name = reader.string(field);
  if (!name) return;
  if (name->empty() || name->size() > kMaxMetricNameSize || !valid_metric_name(*name) || name->starts_with("__")) {
    reader.error(field, fmt::format("'{}' is not a metric name: 1 to {} letters, digits and '_', not starting with a "
                                    "digit or '__' (e.g. tcp_retransmits)",
                                    printable(*name), kMaxMetricNameSize));
    return;
  }
  metric.name = *name;
}

void read_buckets(YamlReader& reader, const FieldMap& fields, const Field& item, MapMetricSpec& metric) {
  if (const Field* type = fields.get("bucket_type")) {
    auto text = reader.string(*type);
    if (text == "exp2") metric.bucket_type = BucketType::Exp2;
    else if (text == "linear") metric.bucket_type = BucketType::Linear;
    else if (text == "fixed") metric.bucket_type = BucketType::Fixed;
    else if (text) reader.error(*type, fmt::format("unknown bucket type '{}'{}", printable(*text), use_one_of(*text, kBucketTypes)));
  }
  if (const Field* multiplier = fields.get("bucket_multiplier"))
    metric.bucket_multiplier = read_positive(reader, *multiplier, "1e-6 (microseconds to seconds)").value_or(1);
  const Field* min = fields.get("bucket_min");
  const Field* max = fields.get("bucket_max");
  const Field* keys = fields.get("bucket_keys");
  if (metric.bucket_type == BucketType::Fixed) {
    for (const Field* range : {min, max})
      if (range) reader.error(*range, "a fixed histogram lists its keys in 'bucket_keys' — remove this");
    if (!keys) {
      reader.missing(item, "bucket_keys", "a fixed histogram lists its bucket keys, e.g. 'bucket_keys: [1, 10, 100]'");
      return;
    }
    auto items = reader.items(*keys, kMaxBuckets);
    if (!items) return;
    for (const Field& key : *items) {
      auto value = reader.unsigned_integer(key, std::numeric_limits<uint64_t>::max() - 1);
      if (!value) continue;
      if (!metric.bucket_keys.empty() && *value <= metric.bucket_keys.back()) {
        reader.error(key, "bucket keys must be in ascending order, each once");
        continue;
      }
      metric.bucket_keys.push_back(*value);
    }
    if (items->empty()) reader.error(*keys, "lists no keys — e.g. 'bucket_keys: [1, 10, 100]'");
    return;
  }
  if (keys) reader.error(*keys, fmt::format("belongs to 'bucket_type: fixed'; {} buckets come from bucket_min and bucket_max",
                                            to_string(metric.bucket_type)));
  // exp2 bounds 2^key must stay finite doubles.
  const uint64_t limit = metric.bucket_type == BucketType::Exp2 ? 1023 : std::numeric_limits<uint32_t>::max();
  if (min) metric.bucket_min = reader.unsigned_integer(*min, limit).value_or(0);
  if (!max) {
    reader.missing(item, "bucket_max", "add the highest bucket key the program writes, e.g. 'bucket_max: 26'");
    return;
  }
  auto top = reader.unsigned_integer(*max, limit);
  if (!top) return;
  metric.bucket_max = *top;
  if (metric.bucket_max < metric.bucket_min) {
    reader.error(*max, fmt::format("is below bucket_min ({}) — bucket keys run from bucket_min to bucket_max",
                                   metric.bucket_min));
  } else if (metric.bucket_max - metric.bucket_min >= kMaxBuckets) {
    reader.error(*max, fmt::format("makes {} buckets, more than the {} a histogram may have",
                                   metric.bucket_max - metric.bucket_min + 1, kMaxBuckets));
  }
  double highest = metric.bucket_type == BucketType::Exp2 ? std::exp2(static_cast<double>(metric.bucket_max))
                                                          : static_cast<double>(metric.bucket_max);
  if (!std::isfinite(highest * metric.bucket_multiplier))
    reader.error(*max, "with this bucket_multiplier the highest bucket bound is not a finite number — lower one of them");
}

std::optional<MapMetricSpec> read_metric(YamlReader& reader, const Field& item) {
  auto fields = reader.fields(item, kMetricFields);
  if (!fields) return std::nullopt;
  MapMetricSpec metric{.pos = reader.pos(item), .labels_pos = reader.pos(item)};
  bool ok = true;
  if (const Field* name = fields->get("name")) {
    read_name(reader, *name, metric);
  } else {
    reader.missing(item, "name", "add 'name: ...', the Prometheus name without '_total' (e.g. tcp_retransmits)");
  }
  ok &= !metric.name.empty();
  if (const Field* help = fields->get("help")) {
    metric.help = reader.string(*help).value_or("");
    if (metric.help.size() > kMaxLabelValueSize) {
      reader.error(*help, fmt::format("is longer than {} bytes — shorten it", kMaxLabelValueSize));
      ok = false;
    }
  }
  std::optional<MetricKind> kind;
  if (const Field* type = fields->get("type"))
    kind = read_type(reader, *type);
  else
    reader.missing(item, "type", "add 'type: counter', 'type: gauge' or 'type: histogram'");
  if (!kind) return std::nullopt;
  metric.kind = *kind;
  if (const Field* map = fields->get("map")) {
    auto text = reader.string(*map);
    if (text && !is_c_identifier(*text)) {
      reader.error(*map, fmt::format("'{}' is not a BPF map name (the C variable of the map)", printable(*text)));
      ok = false;
    } else if (text) {
      metric.map = *text;
    }
  } else {
    reader.missing(item, "map", "add 'map: ...', the BPF map (hash, array or their per-CPU kinds) holding the values");
  }
  ok &= !metric.map.empty();
  if (const Field* unit = fields->get("unit")) {
    auto text = reader.string(*unit);
    if (text && !text->empty()) {
      if (text->size() > 32 || !valid_label_name(*text)) {
        reader.error(*unit, fmt::format("'{}' is not a unit: letters, digits and '_' (e.g. seconds, bytes)", printable(*text)));
        ok = false;
      } else if (!metric.name.empty() && !metric.name.ends_with("_" + *text)) {
        reader.error(*unit, fmt::format("Prometheus names end with their unit: rename the metric to '{}_{}', or "
                                        "remove 'unit'",
                                        metric.name, *text));
        ok = false;
      } else {
        metric.unit = *text;
      }
    }
  }
  if (metric.kind == MetricKind::Counter && metric.name.ends_with("_total")) {
    reader.error(*fields->get("name"), fmt::format("drop '_total': it is added when the counter is rendered for "
                                                   "Prometheus (name it '{}')",
                                                   metric.name.substr(0, metric.name.size() - 6)));
    ok = false;
  }
  if (const Field* scale = fields->get("value_scale")) {
    if (metric.kind == MetricKind::Histogram) {
      reader.error(*scale, "a histogram scales its bucket keys with 'bucket_multiplier' — use that instead");
      ok = false;
    } else if (auto number = read_number(reader, *scale, "1e-9 (nanoseconds to seconds)"); number && *number != 0) {
      metric.value_scale = *number;
    } else {
      if (number) reader.error(*scale, "a scale of 0 zeroes every value — give e.g. 1e-9");
      ok = false;
    }
  }
  if (metric.kind == MetricKind::Histogram) {
    read_buckets(reader, *fields, item, metric);
  } else {
    for (std::string_view key : kHistogramOnly)
      if (const Field* field = fields->get(key))
        reader.error(*field, fmt::format("'{}' is for histograms and this metric is a {} — remove it", key,
                                         to_string(metric.kind)));
    if (const Field* field = fields->get("bucket_keys"))
      reader.error(*field, fmt::format("'bucket_keys' is for histograms and this metric is a {} — remove it",
                                       to_string(metric.kind)));
  }
  if (const Field* labels = fields->get("labels")) {
    metric.labels_pos = reader.pos(*labels);
    read_labels(reader, *labels, metric);
    ok &= metric.labels.has_value();
  }
  return ok ? std::optional(std::move(metric)) : std::nullopt;
}

}  // namespace

std::vector<MapMetricSpec> parse_map_metrics(YamlReader& reader, const Field& metrics) {
  std::vector<MapMetricSpec> result;
  std::set<std::string, std::less<>> names;
  for (const Field& item : reader.items(metrics, kMaxNamedItems).value_or(std::vector<Field>{})) {
    auto metric = read_metric(reader, item);
    if (!metric) continue;
    if (!names.insert(metric->name).second) {
      reader.error(item, fmt::format("metric '{}' is declared twice in this program — give each its own name",
                                     metric->name));
      continue;
    }
    result.push_back(std::move(*metric));
  }
  return result;
}

}  // namespace ea
