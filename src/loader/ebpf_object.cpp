#include "loader/ebpf_object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "loader/btf_encode.h"
#include "loader/btf_types.h"
#include "loader/kernel_features.h"
#include "loader/libbpf_log.h"
#include "loader/program_attach.h"

namespace ea {
namespace {

std::string at(const SourcePos& pos) {
  std::string where = pos.str();
  return where.empty() ? where : where + ": ";
}

// Errors point at the property's own position when it has one, else at the program's.
const SourcePos& most_precise(const SourcePos& property, const SourcePos& program) {
  return property.line > 0 ? property : program;
}

// "file:line:col: program 'NAME'"
std::string program_at(const SourcePos& property, const SourcePos& program, std::string_view name) {
  return fmt::format("{}program '{}'", at(most_precise(property, program)), name);
}

std::vector<std::string> program_names(bpf_object* object) {
  std::vector<std::string> names;
  bpf_program* program;
  bpf_object__for_each_program(program, object) names.emplace_back(bpf_program__name(program));
  return names;
}

// Maps a spec can name: the object's own, not the .rodata/.data/.bss ones libbpf makes for globals.
std::vector<std::string> map_names(bpf_object* object) {
  std::vector<std::string> names;
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    if (!bpf_map__is_internal(map)) names.emplace_back(bpf_map__name(map));
  }
  return names;
}

bpf_map* find_user_map(bpf_object* object, std::string_view name) {
  bpf_map* map = bpf_object__find_map_by_name(object, std::string(name).c_str());
  return map && !bpf_map__is_internal(map) ? map : nullptr;
}

// "a, b, c" sorted, for "unknown X; its Xs: ..." messages.
std::string list_or_none(std::vector<std::string> names) {
  std::ranges::sort(names);
  return names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "));
}

// A global variable of the object: where its bytes live before (and, for .data/.bss, after) load.
struct Variable {
  bpf_map* map = nullptr;  // the internal map of its section
  std::string section;     // ".rodata", ".data", ".bss", ".rodata.custom", ...
  uint32_t offset = 0;
  uint32_t size = 0;
  uint32_t type_id = 0;
};

template <class Visit>
void for_each_variable(bpf_object* object, Visit visit) {
  const struct btf* btf = bpf_object__btf(object);
  if (!btf) return;
  for (uint32_t id = 1; id < btf__type_cnt(btf); ++id) {
    const btf_type* datasec = btf__type_by_id(btf, id);
    if (!btf_is_datasec(datasec)) continue;
    const char* section = btf__name_by_offset(btf, datasec->name_off);
    // .kconfig and .ksyms are filled by libbpf from the kernel; .maps holds map definitions.
    if (!section || std::string_view(section) == ".kconfig" || std::string_view(section) == ".ksyms" ||
        std::string_view(section) == ".maps") {
      continue;
    }
    bpf_map* map = bpf_object__find_map_by_name(object, section);
    if (!map || !bpf_map__is_internal(map)) continue;
    const btf_var_secinfo* infos = btf_var_secinfos(datasec);
    for (uint16_t i = 0; i < btf_vlen(datasec); ++i) {
      const btf_type* var = btf__type_by_id(btf, infos[i].type);
      if (!var || !btf_is_var(var) || btf_var(var)->linkage == BTF_VAR_STATIC) continue;
      const char* name = btf__name_by_offset(btf, var->name_off);
      if (!name) continue;
      visit(std::string_view(name), Variable{map, section, infos[i].offset, infos[i].size, var->type});
    }
  }
}

std::optional<Variable> find_variable(bpf_object* object, std::string_view wanted) {
  std::optional<Variable> found;
  for_each_variable(object, [&](std::string_view name, const Variable& variable) {
    if (!found && name == wanted) found = variable;
  });
  return found;
}

std::vector<std::string> variable_names(bpf_object* object) {
  std::vector<std::string> names;
  for_each_variable(object, [&](std::string_view name, const Variable&) { names.emplace_back(name); });
  return names;
}

std::span<std::byte> variable_bytes(const Variable& variable) {
  size_t size = 0;
  // Before load this is libbpf's copy of the initial data; after load, the mmaped map itself.
  auto* data = static_cast<std::byte*>(const_cast<void*>(bpf_map__initial_value(variable.map, &size)));
  if (!data || variable.offset + static_cast<size_t>(variable.size) > size) return {};
  return {data + variable.offset, variable.size};
}

std::vector<std::string> split_alternatives(std::string_view entry) {
  std::vector<std::string> names;
  while (true) {
    size_t bar = entry.find_first_of("|,");
    std::string_view name = entry.substr(0, bar);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) names.emplace_back(name);
    if (bar == std::string_view::npos) return names;
    entry.remove_prefix(bar + 1);
  }
}

bool is_per_cpu(bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

std::string map_type_name(const bpf_map* map) {
  const char* name = libbpf_bpf_map_type_str(bpf_map__type(map));
  return name ? name : "unknown";
}

// Encodes a spec value as the map's key or value: through BTF when the map declares its types.
Result<std::vector<std::byte>> encode_map_value(const bpf_object* object, uint32_t type_id, size_t size,
                                                const Value& value, std::string_view path) {
  std::vector<std::byte> bytes(size);
  auto encoded = type_id ? btf_encode(bpf_object__btf(object), type_id, value, bytes, path)
                         : encode_untyped(value, bytes, path);
  if (!encoded) return std::unexpected(encoded.error());
  return bytes;
}

// libbpf 1.1 points the memory of .rodata/.data/.bss at the kernel's maps only in skeleton loads.
// Doing the same here makes globals read or written after load (counters, knobs) the live ones.
Result<void> map_globals_to_kernel(bpf_object* object) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    if (!bpf_map__is_internal(map) || !(bpf_map__map_flags(map) & BPF_F_MMAPABLE)) continue;
    size_t size = 0;
    void* memory = const_cast<void*>(bpf_map__initial_value(map, &size));
    if (!memory) continue;
    // The size libbpf gave this memory at open (and unmaps at close).
    size_t length = (bpf_map__value_size(map) + 7) / 8 * 8 * bpf_map__max_entries(map);
    length = (length + page - 1) / page * page;
    int protection = bpf_map__map_flags(map) & BPF_F_RDONLY_PROG ? PROT_READ : PROT_READ | PROT_WRITE;
    if (mmap(memory, length, protection, MAP_SHARED | MAP_FIXED, bpf_map__fd(map), 0) == MAP_FAILED) {
      return failf("mapping the memory of {} failed: {}", bpf_map__name(map), std::strerror(errno));
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<EbpfObject>> EbpfObject::open(const ProgramSpec& program, FetchedFile file) {
  const auto* props = std::get_if<EbpfObjectProps>(&program.props);
  if (!props) return failf("{}program '{}' is not an ebpf_object", at(program.pos), program.name);
  std::unique_ptr<EbpfObject> self(new EbpfObject());
  self->name_ = program.name;
  self->spec_ = program;
  // libbpf parses the ELF in place until load, so the bytes live in the object from now on.
  self->file_ = std::move(file);
  const std::string where = program_at(program.pos, program.pos, program.name);
  auto where_at = [&](const SourcePos& property) { return program_at(property, program.pos, program.name); };

  LibbpfLogCapture log;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = self->name_.c_str());
  self->object_ = bpf_object__open_mem(self->file_.content.data(), self->file_.content.size(), &open_opts);
  if (!self->object_) {
    int error = errno;
    std::string summary = log.failure_summary();
    return failf("{}: {} is not a BPF object libbpf can open: {}{}{}", where, self->file_.origin,
                 std::strerror(error), summary.empty() ? "" : "\n", summary);
  }
  bpf_object* object = self->object_;

  if (props->progs) {
    std::set<std::string> chosen;
    for (const std::string& entry : *props->progs) {
      auto alternatives = split_alternatives(entry);
      if (alternatives.empty()) return failf("{}: `progs` has an empty entry", where);
      std::vector<std::string> reasons;  // why each unavailable alternative cannot run here
      std::optional<std::string> available;
      for (const std::string& name : alternatives) {
        const bpf_program* candidate = bpf_object__find_program_by_name(object, name.c_str());
        if (!candidate) {
          return failf("{}: `progs` names '{}', which {} does not have; its programs: {}", where, name,
                       self->file_.origin, list_or_none(program_names(object)));
        }
        if (available) continue;  // every name is still checked for typos
        std::string why;
        if (kernel_has_hook(hook_family(bpf_program__section_name(candidate)), &why)) {
          available = name;
        } else {
          reasons.push_back(fmt::format("BPF program '{}' (SEC(\"{}\")) cannot run here: {}", name,
                                        bpf_program__section_name(candidate), why));
        }
      }
      if (!available) {
        return failf("{}: {}: use a tracepoint/tp_btf variant (see `progs: \"a|b\"`)", where,
                     fmt::join(reasons, "; "));
      }
      if (!reasons.empty()) spdlog::info("{}: using BPF program '{}'; {}", where, *available, fmt::join(reasons, "; "));
      chosen.insert(*available);
    }
    bpf_program* program_it;
    bpf_object__for_each_program(program_it, object) {
      bpf_program__set_autoload(program_it, chosen.contains(bpf_program__name(program_it)));
    }
  }

  for (const AttachOptions& options : props->attach) {
    const bpf_program* target = bpf_object__find_program_by_name(object, options.prog.c_str());
    if (!target) {
      return failf("{}: `attach` names '{}', which {} does not have; its programs: {}", where_at(options.pos),
                   options.prog, self->file_.origin, list_or_none(program_names(object)));
    }
    auto checked = check_attach_options(target, options);
    if (!checked) {
      return failf("{}: attach options for '{}': {}", where_at(options.pos), options.prog, checked.error().message);
    }
  }

  for (const VariableInit& init : props->variables) {
    auto variable = find_variable(object, init.name);
    if (!variable) {
      return failf("{}: {} has no global variable '{}'; its variables: {}", where_at(init.pos),
                   self->file_.origin, init.name, list_or_none(variable_names(object)));
    }
    auto current = variable_bytes(*variable);
    if (current.empty()) return failf("{}: variable '{}' has no initial data in libbpf", where_at(init.pos), init.name);
    std::vector<std::byte> bytes(current.begin(), current.end());  // fields not given keep their defaults
    auto encoded = btf_encode(bpf_object__btf(object), variable->type_id, init.value, bytes, init.name);
    if (!encoded) return failf("{}: variable {}", where_at(init.pos), encoded.error().message);
    auto written = self->set_variable(init.name, bytes);
    if (!written) return failf("{}{}", at(most_precise(init.pos, program.pos)), written.error().message);
  }

  for (const MapInit& init : props->maps) {
    if (!find_user_map(object, init.name)) {
      return failf("{}: {} has no map '{}'; its maps: {}", where_at(init.pos), self->file_.origin, init.name,
                   list_or_none(map_names(object)));
    }
    if (init.max_entries) {
      auto resized = self->set_map_max_entries(init.name, *init.max_entries);
      if (!resized) return failf("{}{}", at(most_precise(init.pos, program.pos)), resized.error().message);
    }
  }
  return self;
}

EbpfObject::~EbpfObject() {
  detach();
  bpf_object__close(object_);
}

Result<void> EbpfObject::set_variable(std::string_view name, std::span<const std::byte> bytes) {
  auto variable = find_variable(object_, name);
  if (!variable) {
    return failf("program '{}': no global variable '{}'; its variables: {}", name_, name,
                 list_or_none(variable_names(object_)));
  }
  if (bytes.size() != variable->size) {
    return failf("program '{}': variable '{}' is {} bytes, {} given", name_, name, variable->size, bytes.size());
  }
  if (loaded_ && variable->section.starts_with(".rodata")) {
    return failf("program '{}': variable '{}' is read-only in the kernel once loaded (const volatile, {}): set it "
                 "before load",
                 name_, name, variable->section);
  }
  if (loaded_ && !(bpf_map__map_flags(variable->map) & BPF_F_MMAPABLE)) {
    return failf("program '{}': variable '{}' cannot change after load on this kernel (its map is not mmapable)",
                 name_, name);
  }
  auto storage = variable_bytes(*variable);
  if (storage.empty()) return failf("program '{}': variable '{}' has no memory to write to", name_, name);
  std::ranges::copy(bytes, storage.begin());
  return {};
}

Result<void> EbpfObject::set_map_max_entries(std::string_view map_name, uint32_t max_entries) {
  bpf_map* map = find_user_map(object_, map_name);
  if (!map) return failf("program '{}': no map '{}'; its maps: {}", name_, map_name, list_or_none(map_names(object_)));
  if (loaded_) return failf("program '{}': map '{}' is already in the kernel: resize it before load", name_, map_name);
  if (max_entries == 0) return failf("program '{}': map '{}' needs max_entries of at least 1", name_, map_name);
  int error = bpf_map__set_max_entries(map, max_entries);
  if (error) return failf("program '{}': resizing map '{}' failed: {}", name_, map_name, std::strerror(-error));
  return {};
}

Result<void> EbpfObject::load() {
  if (loaded_) return {};
  const std::string where = program_at(spec_.pos, spec_.pos, name_);
  LibbpfLogCapture log;
  int error = bpf_object__load(object_);
  if (error) {
    std::string message = fmt::format("{}: loading {} into the kernel failed: {}", where, file_.origin,
                                      std::strerror(-error));
    std::string failed = log.failed_program();
    if (!failed.empty()) {
      const bpf_program* program = bpf_object__find_program_by_name(object_, failed.c_str());
      std::string section = program ? bpf_program__section_name(program) : "";
      message += fmt::format("; the verifier rejected BPF program '{}' (SEC(\"{}\"))", failed, section);
      std::string why;
      if (!kernel_has_hook(hook_family(section), &why)) {
        message += fmt::format("\n  {}: use a tracepoint/tp_btf variant (see `progs: \"a|b\"`)", why);
      }
    }
    if ((error == -EPERM || error == -EACCES) && geteuid() != 0) {
      message += "\n  loading BPF programs needs root (or CAP_BPF with CAP_PERFMON)";
    }
    std::string summary = log.failure_summary();
    if (!summary.empty()) message += "\n" + summary;
    while (message.ends_with('\n')) message.pop_back();
    return fail(std::move(message));
  }
  loaded_ = true;
  if (auto mapped = map_globals_to_kernel(object_); !mapped) return failf("{}: {}", where, mapped.error().message);

  const auto& props = std::get<EbpfObjectProps>(spec_.props);
  for (const MapInit& init : props.maps) {
    bpf_map* map = find_user_map(object_, init.name);
    for (const MapEntry& entry : init.entries) {
      std::string path = fmt::format("map '{}' entry", init.name);
      auto key = encode_map_value(object_, bpf_map__btf_key_type_id(map), bpf_map__key_size(map), entry.key,
                                  path + " key");
      if (!key) return failf("{}: {}", program_at(entry.pos, spec_.pos, name_), key.error().message);
      auto value = encode_map_value(object_, bpf_map__btf_value_type_id(map), bpf_map__value_size(map), entry.value,
                                    path + " value");
      if (!value) return failf("{}: {}", program_at(entry.pos, spec_.pos, name_), value.error().message);
      auto written = map_update(init.name, *key, *value);
      if (!written) return failf("{}{}", at(most_precise(entry.pos, spec_.pos)), written.error().message);
    }
  }
  return {};
}

Result<void> EbpfObject::map_update(std::string_view map_name, std::span<const std::byte> key,
                                    std::span<const std::byte> value) {
  bpf_map* map = find_user_map(object_, map_name);
  if (!map) return failf("program '{}': no map '{}'; its maps: {}", name_, map_name, list_or_none(map_names(object_)));
  if (!loaded_) return failf("program '{}': map '{}' is not in the kernel yet: write entries after load", name_, map_name);
  if (key.size() != bpf_map__key_size(map)) {
    return failf("program '{}': map '{}' has {}-byte keys, {} given", name_, map_name, bpf_map__key_size(map),
                 key.size());
  }
  size_t value_size = bpf_map__value_size(map);
  std::vector<std::byte> per_cpu_values;
  if (is_per_cpu(bpf_map__type(map))) {
    // The kernel wants one 8-byte-aligned slot per possible CPU; one value is given to all of them.
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return failf("program '{}': cannot count the possible CPUs", name_);
    size_t slot = (value_size + 7) / 8 * 8;
    if (value.size() == value_size) {
      per_cpu_values.resize(slot * static_cast<size_t>(cpus));
      for (int cpu = 0; cpu < cpus; ++cpu) std::ranges::copy(value, per_cpu_values.begin() + slot * cpu);
      value = per_cpu_values;
    } else if (value.size() != slot * static_cast<size_t>(cpus)) {
      return failf("program '{}': per-CPU map '{}' takes one {}-byte value or {} slots of {} bytes, {} bytes given",
                   name_, map_name, value_size, cpus, slot, value.size());
    }
  } else if (value.size() != value_size) {
    return failf("program '{}': map '{}' has {}-byte values, {} given", name_, map_name, value_size, value.size());
  }
  if (bpf_map_update_elem(bpf_map__fd(map), key.data(), value.data(), BPF_ANY) != 0) {
    int error = errno;
    std::string hint = error == E2BIG ? fmt::format(" (the map is full: max_entries {})", bpf_map__max_entries(map))
                                      : "";
    return failf("program '{}': writing an entry into {} map '{}' failed: {}{}", name_, map_type_name(map), map_name,
                 std::strerror(error), hint);
  }
  return {};
}

int EbpfObject::map_fd(std::string_view map_name) const {
  bpf_map* map = find_user_map(object_, map_name);
  return map ? bpf_map__fd(map) : -1;
}

bool EbpfObject::has_map(std::string_view map_name) const { return find_user_map(object_, map_name) != nullptr; }

int EbpfObject::map_type(std::string_view map_name) const {
  bpf_map* map = find_user_map(object_, map_name);
  return map ? static_cast<int>(bpf_map__type(map)) : -1;
}

Result<void> EbpfObject::attach() {
  if (attached_) return {};
  if (!loaded_) return failf("program '{}': load it before attaching", name_);
  const auto& props = std::get<EbpfObjectProps>(spec_.props);
  bpf_program* program;
  bpf_object__for_each_program(program, object_) {
    if (!bpf_program__autoload(program)) continue;
    auto options = std::ranges::find(props.attach, std::string_view(bpf_program__name(program)),
                                     [](const AttachOptions& o) { return std::string_view(o.prog); });
    const AttachOptions* found = options == props.attach.end() ? nullptr : &*options;
    auto attachment = attach_program(program, found);
    if (!attachment) {
      detach();
      return failf("{}program '{}': attaching BPF program '{}' (SEC(\"{}\")) failed: {}",
                   at(found ? found->pos : spec_.pos), name_, bpf_program__name(program),
                   bpf_program__section_name(program), attachment.error().message);
    }
    links_.insert(links_.end(), attachment->links.begin(), attachment->links.end());
    if (attachment->undo) detachers_.push_back(std::move(attachment->undo));
    attach_points_.push_back(std::move(attachment->point));
  }
  bpf_map* map;
  bpf_object__for_each_map(map, object_) {
    if (bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS) continue;
    bpf_link* link = bpf_map__attach_struct_ops(map);
    if (!link) {
      int error = errno;
      detach();
      return failf("{}program '{}': registering struct_ops '{}' failed: {}", at(spec_.pos), name_, bpf_map__name(map),
                   std::strerror(error));
    }
    links_.push_back(link);
    attach_points_.push_back(fmt::format("struct_ops {}", bpf_map__name(map)));
  }
  attached_ = true;
  return {};
}

void EbpfObject::detach() {
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) bpf_link__destroy(*it);
  links_.clear();
  for (auto it = detachers_.rbegin(); it != detachers_.rend(); ++it) (*it)();
  detachers_.clear();
  attach_points_.clear();
  attached_ = false;
}

std::vector<std::string> EbpfObject::attach_points() const { return attach_points_; }

const struct btf* EbpfObject::btf() const { return object_ ? bpf_object__btf(object_) : nullptr; }

int EbpfObject::find_struct(std::string_view name) const {
  const struct btf* types = btf();
  if (!types) return 0;
  if (name.starts_with("struct ")) name.remove_prefix(7);
  std::string wanted(name);
  int id = btf__find_by_name_kind(types, wanted.c_str(), BTF_KIND_STRUCT);
  if (id > 0) return id;
  // `typedef struct {...} event_t;` names the struct only through its typedef.
  int typedef_id = btf__find_by_name_kind(types, wanted.c_str(), BTF_KIND_TYPEDEF);
  if (typedef_id <= 0) return 0;
  uint32_t resolved = 0;
  const btf_type* type = skip_btf_modifiers(types, static_cast<uint32_t>(typedef_id), &resolved);
  return type && btf_is_struct(type) ? static_cast<int>(resolved) : 0;
}

EbpfObject::RunStats EbpfObject::run_stats() const {
  RunStats stats;
  if (!loaded_) return stats;
  bpf_program* program;
  bpf_object__for_each_program(program, object_) {
    int fd = bpf_program__fd(program);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) continue;
    stats.run_count += info.run_cnt;
    stats.run_time_ns += info.run_time_ns;
  }
  return stats;
}

}  // namespace ea
