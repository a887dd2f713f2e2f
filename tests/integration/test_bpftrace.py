"""bpftrace programs through the real CLI: the shipped openfile example (pipe channel + the
bpftrace_default.so plugin) sees a file this test opens, an unmodified tool from bpftrace's own
collection (execsnoop.bt, tracepoints only) sees a program this test runs, and once the agent
stops no state directory, FIFO or bpftrace process is left."""
import os
import shutil
import subprocess
import tempfile

from harness import Agent, Cleanup, SOURCE_DIR, require_root, skip, unique, wait_for, write_file

STATE_ROOT = "/var/lib/ebpf-agent/bpftrace"
TOOL = "/usr/sbin/execsnoop.bt"


def bpftrace_processes(marker):
    """PIDs of processes whose command line mentions `marker` (a state directory)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "bpftrace" in cmdline and marker in cmdline:
            pids.append(int(entry))
    return pids


def own_comm():
    with open("/proc/self/comm") as f:
        return f.read().strip()


def assert_left_nothing(state_dir):
    assert not os.path.exists(state_dir), f"{state_dir} is left: {os.listdir(state_dir)}"
    assert not bpftrace_processes(state_dir), f"bpftrace still runs for {state_dir}"


def assert_running(state_dir):
    assert os.path.isdir(state_dir), f"no state directory {state_dir}"
    assert bpftrace_processes(state_dir), f"no bpftrace process for {state_dir}"


def test_openfile_example(cleanup):
    spec = os.path.join(SOURCE_DIR, "specs/examples/bpftrace_openfile.yaml")
    state_dir = f"{STATE_ROOT}/bpftrace_openfile.openfile"
    agent = Agent(cleanup, [spec])
    agent.wait_ready()
    assert_running(state_dir)
    assert os.path.exists(f"{state_dir}/output"), "the talk's FIFO path"

    opened = os.path.join(tempfile.gettempdir(), unique("ea-openfile-") + ".txt")
    cleanup.add(lambda: os.path.exists(opened) and os.unlink(opened))
    with open(opened, "w") as f:
        f.write("x")

    def mine():
        return [r for r in agent.records() if r["data"].get("path") == opened]
    record = wait_for(mine, 15, what=f"a record of {opened} being opened")[0]
    print("record:", record)
    data = record["data"]
    assert data["type"] == "printf", record
    assert data["pid"] == os.getpid() and data["tid"] == os.getpid(), record
    assert data["comm"] == own_comm(), record
    assert data["ret"] >= 0, record
    assert record["tgid"] == os.getpid() and record["pid"] == os.getpid(), "the envelope names the opener"
    assert record["comm"] == own_comm(), record
    assert record["spec"] == "bpftrace_openfile" and record["channel"] == "bpftrace_channel", record

    assert agent.stop() == 0, agent.log_text()
    assert_left_nothing(state_dir)


def test_unmodified_tool(cleanup):
    if not os.path.exists(TOOL):
        skip(f"{TOOL} is missing (Debian ships it in the bpftrace package)")
    with open(TOOL) as f:
        text = f.read()
    if "kprobe:" in text or "uprobe:" in text:
        skip(f"{TOOL} uses kprobes or uprobes, which this test cannot rely on")

    workdir = tempfile.mkdtemp(prefix="ea-bt-tool-")
    cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    name = unique("eabt")
    spec = write_file(workdir, "tool.yaml", f"""\
kind: ebpfprogram
name: {name}
version: '1'
spec:
  programs:
    - name: tool
      path: file://{TOOL}
      type: bpftrace
""")
    state_dir = f"{STATE_ROOT}/{name}.tool"
    agent = Agent(cleanup, [spec])
    agent.wait_ready()
    assert_running(state_dir)

    # A uniquely named copy of a program, so its exec can only be ours.
    program = os.path.join(workdir, unique("ea_exec_"))
    shutil.copy("/bin/true", program)
    subprocess.run([program, "--marker"], check=True)

    def execs():
        return [r for r in agent.records()
                if r["data"].get("type") == "join" and program in r["data"].get("message", "")]
    record = wait_for(execs, 15, what=f"execsnoop to report {program}")[0]
    print("record:", record)
    assert record["data"]["message"] == f"{program} --marker", record
    assert record["spec"] == name and record["program"] == "tool", record
    header = [r for r in agent.records() if r["data"].get("type") == "printf" and "PID" in r["data"]["message"]]
    assert header, "the BEGIN header line became a record too"

    assert agent.stop() == 0, agent.log_text()
    assert_left_nothing(state_dir)


def main():
    require_root()
    if not shutil.which("bpftrace"):
        skip("bpftrace is not installed (apt-get install bpftrace)")
    for test in (test_openfile_example, test_unmodified_tool):
        print(f"--- {test.__name__}", flush=True)
        with Cleanup() as cleanup:
            test(cleanup)
    print("ok")


if __name__ == "__main__":
    main()
