"""specs/examples/oom.yaml end to end, as the talk shows it: a process OOM-killed inside a
memory-limited cgroup this test makes appears as a JSON record — its pid, comm and the kernel's
reason — decoded by the oom_user plugin (a user_so processor), within a second of the kill.

The victim is a python3 child that names itself (/proc/self/comm) and touches memory until the
cgroup's 32 MiB limit makes the kernel kill it. The cgroup (v1 memory controller, or a cgroup v2
with the memory controller already enabled) is removed afterwards, stragglers killed first."""
import os
import signal
import subprocess
import time

from harness import BUILD_DIR, SOURCE_DIR, Agent, Cleanup, require_root, skip, unique, wait_for

EXAMPLE = os.path.join(SOURCE_DIR, "specs", "examples", "oom.yaml")
REQUIRED_FILES = [os.path.join(BUILD_DIR, "bpf", "oom.bpf.o"), os.path.join(BUILD_DIR, "plugins", "oom_user.so")]
LIMIT_BYTES = 32 << 20
MAX_DELAY_S = 1.0

# Names itself, joins nothing (the parent already placed it), then touches 8 MiB at a time.
VICTIM = r"""
import sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
print("allocating", flush=True)
held = []
while True:
    held.append(b"\x01" * (8 << 20))
"""


class MemoryCgroup:
    """A memory-limited cgroup; remove() kills what is left in it and deletes it."""

    def __init__(self, name):
        v1_root = "/sys/fs/cgroup/memory"
        v2_root = "/sys/fs/cgroup"
        if os.path.exists(os.path.join(v1_root, "memory.limit_in_bytes")):
            self.path = os.path.join(v1_root, name)
            self.version = 1
        elif "memory" in self._read(os.path.join(v2_root, "cgroup.subtree_control"), "").split():
            self.path = os.path.join(v2_root, name)
            self.version = 2
        else:
            skip("no memory cgroup controller: neither cgroup v1 /sys/fs/cgroup/memory nor cgroup v2 with "
                 "'memory' in /sys/fs/cgroup/cgroup.subtree_control")
        os.mkdir(self.path)

    @staticmethod
    def _read(path, default=None):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            if default is None:
                raise
            return default

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def limit(self, limit_bytes):
        """Limits memory and keeps the cgroup from swapping, so the limit ends in an OOM kill."""
        if self.version == 1:
            self._write("memory.limit_in_bytes", limit_bytes)
            if os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
                self._write("memory.memsw.limit_in_bytes", limit_bytes)  # memory + swap
            elif swap_in_use():
                self._write("memory.swappiness", 0)  # swap accounting is off: at least do not choose to swap
        else:
            self._write("memory.max", limit_bytes)
            if os.path.exists(os.path.join(self.path, "memory.swap.max")):
                self._write("memory.swap.max", 0)

    def join(self):
        """Moves the calling process into the cgroup (run in the child before exec)."""
        self._write("cgroup.procs", os.getpid())

    def pids(self):
        return [int(line) for line in self._read(os.path.join(self.path, "cgroup.procs"), "").split()]

    def remove(self):
        if not os.path.isdir(self.path):
            return
        def empty():
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not self.pids()
        wait_for(empty, 10, what=f"processes to leave {self.path}")
        wait_for(lambda: _try_rmdir(self.path), 10, what=f"removing {self.path}")


def _try_rmdir(path):
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:  # EBUSY while the last task is still exiting
        return False


def swap_in_use():
    with open("/proc/swaps") as f:
        return len(f.read().splitlines()) > 1


def victim_record(agent, pid):
    for record in agent.records():
        data = record.get("data", {})
        if data.get("tid") == pid or data.get("pid") == pid:
            return record
    return None


def main():
    require_root()
    for path in REQUIRED_FILES:
        if not os.path.exists(path):
            raise AssertionError(f"{path} is missing: build the project first (make check builds it)")

    with Cleanup() as cleanup:
        cgroup = MemoryCgroup(unique("ea-oom-"))
        cleanup.add(cgroup.remove)
        cgroup.limit(LIMIT_BYTES)

        agent = Agent(cleanup, [EXAMPLE])
        agent.wait_ready()

        comm = unique("eaoom")  # fits the kernel's 15-character comm
        victim = subprocess.Popen(["python3", "-c", VICTIM, comm], stdout=subprocess.PIPE, text=True,
                                  preexec_fn=cgroup.join)
        cleanup.add(lambda: victim.poll() is None and victim.kill())
        assert victim.stdout.readline().strip() == "allocating", "the victim did not start"

        victim.wait(timeout=60)
        killed_at = time.monotonic()
        killed_at_wall_ns = time.time_ns()
        assert victim.returncode == -signal.SIGKILL, \
            f"the victim was not OOM-killed: exit status {victim.returncode}"

        record = wait_for(lambda: victim_record(agent, victim.pid), 5,
                          what=f"a record for OOM-killed pid {victim.pid}")
        delay = time.monotonic() - killed_at
        print(f"record arrived {delay * 1000:.0f} ms after the victim was reaped; "
              f"envelope time - kernel time: {(record['time'] - record['data']['timestamp']) / 1e6:.1f} ms")
        print(record)

        data = record["data"]
        assert record["spec"] == "oom", record
        assert record["channel"] == "oom_events", record
        assert record["program"] == "oom", record  # the ebpf_object program feeding the channel
        # Field names only the oom_user plugin writes (the BTF decoder would give ts_ns, start_ns, ...).
        assert {"timestamp", "delta_time", "tid"} <= data.keys() and "ts_ns" not in data, \
            f"not decoded by the oom_user processor: {record}"
        assert data["comm"] == comm and record["comm"] == comm, record
        assert data["tid"] == victim.pid and data["pid"] == victim.pid, record
        assert record["pid"] == victim.pid and record["tgid"] == victim.pid, record
        assert data["ppid"] == os.getpid(), record
        assert data["message"] == "Memory cgroup out of memory", record
        assert 0 < data["delta_time"] < 60e9, f"victim ran {data['delta_time']} ns: {record}"
        assert abs(data["timestamp"] - killed_at_wall_ns) < 5e9, f"kernel time far from the kill: {record}"
        assert data["total_vm_kb"] > 0 and data["rss_kb"] > 0, record
        assert delay <= MAX_DELAY_S, f"the record took {delay:.3f} s after the reap (limit {MAX_DELAY_S} s)"
        kernel_to_envelope_s = (record["time"] - data["timestamp"]) / 1e9
        assert kernel_to_envelope_s <= MAX_DELAY_S, \
            f"{kernel_to_envelope_s:.3f} s from the kill to the record (limit {MAX_DELAY_S} s)"

        assert agent.stop() == 0, f"agent did not stop cleanly:\n{agent.log_text()}"
        print("ok: OOM kill reported through the user_so processor")


if __name__ == "__main__":
    main()
