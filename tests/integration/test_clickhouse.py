"""The ClickHouse output end to end against a real clickhouse-server (Debian's 18.16) that this
test starts on a free loopback port, with its own config, data and logs in a temp directory.

1. The agent runs tests/fixtures/bpf/test_events.bpf.o (one record per getppid() of this process)
   with `--output clickhouse:URL,database=UNIQUE` beside a file output, and the test calls
   getppid() under a hostile comm (quotes, backslash, newline, invalid UTF-8). Every record the
   file output got is selected back from ClickHouse with exactly the same fields (strings as
   Python's errors="replace" decodes them), and the agent's own health metrics arrive in the
   metrics table with the channel's record count.
2. ClickHouse is down when the agent starts and comes up later on the same port: every record
   made meanwhile arrives, once, in order."""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import (BUILD_DIR, TEST_EVENTS_OBJECT, Agent, Cleanup, require_root, skip, test_events_spec, unique, wait_for,
                     write_file)

SERVER = "/usr/sbin/clickhouse-server"
OBJECT = TEST_EVENTS_OBJECT
HOSTILE_COMM = b'q"\\\n\xff\xfe\xe2\x82 ok'  # 14 bytes: comm keeps 15
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClickHouseServer:
    """clickhouse-server on 127.0.0.1:port (HTTP only), everything under one temp directory."""

    def __init__(self, cleanup, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="ea-clickhouse-")
        cleanup.add(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        cleanup.add(self.stop)
        self.proc = None
        write_file(self.dir, "config.xml", f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{self.dir}/log/server.log</log><errorlog>{self.dir}/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{self.port}</http_port>
  <path>{self.dir}/data/</path>
  <tmp_path>{self.dir}/tmp/</tmp_path>
  <user_files_path>{self.dir}/user_files/</user_files_path>
  <format_schema_path>{self.dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
""")
        write_file(self.dir, "users.xml", """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
""")

    def start(self):
        console = open(os.path.join(self.dir, "console.log"), "w")
        self.proc = subprocess.Popen([SERVER, f"--config-file={self.dir}/config.xml"], stdout=console,
                                     stderr=subprocess.STDOUT)
        console.close()

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"clickhouse-server exited with {self.proc.returncode}: {self.logs()}")
            try:
                return self.query("SELECT 1") == "1\n"
            except OSError:
                return False
        wait_for(answers, 60, 0.1, "clickhouse-server to answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self):
        text = ""
        for name in ("console.log", "log/error.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f.read()[-4000:]
        return text

    def query(self, sql):
        request = urllib.request.Request(self.url + "/", data=sql.encode(), method="POST")
        try:
            with HTTP.open(request, timeout=10) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"ClickHouse refused {sql!r}: {error.read().decode(errors='replace')}")

    def rows(self, sql):
        return [json.loads(line) for line in self.query(sql + " FORMAT JSONEachRow").splitlines()]

    def table_exists(self, database, table):
        return self.query(f"EXISTS TABLE `{database}`.`{table}`").strip() == "1"


def set_comm(name):
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def trigger(count, comm=None):
    """count getppid() calls from this thread, under `comm` if given."""
    with open("/proc/thread-self/comm", "rb") as f:
        original = f.read().rstrip(b"\n")
    if comm:
        set_comm(comm)
    try:
        for _ in range(count):
            os.getppid()
    finally:
        set_comm(original)


def file_records(path, spec):
    """The file output's records for `spec`, decoded as ClickHouse should have stored them."""
    records = []
    if not os.path.exists(path):
        return records
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                record = json.loads(line.decode("utf-8", errors="replace"))
                if record["spec"] == spec:
                    records.append(record)
    return records


EVENT_COLUMNS = ("toString(time_ns) AS time_ns, toUInt32(time) AS time, host, spec, program, channel, processor, "
                 "toString(pid) AS pid, toString(tgid) AS tgid, comm, data")


def events(server, database, spec):
    if not server.table_exists(database, "events"):
        return []
    return server.rows(f"SELECT {EVENT_COLUMNS} FROM `{database}`.events WHERE spec = '{spec}' "
                       "ORDER BY time_ns, visitParamExtractUInt(data, 'seq')")


def assert_same_records(file_rows, clickhouse_rows):
    assert len(clickhouse_rows) == len(file_rows), (len(file_rows), len(clickhouse_rows))
    # Records read in one batch share a time; the fixture's sequence number orders them.
    for expected, row in zip(sorted(file_rows, key=lambda r: (r["time"], r["data"]["seq"])), clickhouse_rows):
        assert int(row["time_ns"]) == expected["time"], (expected, row)
        assert row["time"] == expected["time"] // 1_000_000_000, (expected, row)
        for field in ("host", "spec", "program", "channel", "processor", "comm"):
            assert row[field] == expected.get(field, ""), (field, expected, row)
        assert int(row["pid"]) == expected.get("pid", -1) and int(row["tgid"]) == expected.get("tgid", -1), (expected, row)
        assert json.loads(row["data"]) == expected["data"], (expected, row)


def log_after_stop(agent):
    with open(agent.log_path, errors="replace") as f:
        return f.read()


def health_metric(server, database, name, spec):
    """Latest value of `name` labelled with spec=`spec` and channel=test_events, or None."""
    if not server.table_exists(database, "metrics"):
        return None
    rows = server.rows(
        f"SELECT value, kind, host, labels.key AS keys FROM `{database}`.metrics WHERE name = '{name}' "
        f"AND labels.value[indexOf(labels.key, 'spec')] = '{spec}' "
        f"AND labels.value[indexOf(labels.key, 'channel')] = 'test_events' ORDER BY time_ns DESC LIMIT 1")
    return rows[0] if rows else None


def records_and_metrics(cleanup, agent_help):
    server = ClickHouseServer(cleanup)
    server.start()
    database = unique("ea_")
    spec = unique("ch_")
    workdir = tempfile.mkdtemp(prefix="ea-test-")
    cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    extra = ["--output", f"clickhouse:{server.url},database={database},flush=200ms"]
    with_metrics = "--metrics-interval" in agent_help
    if with_metrics:
        extra += ["--metrics-interval", "1s"]
    agent = Agent(cleanup, [write_file(workdir, "spec.yaml", test_events_spec(spec, os.getpid(), cookie=77))], extra, workdir=workdir)
    agent.wait_ready()

    plain, hostile = 20, 5
    trigger(plain)
    trigger(hostile, HOSTILE_COMM)
    total = plain + hostile
    wait_for(lambda: len(file_records(agent.output, spec)) >= total, 15, what=f"{total} records in the file output")
    wait_for(lambda: len(events(server, database, spec)) >= total, 20, 0.2, what=f"{total} records in ClickHouse")
    rows = events(server, database, spec)
    assert_same_records(file_records(agent.output, spec), rows)
    # Independent of the file output: what this test did.
    assert [json.loads(r["data"])["seq"] for r in rows] == list(range(total)), rows
    assert {json.loads(r["data"])["cookie"] for r in rows} == {77}
    assert all(int(r["pid"]) == os.getpid() == int(r["tgid"]) for r in rows)
    assert all(r["channel"] == "test_events" and r["program"] == "events" for r in rows)
    hostile_as_stored = HOSTILE_COMM.decode("utf-8", errors="replace")
    assert [r["comm"] for r in rows[plain:]] == [hostile_as_stored] * hostile, rows[plain:]
    with open("/proc/thread-self/comm") as f:
        assert {r["comm"] for r in rows[:plain]} == {f.read().rstrip("\n")}

    if with_metrics:
        wait_for(lambda: (health_metric(server, database, "ebpf_agent_channel_records", spec) or {}).get("value") == total,
                 20, 0.2, what=f"ebpf_agent_channel_records{{spec={spec}}} = {total} in ClickHouse")
        metric = health_metric(server, database, "ebpf_agent_channel_records", spec)
        assert metric["kind"] == "counter" and metric["host"] == rows[0]["host"], metric
        assert "spec" in metric["keys"] and "channel" in metric["keys"], metric

    assert agent.stop() == 0, agent.log_text()
    assert len(events(server, database, spec)) == total, "records duplicated or lost at shutdown"
    log = log_after_stop(agent)
    assert "clickhouse output" not in log, log  # no failure, no drop logged
    print(f"clickhouse: {total} records selected back exactly (hostile comm included)"
          + (", health metrics in the metrics table" if with_metrics else
             "; SKIPPED metrics: this agent has no --metrics-interval"), flush=True)
    return with_metrics


def server_down_then_up(cleanup):
    port = free_port()
    database = unique("ea_")
    spec = unique("late_")
    workdir = tempfile.mkdtemp(prefix="ea-test-")
    cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    url = f"http://127.0.0.1:{port}"
    agent = Agent(cleanup, [write_file(workdir, "spec.yaml", test_events_spec(spec, os.getpid(), cookie=5))],
                  ["--output", f"clickhouse:{url},database={database},flush=200ms"], workdir=workdir)
    agent.wait_ready()
    count = 40
    trigger(count)
    wait_for(lambda: len(file_records(agent.output, spec)) >= count, 15, what=f"{count} records in the file output")
    wait_for(lambda: "Couldn't connect" in agent.log_text(), 10, what="the agent to log the unreachable server")
    time.sleep(1)  # a few more failed attempts

    server = ClickHouseServer(cleanup, port)
    server.start()
    wait_for(lambda: len(events(server, database, spec)) >= count, 30, 0.2, what=f"{count} queued records to arrive")
    assert_same_records(file_records(agent.output, spec), events(server, database, spec))
    assert agent.stop() == 0, agent.log_text()
    assert len(events(server, database, spec)) == count
    log = log_after_stop(agent)
    assert "writing again (0 records, 0 metric samples lost so far)" in log and "dropped" not in log, log
    print(f"clickhouse: down at start, up later: all {count} queued records arrived once, in order", flush=True)


def main():
    require_root()
    if not os.access(SERVER, os.X_OK):
        skip(f"{SERVER} is missing (apt-get install clickhouse-server)")
    if not os.path.exists(OBJECT):
        skip(f"fixture {OBJECT} not built")
    agent_help = subprocess.run([os.path.join(BUILD_DIR, "ebpf-agent"), "run", "--help"], capture_output=True,
                                text=True).stdout
    with Cleanup() as cleanup:
        records_and_metrics(cleanup, agent_help)
    with Cleanup() as cleanup:
        server_down_then_up(cleanup)


if __name__ == "__main__":
    main()
