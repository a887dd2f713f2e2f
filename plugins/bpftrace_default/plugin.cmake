# Shares the agent's bpftrace output parser instead of copying it; the parser needs only
# nlohmann-json. Hidden visibility keeps the plugin's copy from binding to the agent's symbols,
# and no GNU-unique symbols keeps dlclose() able to unload it (hot reload of a new version).
target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src/pipeline/bpftrace_json.cpp
  ${CMAKE_SOURCE_DIR}/src/core/json_escape.cpp)
target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(${name} PRIVATE nlohmann_json::nlohmann_json)
set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_compile_options(${name} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
