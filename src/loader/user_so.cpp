#include "loader/user_so.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/json_validate.h"
#include "ebpf_agent/plugin.h"
#include "loader/ebpf_object.h"
#include "loader/plugin_metrics.h"
#include "pipeline/crash_guard.h"

// The opaque object handle of plugin.h: which object a preload/postload hook may touch, and when.
struct ea_object {
  enum class Phase { Preload, Postload };
  ea::EbpfObject* object = nullptr;
  Phase phase = Phase::Preload;
  std::string last_error;  // why the last API call failed; quoted if the hook then fails
};

namespace ea {
namespace {

constexpr uint32_t kInitialResultCapacity = 4 * 1024;
constexpr uint32_t kMaxResultCapacity = 1024 * 1024;
constexpr size_t kMaxQuotedPluginText = 1024;

std::string code_text(int code) {
  if (code < 0 && code > -4096) return fmt::format("{} ({})", code, std::strerror(-code));
  return std::to_string(code);
}

// --- struct ea_object_api: agent services for preload/postload hooks ------------------------------
// Nothing may throw through the plugin's C frames, hence the catch-alls.

int api_refuse(ea_object* handle, int code, std::string message) {
  handle->last_error = std::move(message);
  return code;
}

int api_fail(ea_object* handle, const Error& error, int code) { return api_refuse(handle, code, error.message); }

const char* api_object_name(const ea_object* handle) { return handle ? handle->object->name().c_str() : ""; }

int api_set_variable(ea_object* handle, const char* name, const void* data, uint32_t len) {
  if (!handle || !name || (!data && len)) return -EINVAL;
  if (handle->phase != ea_object::Phase::Preload)
    return api_refuse(handle, -EPERM, fmt::format("set_variable({}) is preload-only: the object is already loaded", name));
  try {
    auto result = handle->object->set_variable(name, std::span(static_cast<const std::byte*>(data), len));
    return result ? 0 : api_fail(handle, result.error(), -EINVAL);
  } catch (...) {
    return -ENOMEM;
  }
}

int api_set_map_max_entries(ea_object* handle, const char* map, uint32_t max_entries) {
  if (!handle || !map) return -EINVAL;
  if (handle->phase != ea_object::Phase::Preload)
    return api_refuse(handle, -EPERM,
                      fmt::format("set_map_max_entries({}) is preload-only: the object is already loaded", map));
  try {
    auto result = handle->object->set_map_max_entries(map, max_entries);
    return result ? 0 : api_fail(handle, result.error(), -EINVAL);
  } catch (...) {
    return -ENOMEM;
  }
}

int api_map_update(ea_object* handle, const char* map, const void* key, uint32_t key_len, const void* value,
                   uint32_t value_len) {
  if (!handle || !map || (!key && key_len) || (!value && value_len)) return -EINVAL;
  if (handle->phase != ea_object::Phase::Postload)
    return api_refuse(handle, -EPERM, fmt::format("map_update({}) is postload-only: the object is not loaded yet", map));
  try {
    if (!handle->object->has_map(map))
      return api_refuse(handle, -ENOENT, fmt::format("map_update: object has no map '{}'", map));
    auto result = handle->object->map_update(map, std::span(static_cast<const std::byte*>(key), key_len),
                                             std::span(static_cast<const std::byte*>(value), value_len));
    return result ? 0 : api_fail(handle, result.error(), -EINVAL);
  } catch (...) {
    return -ENOMEM;
  }
}

int api_map_fd(ea_object* handle, const char* map) {
  if (!handle || !map) return -EINVAL;
  if (handle->phase != ea_object::Phase::Postload)
    return api_refuse(handle, -EPERM, fmt::format("map_fd({}) is postload-only: the object is not loaded yet", map));
  try {
    int fd = handle->object->map_fd(map);
    return fd >= 0 ? fd : api_refuse(handle, -ENOENT, fmt::format("map_fd: object has no map '{}'", map));
  } catch (...) {
    return -ENOMEM;
  }
}

const ea_object_api kObjectApi = {
    .size = sizeof(ea_object_api),
    .object_name = api_object_name,
    .set_variable = api_set_variable,
    .set_map_max_entries = api_set_map_max_entries,
    .map_update = api_map_update,
    .map_fd = api_map_fd,
};

template <class Fn>
Fn find_symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

// A loaded plugin, shared by the UserSoPlugin and every processor made from it, so the .so stays
// loaded until the last processor is gone.
struct LoadedPlugin {
  std::string program;  // the user_so program's name in the spec
  std::string spec_name;
  std::string origin;   // where the .so came from, for messages
  void* handle = nullptr;
  void* state = nullptr;
  bool initialized = false;
  ea_plugin_init_fn init = nullptr;
  ea_plugin_preload_fn preload = nullptr;
  ea_plugin_postload_fn postload = nullptr;
  ea_plugin_fini_fn fini = nullptr;
  ea_plugin_last_error_fn last_error = nullptr;
  std::map<std::string, ea_process_fn, std::less<>> functions;
  std::unique_ptr<PluginMetrics> metrics;  // outlives the plugin's use of it (fini runs first)

  std::atomic<bool> crashed{false};
  std::string crash_message;  // written once, before `crashed` is set; read only after it is
  std::mutex crash_mutex;

  ~LoadedPlugin() {
    // A crashed plugin's code is never run again — not fini, not its library destructors — so
    // its mapping is deliberately left in place.
    if (crashed.load(std::memory_order_acquire)) return;
    if (initialized && fini) {
      auto call = [this] { fini(state); };
      if (auto crash = call_guarded(call)) mark_crashed(*crash, "ea_plugin_fini");
    }
    if (handle && !crashed.load(std::memory_order_acquire)) dlclose(handle);
  }

  void mark_crashed(const CrashInfo& crash, std::string_view during) {
    std::lock_guard lock(crash_mutex);
    if (crashed.load(std::memory_order_relaxed)) return;  // another thread crashed first
    crash_message = fmt::format("plugin '{}' ({}) crashed with {} in {}; disabled", program, origin,
                                describe(crash), during);
    crashed.store(true, std::memory_order_release);
    spdlog::error("spec '{}': {} — its records now count as failed; fix the plugin and apply the spec again",
                  spec_name, crash_message);
  }

  // ": <ea_plugin_last_error text>" when the plugin has something to say.
  std::string plugin_error_suffix() {
    if (!last_error || crashed.load(std::memory_order_acquire)) return {};
    const char* text = nullptr;
    auto call = [&] { text = last_error(state); };
    if (auto crash = call_guarded(call)) {
      mark_crashed(*crash, "ea_plugin_last_error");
      return {};
    }
    if (!text || !*text) return {};
    return fmt::format(": {}", std::string_view(text, strnlen(text, kMaxQuotedPluginText)));
  }

  Result<void> run_object_hook(ea_plugin_preload_fn hook, const char* hook_name, ea_object::Phase phase,
                               EbpfObject& object) {
    if (!hook) return {};
    if (crashed.load(std::memory_order_acquire)) return fail(crash_message);
    ea_object handle{&object, phase, {}};
    int code = 0;
    auto call = [&] { code = hook(state, &kObjectApi, &handle); };
    if (auto crash = call_guarded(call)) {
      mark_crashed(*crash, hook_name);
      return fail(crash_message);
    }
    if (code == 0) return {};
    std::string message = fmt::format("{} of plugin '{}' ({}) failed on object '{}' with {}{}", hook_name, program,
                                      origin, object.name(), code_text(code), plugin_error_suffix());
    if (!handle.last_error.empty()) message += fmt::format(" (last object API error: {})", handle.last_error);
    return fail(std::move(message));
  }
};

// Calls one processing function per record, reusing one context and result buffer per shard.
class UserSoProcessor final : public Processor {
 public:
  UserSoProcessor(std::shared_ptr<LoadedPlugin> plugin, ea_process_fn function, std::string function_name,
                  std::string spec, std::string channel)
      : plugin_(std::move(plugin)),
        function_(function),
        function_name_(std::move(function_name)),
        spec_(std::move(spec)),
        channel_(std::move(channel)),
        result_(kInitialResultCapacity) {}

  ProcessOutcome process(std::span<const std::byte> input, RecordMeta& meta, std::string& fields) override {
    if (plugin_->crashed.load(std::memory_order_acquire)) return failed(plugin_->crash_message);
    if (input.size() > UINT32_MAX) return failed(fmt::format("record of {} bytes is too large", input.size()));
    if (!call(input, meta)) return ProcessOutcome::Failed;

    if (ctx_.err_ctx.err_code == EA_ERR_RESULT_TOO_SMALL) {
      uint32_t needed = ctx_.res_ctx.len;
      if (needed <= result_.size())
        return failed(fmt::format("{} returned EA_ERR_RESULT_TOO_SMALL but asked for {} bytes, no more than the {} it had",
                                  function_name_, needed, result_.size()));
      if (needed > kMaxResultCapacity)
        return failed(fmt::format("{} needs a {}-byte result; the limit is {} bytes", function_name_, needed,
                                  kMaxResultCapacity));
      result_.resize(std::min(std::bit_ceil(needed), kMaxResultCapacity));
      if (!call(input, meta)) return ProcessOutcome::Failed;
      if (ctx_.err_ctx.err_code == EA_ERR_RESULT_TOO_SMALL)
        return failed(fmt::format("{} returned EA_ERR_RESULT_TOO_SMALL again after the result buffer grew to {} bytes",
                                  function_name_, result_.size()));
    }

    switch (ctx_.err_ctx.err_code) {
      case EA_OK:
        break;
      case EA_SKIP:
        return ProcessOutcome::Skipped;
      default: {
        std::string_view why(ctx_.err_ctx.err_msg, strnlen(ctx_.err_ctx.err_msg, sizeof(ctx_.err_ctx.err_msg)));
        return failed(fmt::format("{} failed with code {}: {}", function_name_, ctx_.err_ctx.err_code,
                                  why.empty() ? "(no err_msg)" : why));
      }
    }
    return accept_result(meta, fields);
  }

  std::string_view error() const override { return error_; }

 private:
  ProcessOutcome failed(std::string message) {
    error_ = std::move(message);
    return ProcessOutcome::Failed;
  }

  // One guarded call; false (with error_ set) when the plugin crashed.
  bool call(std::span<const std::byte> input, const RecordMeta& meta) {
    ctx_.abi_version = EA_PLUGIN_ABI_VERSION;
    ctx_.plugin_state = plugin_->state;
    ctx_.spec = spec_.c_str();
    ctx_.channel = channel_.c_str();
    ctx_.ring_ctx.data = reinterpret_cast<const uint8_t*>(input.data());
    ctx_.ring_ctx.len = static_cast<uint32_t>(input.size());
    ctx_.err_ctx.err_code = EA_OK;
    ctx_.err_ctx.err_msg[0] = '\0';
    ctx_.res_ctx.data = result_.data();
    ctx_.res_ctx.cap = static_cast<uint32_t>(result_.size());
    ctx_.res_ctx.len = 0;
    ctx_.meta.pid = meta.pid;
    ctx_.meta.tgid = meta.tgid;
    std::memset(ctx_.meta.comm, 0, sizeof(ctx_.meta.comm));
    std::memcpy(ctx_.meta.comm, meta.comm.data(), std::min(meta.comm.size(), sizeof(ctx_.meta.comm) - 1));

    auto invoke = [this] { function_(&ctx_); };
    if (auto crash = call_guarded(invoke)) {
      plugin_->mark_crashed(*crash, function_name_);
      error_ = plugin_->crash_message;
      return false;
    }
    return true;
  }

  // The plugin's bytes are untrusted: they must fit the buffer and be exactly one JSON object, or
  // they would corrupt the envelope line they are embedded in. check_json_object is a one-pass,
  // allocation-free check (a full parse costs ~10x more per record).
  ProcessOutcome accept_result(RecordMeta& meta, std::string& fields) {
    uint32_t length = ctx_.res_ctx.len;
    if (length > result_.size())
      return failed(fmt::format("{} reported a {}-byte result in a {}-byte buffer", function_name_, length,
                                result_.size()));
    std::string_view text(reinterpret_cast<const char*>(result_.data()), length);
    JsonCheck check = check_json_object(text);
    if (!check.ok)
      return failed(fmt::format("{} returned invalid JSON at byte {} of {}: {}", function_name_, check.offset, length,
                                check.problem));
    size_t start = fields.size();
    fields.append(text);
    if (check.has_line_breaks) {  // whitespace between tokens only (the check refuses them in strings)
      for (size_t i = start; i < fields.size(); ++i)
        if (fields[i] == '\n' || fields[i] == '\r') fields[i] = ' ';
    }

    meta.pid = ctx_.meta.pid;
    meta.tgid = ctx_.meta.tgid;
    std::memcpy(comm_, ctx_.meta.comm, sizeof(comm_));
    meta.comm = std::string_view(comm_, strnlen(comm_, sizeof(comm_)));
    return ProcessOutcome::Emitted;
  }

  std::shared_ptr<LoadedPlugin> plugin_;
  ea_process_fn function_;
  std::string function_name_;
  std::string spec_;
  std::string channel_;
  std::vector<uint8_t> result_;
  ea_tracer_ctx ctx_{};
  char comm_[EA_COMM_LEN] = {};
  std::string error_;
};

}  // namespace

struct UserSoPlugin::Impl : LoadedPlugin {};

Result<std::shared_ptr<UserSoPlugin>> UserSoPlugin::load(const Spec& spec, const ProgramSpec& program,
                                                          FetchedFile file, MetricRegistry* metrics) {
  const auto* props = std::get_if<UserSoProps>(&program.props);
  if (!props) return failf("program '{}' is not a user_so program", program.name);

  auto impl = std::make_shared<Impl>();
  impl->program = program.name;
  impl->spec_name = spec.name;
  impl->origin = file.origin.empty() ? file.local_path : file.origin;
  // The caller prefixes the program's name and position; messages here start with the file.
  const std::string& where = impl->origin;

  // The plugin's constructors run inside dlopen, unguarded: a fault there would leave the dynamic
  // loader's lock held, which no guard can recover from.
  dlerror();
  impl->handle = dlopen(file.local_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!impl->handle) {
    const char* why = dlerror();
    return failf("{}: cannot load the plugin: {}", where, why ? why : "dlopen failed");
  }

  auto abi_version = find_symbol<ea_plugin_abi_version_fn>(impl->handle, "ea_plugin_abi_version");
  if (!abi_version)
    return failf("{}: not an ebpf-agent plugin: missing symbol ea_plugin_abi_version (add EA_PLUGIN_DECLARE_ABI() "
                 "from include/ebpf_agent/plugin.h)",
                 where);
  uint32_t version = 0;
  auto ask_version = [&] { version = abi_version(); };
  if (auto crash = call_guarded(ask_version)) {
    impl->mark_crashed(*crash, "ea_plugin_abi_version");
    return fail(impl->crash_message);
  }
  if (version < EA_PLUGIN_ABI_MIN_VERSION || version > EA_PLUGIN_ABI_VERSION)
    return failf("{}: built for plugin ABI v{}, this agent speaks v{} to v{}: rebuild it against this agent's "
                 "include/ebpf_agent/plugin.h",
                 where, version, EA_PLUGIN_ABI_MIN_VERSION, EA_PLUGIN_ABI_VERSION);

  std::vector<std::string_view> missing;
  for (const FunctionSpec& function : props->functions) {
    auto symbol = find_symbol<ea_process_fn>(impl->handle, function.name.c_str());
    if (symbol) {
      impl->functions.emplace(function.name, symbol);
    } else {
      missing.push_back(function.name);
    }
  }
  if (!missing.empty()) {
    const FunctionSpec& first = *std::ranges::find(props->functions, missing.front(), &FunctionSpec::name);
    return failf("{} does not export {} {} (properties.functions at {}): define {} as "
                 "`void NAME(struct ea_tracer_ctx *ctx)` with C linkage (extern \"C\" in C++), not static",
                 where, missing.size() == 1 ? "symbol" : "symbols", fmt::join(missing, ", "), first.pos.str(),
                 missing.size() == 1 ? "it" : "them");
  }

  impl->init = find_symbol<ea_plugin_init_fn>(impl->handle, "ea_plugin_init");
  impl->preload = find_symbol<ea_plugin_preload_fn>(impl->handle, "ea_plugin_preload");
  impl->postload = find_symbol<ea_plugin_postload_fn>(impl->handle, "ea_plugin_postload");
  impl->fini = find_symbol<ea_plugin_fini_fn>(impl->handle, "ea_plugin_fini");
  impl->last_error = find_symbol<ea_plugin_last_error_fn>(impl->handle, "ea_plugin_last_error");

  bool has_settings = !props->initfile.empty() || !props->config.is_null();
  if (!impl->init && has_settings)
    return failf("{}: properties.initfile/config are set but the plugin has no ea_plugin_init to receive them: "
                 "remove them or add the hook",
                 where);
  if (impl->init) {
    std::string initfile;
    if (!props->initfile.empty()) {
      auto resolved = resolve_local_path(props->initfile, spec.base_dir);
      if (!resolved) return std::unexpected(with_context(resolved.error(), "properties.initfile"));
      initfile = *resolved;
    }
    std::string config = props->config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    impl->metrics = std::make_unique<PluginMetrics>(metrics, spec.name);
    ea_plugin_init_args args{
        .abi_version = EA_PLUGIN_ABI_VERSION,
        .spec = spec.name.c_str(),
        .program = program.name.c_str(),
        .initfile = initfile.empty() ? nullptr : initfile.c_str(),
        .config_json = config.c_str(),
        .metrics = impl->metrics->api(),
    };
    int code = 0;
    void* state = nullptr;
    auto init = [&] { code = impl->init(&args, &state); };
    if (auto crash = call_guarded(init)) {
      impl->mark_crashed(*crash, "ea_plugin_init");
      return fail(impl->crash_message);
    }
    impl->state = state;
    if (code != 0)
      return failf("{}: ea_plugin_init failed with {}{}", where, code_text(code), impl->plugin_error_suffix());
    impl->initialized = true;
  }

  auto plugin = std::shared_ptr<UserSoPlugin>(new UserSoPlugin());
  plugin->impl_ = std::move(impl);
  plugin->name_ = program.name;
  return plugin;
}

UserSoPlugin::~UserSoPlugin() = default;

Result<void> UserSoPlugin::preload(EbpfObject& object) {
  return impl_->run_object_hook(impl_->preload, "ea_plugin_preload", ea_object::Phase::Preload, object);
}

Result<void> UserSoPlugin::postload(EbpfObject& object) {
  return impl_->run_object_hook(impl_->postload, "ea_plugin_postload", ea_object::Phase::Postload, object);
}

Result<ProcessorFactory> UserSoPlugin::processor(std::string_view function) {
  auto found = impl_->functions.find(function);
  if (found == impl_->functions.end()) {
    std::vector<std::string_view> listed;
    for (const auto& [name, fn] : impl_->functions) listed.push_back(name);
    return failf("user_so program '{}' has no processing function '{}' (its properties.functions: {}): add it there",
                 name_, function, listed.empty() ? "none" : fmt::format("{}", fmt::join(listed, ", ")));
  }
  std::shared_ptr<LoadedPlugin> loaded = impl_;
  return ProcessorFactory([loaded, fn = found->second, function_name = found->first](
                              const ProcessorContext& context) -> Result<std::unique_ptr<Processor>> {
    std::string spec = context.spec ? context.spec->name : loaded->spec_name;
    std::string channel = context.channel ? context.channel->name : std::string();
    return std::make_unique<UserSoProcessor>(loaded, fn, function_name, std::move(spec), std::move(channel));
  });
}

bool UserSoPlugin::crashed() const { return impl_->crashed.load(std::memory_order_acquire); }

}  // namespace ea
