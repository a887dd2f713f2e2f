#!/usr/bin/env python3
"""The embedded store (tsdb output) against a real agent: many events from a tracepoint program,
kill -9 of the agent during heavy writes, then the store opens (integrity check), `ebpf-agent query`
works, and the stored events are a contiguous prefix of what was generated that covers everything
generated up to (kill time - flush interval - slack). A restart on the same store continues it,
and the agent's own health metrics are listed by `query` once the metrics pump wrote them.

The generator is a separate process calling getppid() at a fixed rate; the fixture program
(tests/fixtures/bpf/test_events.bpf.c) numbers each of its calls with a kernel-side sequence, so
the stored records say exactly which calls were kept. One worker shard keeps records in order."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from harness import (TEST_EVENTS_OBJECT, Agent, Cleanup, require_root, run_agent, skip, test_events_spec, unique,
                     write_file)

OBJECT = TEST_EVENTS_OBJECT
RATE = 25_000          # getppid() calls per second (the fixture's 256 KiB ring buffer holds ~0.2 s of them)
RUN_BEFORE_KILL = 5.0  # seconds of generation before kill -9
FLUSH = 1.0            # the output's flush interval (flush=1s)
SLACK = 1.0            # ring buffer, shard and queue latency on a loaded 2-core machine

# Calls getppid() RATE times a second once told to go on stdin; writes "monotonic_time count"
# marks (count calls done by then) until it is stopped with SIGTERM.
GENERATOR = r"""
import os, signal, sys, time
rate, marks_path = int(sys.argv[1]), sys.argv[2]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
sys.stdin.readline()
marks, count, start = [], 0, time.monotonic()
while not stop:
    target = int((time.monotonic() - start) * rate)
    while count < target:
        os.getppid()
        count += 1
    marks.append((time.monotonic(), count))
    time.sleep(0.002)
with open(marks_path, "w") as f:
    f.writelines(f"{t} {c}\n" for t, c in marks)
"""


def query(store, *args):
    result = run_agent("query", "--db", store, *args, timeout=120)
    assert result.returncode == 0, f"query {args} failed ({result.returncode}): {result.stderr}"
    return result.stdout


def stored_events(store, spec, cookie):
    lines = query(store, "--events", "--spec", spec, "-o", "json", "--from", "0", "--limit", "0").splitlines()
    records = [json.loads(line) for line in lines]
    return sorted(r["data"]["seq"] for r in records if r["data"]["cookie"] == cookie)


def integrity(database):
    # Read-only, as a second process would; opening after a crash recovers the WAL.
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def calls_before(marks, deadline):
    done = [count for t, count in marks if t <= deadline]
    return done[-1] if done else 0


def main():
    require_root()
    if not os.path.exists(OBJECT):
        skip(f"fixture {OBJECT} not built")
    with Cleanup() as cleanup:
        spec_name = unique("tsdb_")
        workdir = os.path.join("/var/tmp", unique("ea-tsdb-it-"))
        os.makedirs(workdir)
        cleanup.add(lambda: subprocess.run(["rm", "-rf", workdir]))
        store = os.path.join(workdir, "store")
        database = os.path.join(store, "store.db")
        marks_path = os.path.join(workdir, "marks.txt")

        generator = subprocess.Popen([sys.executable, "-c", GENERATOR, str(RATE), marks_path], stdin=subprocess.PIPE, text=True)
        cleanup.add(lambda: generator.poll() is None and generator.kill())
        spec = write_file(workdir, "events.yaml", test_events_spec(spec_name, generator.pid, cookie=1))
        metrics_pump = "--metrics-interval" in run_agent("run", "--help").stdout
        extra = ["--output", f"tsdb:{store},flush=1s", "--workers", "1"]
        if metrics_pump:
            extra += ["--metrics-interval", "1s"]
        os.makedirs(os.path.join(workdir, "run1"))
        agent = Agent(cleanup, [spec], extra, workdir=os.path.join(workdir, "run1"))
        agent.wait_ready()

        # Heavy writes, then kill -9 in the middle of them.
        generator.stdin.write("go\n")
        generator.stdin.flush()
        time.sleep(RUN_BEFORE_KILL)
        # While the agent writes, a second process reads the store.
        listing = query(store)
        assert spec_name in listing, listing
        kill_time = time.monotonic()
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait()
        time.sleep(0.5)
        generator.send_signal(signal.SIGTERM)
        generator.wait(timeout=30)
        with open(marks_path) as f:
            marks = [(float(t), int(c)) for t, c in (line.split() for line in f)]
        generated = marks[-1][1]
        must_have = calls_before(marks, kill_time - FLUSH - SLACK)
        print(f"generated {generated} events at {RATE}/s; killed after {calls_before(marks, kill_time)}; "
              f"the store must hold at least the first {must_have}")

        # The store after the crash: intact, readable, and a contiguous prefix.
        assert integrity(database) == "ok", integrity(database)
        seqs = stored_events(store, spec_name, 1)
        assert seqs == list(range(len(seqs))), (
            f"stored events are not a contiguous prefix: {len(seqs)} records, first gap at "
            f"{next(i for i, s in enumerate(seqs) if s != i)}")
        if len(seqs) < must_have:
            lost = query(store, f'ebpf_agent_channel_kernel_lost_records{{spec="{spec_name}"}}', "--from", "0")
            raise AssertionError(f"only {len(seqs)} events stored, {must_have} were generated before kill - flush - slack; "
                                 f"records the kernel could not queue (if counted):\n{lost}")
        assert len(seqs) <= calls_before(marks, kill_time + 0.1), "more events stored than generated before the kill"
        print(f"after kill -9: {len(seqs)} events, a contiguous prefix; integrity ok")

        # Restart on the same store: it opens and goes on; a graceful stop commits everything.
        spec2 = write_file(workdir, "events2.yaml", test_events_spec(spec_name, os.getpid(), cookie=2))
        os.makedirs(os.path.join(workdir, "run2"))
        agent2 = Agent(cleanup, [spec2], extra, workdir=os.path.join(workdir, "run2"))
        agent2.wait_ready()
        for _ in range(500):
            os.getppid()
        time.sleep(2.5)  # a few metric snapshots
        status = agent2.stop()
        with open(agent2.log_path) as f:
            log2 = f.read()
        assert status == 0, log2
        problems = [line for line in log2.splitlines()
                    if "tsdb output" in line and (" warning " in line or " error " in line)]
        assert not problems, problems
        assert integrity(database) == "ok"
        assert stored_events(store, spec_name, 1) == seqs, "events of the first run changed after the restart"
        assert stored_events(store, spec_name, 2) == list(range(500)), "events of the second run missing"

        # The agent's health metrics, written by the metrics pump.
        if not metrics_pump:
            print("NOTE: metrics part not checked: this agent has no --metrics-interval (metrics pump missing)")
        else:
            listing = json.loads(query(store, "-o", "json"))
            names = [m["name"] for m in listing["metrics"]]
            assert names, f"no metrics stored; agent log:\n{log2}"
            assert any(m["samples"] >= 2 for m in listing["metrics"]), listing["metrics"]
            samples = json.loads(query(store, names[0], "--from", "-10m", "-o", "json"))
            assert samples and samples[0]["samples"], samples
            print(f"metrics: {len(names)} stored, e.g. {names[0]} with {len(samples[0]['samples'])} samples")
        print("tsdb: ok")


if __name__ == "__main__":
    main()
