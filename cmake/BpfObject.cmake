# bpf_object(NAME SOURCE): compile a CO-RE kernel program into ${BPF_OUTPUT_DIR}/NAME.bpf.o and
# generate its skeleton NAME.skel.h (OUTPUT_DIR dir puts them elsewhere, e.g. test fixtures). Adding a program to the build is one bpf/NAME.bpf.c file.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
set(BPF_OUTPUT_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_OUTPUT_DIR})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# vmlinux.h from the running kernel's BTF (regenerated when the kernel's BTF changes).
set(VMLINUX_BTF /sys/kernel/btf/vmlinux)
set(VMLINUX_H ${BPF_OUTPUT_DIR}/vmlinux.h)
add_custom_command(OUTPUT ${VMLINUX_H}
  COMMAND ${BPFTOOL} btf dump file ${VMLINUX_BTF} format c > ${VMLINUX_H}.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${VMLINUX_H}.tmp ${VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${VMLINUX_BTF}"
  VERBATIM)
add_custom_target(vmlinux_h DEPENDS ${VMLINUX_H})
add_custom_target(bpf_objects ALL)

function(bpf_object name src)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "" ${ARGN})
  set(outdir ${BPF_OUTPUT_DIR})
  if(ARG_OUTPUT_DIR)
    set(outdir ${ARG_OUTPUT_DIR})
    file(MAKE_DIRECTORY ${outdir})
  endif()
  set(obj ${outdir}/${name}.bpf.o)
  set(skel ${outdir}/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/bpf/include/*.h)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${BPF_OUTPUT_DIR} -I${CMAKE_SOURCE_DIR}/bpf/include
            -Wall -Wno-unused-function -Wno-compare-distinct-pointer-types
            -c ${src} -o ${obj}
    DEPENDS ${src} ${VMLINUX_H} ${bpf_headers}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${name}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${name} DEPENDS ${obj} ${skel})
  add_dependencies(bpf_objects bpf_${name})
endfunction()
