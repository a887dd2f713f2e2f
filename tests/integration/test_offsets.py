#!/usr/bin/env python3
"""Uprobes on a stripped program through the offsets database, end to end.

A small C program with a non-inlined function is compiled here. `ebpf-agent offsets generate`
writes its database entry from the unstripped copy (keyed by build-id, checked against the
stripped copy) into a temporary database directory. A stripped copy (`nm` shows the symbol is
gone) is then probed by symbol name with `--offsets-dir`: the agent must count exactly the calls
the program makes (spec `metrics:` over the fixture uprobe_hits.bpf.o, read from /metrics). The
spec's `binary` is a list whose first candidate does not exist, so the skip is exercised too.
Without the entry the agent refuses the spec with the error that names the file, its build-id and
hash, and `offsets generate`. `offsets identify` on the stripped copy prints the entry, and on
this host's libssl.so.3 the shipped database entry.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.request

from harness import (BUILD_DIR, SOURCE_DIR, Agent, Cleanup, require_root, run_agent, skip, wait_for, write_file)

FIXTURE = os.path.join(BUILD_DIR, "tests", "bpf", "uprobe_hits.bpf.o")
CALLS = 37
LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"

TARGET_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int ea_offsets_target(int x) { __asm__ volatile(""); return x * 7 + 3; }
int main(int argc, char **argv) {
  int calls = argc > 1 ? atoi(argv[1]) : 0;
  long sum = 0;
  for (int i = 0; i < calls; ++i) sum += ea_offsets_target(i);
  printf("%ld\n", sum);
  return 0;
}
"""

SPEC = """kind: ebpfprogram
name: offsets_test
spec:
  programs:
    - name: hits
      type: ebpf_object
      path: file://{fixture}
      properties:
        attach:
          count_call: {{binary: [/nonexistent/libea_absent.so.1, {binary}], symbol: ea_offsets_target}}
      metrics:
        - name: offsets_target_calls
          help: calls of ea_offsets_target per process
          type: counter
          map: uprobe_calls
          labels:
            - {{name: tgid, size: 4}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(listen):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{listen}/metrics", timeout=5) as response:
        return response.read().decode()


def build_target(workdir):
    """The program, its stripped copy, and the stripped copy's build-id."""
    source = write_file(workdir, "target.c", TARGET_C)
    full = os.path.join(workdir, "target")
    stripped = os.path.join(workdir, "target.stripped")
    subprocess.run(["gcc", "-O2", "-g", "-o", full, source], check=True)
    subprocess.run(["strip", "-o", stripped, full], check=True)
    assert "ea_offsets_target" in subprocess.run(["nm", full], capture_output=True, text=True).stdout
    nm = subprocess.run(["nm", stripped], capture_output=True, text=True)
    assert "ea_offsets_target" not in nm.stdout, f"strip left the symbol in:\n{nm.stdout}"
    assert "no symbols" in nm.stderr, f"nm on the stripped copy: {nm.stdout}{nm.stderr}"
    identify = run_agent("offsets", "identify", stripped)
    assert identify.returncode == 0, identify.stderr
    build_id = re.search(r"^build-id:\s+(\S+)$", identify.stdout, re.M).group(1)
    xxh3 = re.search(r"^xxh3:\s+([0-9a-f]{16})$", identify.stdout, re.M).group(1)
    assert "entry:     unknown" in identify.stdout, identify.stdout
    assert "ebpf-agent offsets generate UNSTRIPPED_COPY" in identify.stdout, identify.stdout
    return full, stripped, build_id, xxh3


def generate_entry(full, stripped, db_dir):
    result = run_agent("offsets", "generate", full, "--symbols", "ea_offsets_target", "--identity-from", stripped,
                       "--name", "integration test target")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("# Offsets database file for ebpf-agent"), text
    assert re.search(r"^      ea_offsets_target: 0x[0-9a-f]+$", text, re.M), text
    write_file(db_dir, "target.yaml", text)
    return int(re.search(r"ea_offsets_target: (0x[0-9a-f]+)", text).group(1), 16)


def generate_checks_the_build(full, stripped, offset, workdir):
    """A separate debug file gives the same entry through the deployed file's layout; another build,
    or a debug file without the deployed copy, is refused with the reason."""
    debug = os.path.join(workdir, "target.debug")
    subprocess.run(["objcopy", "--only-keep-debug", full, debug], check=True)
    from_debug = run_agent("offsets", "generate", debug, "--symbols", "ea_offsets_target", "--identity-from", stripped)
    assert from_debug.returncode == 0, from_debug.stderr
    assert f"      ea_offsets_target: 0x{offset:x}\n" in from_debug.stdout, from_debug.stdout

    alone = run_agent("offsets", "generate", debug, "--symbols", "ea_offsets_target")
    assert alone.returncode == 1 and "holds no code for ea_offsets_target (a separate debug file?): pass --identity-from" \
        in alone.stderr, alone.stderr

    other_source = write_file(workdir, "other.c", TARGET_C.replace("x * 7 + 3", "x * 11 + 5"))
    other = os.path.join(workdir, "other")
    subprocess.run(["gcc", "-O2", "-g", "-o", other, other_source], check=True)
    mismatch = run_agent("offsets", "generate", other, "--symbols", "ea_offsets_target", "--identity-from", stripped)
    assert mismatch.returncode == 1 and "are different builds: offsets from one do not fit the other" in mismatch.stderr, \
        mismatch.stderr

    missing = run_agent("offsets", "generate", stripped, "--symbols", "ea_offsets_target")
    assert missing.returncode == 1 and "has no function ea_offsets_target in its symbol tables — is it stripped?" \
        in missing.stderr, missing.stderr


def identify_prints_the_entry(stripped, db_dir, offset):
    result = run_agent("offsets", "identify", stripped, "--offsets-dir", db_dir)
    assert result.returncode == 0, result.stderr
    expected = f"entry:     'integration test target' (matched by build-id) at {os.path.join(db_dir, 'target.yaml')}:"
    assert expected in result.stdout, result.stdout
    assert f"  ea_offsets_target: 0x{offset:x}" in result.stdout, result.stdout
    assert "functions: none in .dynsym, none in .symtab" in result.stdout, result.stdout


def refused_without_entry(spec, stripped, build_id, xxh3, workdir):
    empty = os.path.join(workdir, "empty-db")
    os.makedirs(empty)
    result = run_agent("run", "-f", spec, "--offsets-dir", empty, "--output", "stdout", "--duration", "1s",
                       "--metrics-listen", "off")
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"a probe on a missing symbol was accepted:\n{output}"
    expected = (f"symbol 'ea_offsets_target' not found in {stripped} (build-id {build_id}, xxh3 {xxh3}), "
                f"not in the offsets database either (searched: {empty}")
    assert expected in output, f"expected:\n{expected}\nin:\n{output}"
    assert (f"run `ebpf-agent offsets generate UNSTRIPPED_COPY --symbols ea_offsets_target --identity-from {stripped}`"
            in output), output


def shipped_libssl_entry():
    """The shipped database knows this host's libssl.so.3 (it was generated here)."""
    if not os.path.exists(LIBSSL):
        print(f"NOTE: {LIBSSL} is not installed; shipped entry not checked")
        return
    result = run_agent("offsets", "identify", LIBSSL)
    assert result.returncode == 0, result.stderr
    shipped = open(os.path.join(SOURCE_DIR, "offsets", "openssl.yaml")).read()
    build_id = re.search(r"^build-id:\s+(\S+)$", result.stdout, re.M).group(1)
    if build_id not in shipped:
        print(f"NOTE: this host's libssl.so.3 (build-id {build_id}) is not the build the shipped entry was made from")
        return
    assert "(matched by build-id)" in result.stdout, result.stdout
    for symbol in ("SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_do_handshake", "SSL_shutdown"):
        line = re.search(rf"^  {symbol}: 0x[0-9a-f]+(.*)$", result.stdout, re.M)
        assert line and "(the file's symbol table agrees)" in line.group(1), result.stdout


def main():
    require_root()
    for tool in ("gcc", "strip", "nm", "objcopy"):
        if not shutil.which(tool):
            skip(f"needs {tool} to build and strip the probed program")
    if not os.path.exists(FIXTURE):
        skip(f"fixture {FIXTURE} is not built (build the ea_unit_tests target)")

    with Cleanup() as cleanup:
        workdir = tempfile.mkdtemp(prefix="ea-offsets-")
        cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
        db_dir = os.path.join(workdir, "offsets.d")
        os.makedirs(db_dir)

        full, stripped, build_id, xxh3 = build_target(workdir)
        spec = write_file(workdir, "spec.yaml", SPEC.format(fixture=FIXTURE, binary=stripped))
        refused_without_entry(spec, stripped, build_id, xxh3, workdir)

        offset = generate_entry(full, stripped, db_dir)
        generate_checks_the_build(full, stripped, offset, workdir)
        identify_prints_the_entry(stripped, db_dir, offset)

        listen = f"127.0.0.1:{free_port()}"
        agent = Agent(cleanup, [spec], ["--offsets-dir", db_dir, "--metrics-listen", listen])
        agent.wait_ready()
        log = agent.log_text()
        assert "uprobe count_call: /nonexistent/libea_absent.so.1 is not on this host, skipped" in log, log
        assert (f"uprobe count_call: {stripped} has no symbol 'ea_offsets_target'; attaching at 0x{offset:x} from "
                f"offsets entry 'integration test target'") in log, log

        program = subprocess.Popen([stripped, str(CALLS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = program.communicate(timeout=30)
        assert program.returncode == 0, err
        line = f'offsets_target_calls_total{{tgid="{program.pid}"}} {CALLS}'
        wait_for(lambda: line in scrape(listen), timeout=20,
                 what=f"{line} on /metrics (have {[l for l in scrape(listen).splitlines() if 'offsets_target' in l]})")
        assert agent.stop() == 0, agent.log_text()

        shipped_libssl_entry()
    print(f"offsets: {CALLS} calls of a stripped program's function counted through the offsets database "
          f"(offset 0x{offset:x}, build-id {build_id})")


if __name__ == "__main__":
    main()
