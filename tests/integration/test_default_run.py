#!/usr/bin/env python3
"""What a new user gets from the README's run command: `ebpf-agent run` with no configuration
applies the embedded default specs, stores to the embedded store in its default directory and
serves /metrics on the default address. After the run, `ebpf-agent query` lists the agent's own
health metrics, prints their samples, and holds the default specs' events.

The real defaults are exercised without touching the host: the agent runs in private mount and
network namespaces where /var/lib is an empty tmpfs (so the default store directory is new and
discarded afterwards) and 127.0.0.1:9464 is the namespace's own loopback."""
import json
import os
import shutil
import subprocess
import sys

from harness import AGENT, require_root, skip

RUN_SECONDS = 25  # long enough for two metrics snapshots at the default 10 s interval

# Runs inside `unshare --mount --net`: private /var/lib, loopback up, agent with no options,
# a scrape of the default endpoint while it runs, then the queries. Sections are marked for parsing.
INSIDE = r"""
set -eu
mount --make-rprivate /
mount -t tmpfs ebpf-agent-test /var/lib
ip link set lo up
"$AGENT" run --duration {run}s > /tmp/.unused 2> "$LOG" &
agent=$!
# The trigger for the default tcp_connlat spec: a connection on loopback (refused is fine).
sleep 8
curl -sS -m 2 http://127.0.0.1:9 >/dev/null 2>&1 || true
echo "=== metrics"
curl -sS -m 5 http://127.0.0.1:9464/metrics
wait $agent
echo "=== exit $?"
echo "=== store"
ls /var/lib/ebpf-agent/tsdb
echo "=== list"
"$AGENT" query
echo "=== specs"
"$AGENT" query 'ebpf_agent_specs' --from -5m -o json
echo "=== events"
"$AGENT" query --events --from -5m --limit 1000 -o json
"""


def sections(text):
    parts, name = {}, None
    for line in text.splitlines():
        if line.startswith("=== "):
            name = line[4:]
            parts[name] = []
        elif name is not None:
            parts[name].append(line)
    return {key: "\n".join(lines) for key, lines in parts.items()}


def main():
    require_root()
    for tool in ("unshare", "curl", "ip", "mount"):
        if shutil.which(tool) is None:
            skip(f"'{tool}' is not installed: cannot isolate the default run")
    log_dir = subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip()
    log = os.path.join(log_dir, "agent.log")
    try:
        result = subprocess.run(["unshare", "--mount", "--net", "sh", "-c", INSIDE.replace("{run}", str(RUN_SECONDS))],
                                env={**os.environ, "AGENT": AGENT, "LOG": log}, capture_output=True, text=True,
                                timeout=RUN_SECONDS + 60)
        agent_log = open(log).read() if os.path.exists(log) else "(no log)"
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    context = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n--- agent log\n{agent_log}"
    assert result.returncode == 0, f"the default run failed ({result.returncode}):\n{context}"
    out = sections(result.stdout)

    assert out.get("exit", "").strip() == "" and "=== exit 0" in result.stdout, f"agent exit status:\n{context}"
    assert "ebpf-agent query" in agent_log and "/var/lib/ebpf-agent/tsdb" in agent_log, \
        f"the agent does not say where it stores and how to read it:\n{context}"
    assert "127.0.0.1:9464" in agent_log, f"the agent does not say where /metrics is served:\n{context}"

    metrics = out.get("metrics", "")
    assert "# TYPE ebpf_agent_specs gauge" in metrics, f"/metrics lacks the agent's health:\n{context}"
    assert "process_cpu_time_seconds_total" in metrics, f"/metrics lacks process metrics:\n{context}"
    connect = [line for line in metrics.splitlines() if line.startswith("tcp_connect_duration_seconds_count{")
               and 'process_executable_name="curl"' in line and 'server_port="9"' in line and 'result="failed"' in line]
    assert connect, f"/metrics lacks the tcp_connlat histogram for curl's refused connect:\n{context}"

    assert "store.db" in out.get("store", ""), f"no store in the default directory:\n{context}"
    listed = out.get("list", "")
    for name in ("ebpf_agent_specs", "ebpf_agent_channel_records", "process_memory_usage_bytes"):
        assert name in listed, f"`ebpf-agent query` does not list {name}:\n{context}"

    series = json.loads(out.get("specs", "null"))
    running = [s for s in series if s["labels"].get("state") == "running"]
    assert running, f"no ebpf_agent_specs{{state=\"running\"}} series:\n{context}"
    values = [point[1] for point in running[0]["samples"]]
    assert len(values) >= 2 and values[-1] == 2, f"expected >= 2 snapshots of 2 running specs, got {values}:\n{context}"

    events = [json.loads(line) for line in out.get("events", "").splitlines() if line.startswith("{")]
    connlat = [e for e in events if e.get("spec") == "tcp_connlat" and e.get("comm") == "curl"]
    assert connlat, f"the default tcp_connlat spec stored no event for curl's connect:\n{context}"
    print(f"default run: {len(listed.splitlines())} metric names listed, {len(values)} snapshots, "
          f"{len(events)} events stored, /metrics served", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print(f"FAILED: {error}", flush=True)
        sys.exit(1)
