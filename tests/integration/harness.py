"""Shared helpers for integration tests: run the real agent against the real kernel.

Every test runs as root, makes its own uniquely named resources, and removes them even on failure
(use `with Cleanup() as cleanup:` and register undo actions). A test that cannot run here calls
skip(reason): it prints the reason loudly and exits 77, which ctest reports as skipped.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

BUILD_DIR = os.environ.get("EA_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.environ.get("EA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
AGENT = os.path.join(BUILD_DIR, "ebpf-agent")


# The fixture tests/fixtures/bpf/test_events.bpf.c: one numbered record per getppid() call of
# `target_tgid`, tagged with `cookie`.
TEST_EVENTS_OBJECT = os.path.join(BUILD_DIR, "tests", "bpf", "test_events.bpf.o")


def test_events_spec(name, target_tgid, cookie=None, version="1"):
    """A spec loading the test_events fixture into channel test_events (a ring buffer)."""
    cookie_line = f"\n          cookie: {cookie}" if cookie is not None else ""
    return f"""kind: ebpfprogram
name: {name}
version: "{version}"
spec:
  programs:
    - name: events
      path: file://{TEST_EVENTS_OBJECT}
      type: ebpf_object
      properties:
        variables:
          target_tgid: {target_tgid}{cookie_line}
  channels:
    test_events:
      type: ring_buffer
"""


def skip(reason):
    print(f"SKIPPED: {reason}", flush=True)
    sys.exit(77)


def require_root():
    if os.geteuid() != 0:
        skip("needs root (loads BPF programs)")


def unique(prefix):
    """A short unique name (fits interface names: 15 chars)."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Cleanup:
    """Runs registered undo actions in reverse order, whatever happens."""

    def __init__(self):
        self.actions = []

    def add(self, action):
        self.actions.append(action)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for action in reversed(self.actions):
            try:
                action()
            except Exception as error:  # keep undoing the rest
                print(f"cleanup: {error}", file=sys.stderr)
        return False


def read_records(path):
    """JSON-lines records written by the file sink (incomplete last line ignored)."""
    records = []
    if not os.path.exists(path):
        return records
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                records.append(json.loads(line))
    return records


class _AgentProcess:
    """An ebpf-agent process writing its log to a file; stopped with SIGTERM (SIGKILL after a grace)."""

    def _spawn(self, args):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def records(self):
        return read_records(self.output)

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, grace=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


class Agent(_AgentProcess):
    """`ebpf-agent run` in the background, writing records to a JSON-lines file."""

    def __init__(self, cleanup, specs, extra_args=(), workdir=None, binary=AGENT):
        self.workdir = workdir or tempfile.mkdtemp(prefix="ea-test-")
        cleanup.add(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        self.output = os.path.join(self.workdir, "records.jsonl")
        self.log_path = os.path.join(self.workdir, "agent.log")
        args = [binary, "run", "--output", f"file:{self.output}"]
        for spec in specs:
            args += ["-f", spec]
        args += list(extra_args)
        self._spawn(args)
        cleanup.add(self.stop)

    def wait_ready(self, timeout=20):
        """Waits for the agent's 'running' log line (all specs started)."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log_text()}")
            return "agent running" in self.log_text()
        wait_for(ready, timeout, what="agent to start")


def run_agent(*args, check=False, timeout=60, input=None):
    """Runs an ebpf-agent subcommand to completion; returns CompletedProcess with text output."""
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=timeout, check=check, input=input)


def write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Daemon(_AgentProcess):
    """`ebpf-agent daemon` with its own socket, specs directory and output file."""

    def __init__(self, cleanup, workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="ea-daemon-")
        cleanup.add(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        self.socket = os.path.join(self.workdir, "agent.sock")
        self.specs_dir = os.path.join(self.workdir, "specs.d")
        self.output = os.path.join(self.workdir, "records.jsonl")
        self.log_path = os.path.join(self.workdir, "daemon.log")
        self._spawn([AGENT, "daemon", "--socket", self.socket, "--specs-dir", self.specs_dir,
                     "--output", f"file:{self.output}"])
        cleanup.add(self.stop)
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 15, what="control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")

    def ctl(self, *args):
        return run_agent(*args, "--socket", self.socket)

    def apply(self, text, name="spec.yaml"):
        return self.ctl("apply", "-f", write_file(self.workdir, name, text))

    def list(self):
        result = self.ctl("list", "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, name_prefix=""):
    """The agent's /metrics on 127.0.0.1:port as a list of (name, {label: value}, float value)."""
    import re
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#") or not line.startswith(name_prefix):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        samples.append((name, dict(label.findall(labels)), float(value)))
    return samples


def metric_sum(samples, name, **labels):
    """The sum of the samples called `name` whose labels include all of `labels`."""
    return sum(value for sample_name, sample_labels, value in samples
               if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()))
