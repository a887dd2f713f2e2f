"""The Kafka output end to end: the real agent writing `--output kafka:...` to librdkafka's mock
cluster (tests/tools/kafka_mock_cluster, its own process on loopback, speaking the Kafka
protocol), or to a real cluster when EA_KAFKA_BROKERS=host:port[,host:port] is set.

Records come from tests/fixtures/bpf/test_events.bpf.o: one per getppid() of this process, with
data.seq numbered 0, 1, 2, ... by the BPF program, so the test knows exactly what must arrive.

1. Normal delivery (`ebpf-agent run`): all N records on <prefix>.events, in order, each once,
   keyed "host/pid", with the same envelope the file output got; metric samples on
   <prefix>.metrics keyed "host".
2. Brokers down, N records, brokers up (`ebpf-agent run`): all N arrive in order, exactly once.
3. Brokers down, N records, the agent killed (SIGKILL), a new agent on the same spool, brokers
   up: the new agent sends all N, in order, exactly once.
4. A small spool bound with the brokers down (`ebpf-agent daemon`): what exceeds it is counted
   exactly (received + dropped == N), and shown by `ebpf-agent list`, the agent's log and its
   stop summary.

Against a real cluster, cases 2 to 4 are skipped (loudly): the test cannot take real brokers
down. Case 1 creates its topics there, or relies on the brokers creating them on first use."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from harness import (AGENT, BUILD_DIR, TEST_EVENTS_OBJECT, Agent, Cleanup, _AgentProcess, require_root, run_agent, skip,
                     test_events_spec, unique, wait_for, write_file)

OBJECT = TEST_EVENTS_OBJECT
TOOL = os.path.join(BUILD_DIR, "tests", "kafka_mock_cluster")
HOST = socket.gethostname()


class KafkaCluster:
    """kafka_mock_cluster: a mock cluster (or a real one) driven over its stdin."""

    def __init__(self, cleanup, real_brokers=None):
        args = [TOOL] + (["--real", real_brokers] if real_brokers else ["--brokers", "3"])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        cleanup.add(self.close)
        hello = json.loads(self.proc.stdout.readline())
        self.bootstrap = hello["bootstrap"]
        self.mock = hello["mock"]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            text = self.proc.stdout.readline()
            if not text:
                raise AssertionError(f"kafka_mock_cluster exited during '{line}'")
            reply = json.loads(text)
            if "ok" in reply:
                if not reply["ok"]:
                    raise AssertionError(f"kafka_mock_cluster '{line}': {reply['error']}")
                return lines
            lines.append(reply)

    def down(self):
        self.command("down")

    def up(self):
        self.command("up")

    def create(self, topic, partitions):
        try:
            self.command(f"create {topic} {partitions}")
        except AssertionError as error:
            if self.mock:
                raise
            print(f"note: could not create {topic} ({error}); relying on the brokers creating topics on first use "
                  "(auto.create.topics.enable)", flush=True)

    def consume(self, topic):
        return self.command(f"consume {topic} 20000")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def trigger(count):
    for _ in range(count):
        os.getppid()


def ours(records, spec):
    return [r for r in records if r.get("spec") == spec]


def event_messages(cluster, prefix, spec):
    """(message, parsed envelope) for the spec's records on <prefix>.events, in partition order."""
    out = []
    for message in cluster.consume(f"{prefix}.events"):
        envelope = json.loads(message["value"])
        if envelope.get("spec") == spec:
            out.append((message, envelope))
    return out


def sequences(messages):
    return [envelope["data"]["seq"] for _, envelope in messages]


def wait_for_events(cluster, prefix, spec, count, timeout=60):
    def arrived():
        messages = event_messages(cluster, prefix, spec)
        return messages if len(messages) >= count else None
    return wait_for(arrived, timeout, interval=0.5, what=f"{count} records on {prefix}.events")


def assert_exactly_in_order(messages, count):
    seqs = sequences(messages)
    assert seqs == list(range(count)), (
        f"expected seq 0..{count - 1} once each, in order; got {len(seqs)} records, "
        f"first differences: {[(i, s) for i, s in enumerate(seqs) if s != i][:5]}")


def spool_bytes(directory):
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory) if f.endswith(".seg"))


def final_log(process):
    """The log of a stopped agent (the harness closes its handle on stop)."""
    with open(process.log_path) as f:
        return f.read()


def kafka_output(cluster, prefix, spool, extra=""):
    return f"kafka:{cluster.bootstrap},topic_prefix={prefix},spool={spool}{extra}"


def case_normal_delivery(cluster, cleanup):
    count = 500
    prefix, spec = unique("eak"), unique("kafka_")
    cluster.create(f"{prefix}.events", 3)
    cluster.create(f"{prefix}.metrics", 1)
    workdir = tempfile.mkdtemp(prefix="ea-kafka-")
    spec_path = write_file(workdir, "spec.yaml", test_events_spec(spec, os.getpid()))
    agent = Agent(cleanup, [spec_path], workdir=workdir, extra_args=[
        "--output", kafka_output(cluster, prefix, os.path.join(workdir, "spool")), "--metrics-interval", "1s"])
    agent.wait_ready()
    trigger(count)
    wait_for(lambda: len(ours(agent.records(), spec)) >= count, 20, what="records in the file output")
    messages = wait_for_events(cluster, prefix, spec, count)
    assert_exactly_in_order(messages, count)
    assert {m["key"] for m, _ in messages} == {f"{HOST}/{os.getpid()}"}, {m["key"] for m, _ in messages}
    assert len({m["partition"] for m, _ in messages}) == 1, "one key, one partition"
    file_records = ours(agent.records(), spec)
    assert [e for _, e in messages] == file_records, "Kafka values differ from the file output's envelopes"

    wait_for(lambda: cluster.consume(f"{prefix}.metrics"), 30, interval=0.5, what="metric samples")
    assert agent.stop() == 0, final_log(agent)
    samples = [json.loads(m["value"]) for m in cluster.consume(f"{prefix}.metrics")]
    keys = {m["key"] for m in cluster.consume(f"{prefix}.metrics")}
    assert keys == {HOST}, keys
    for sample in samples:
        assert {"time", "host", "name", "kind", "unit", "labels"} <= sample.keys(), sample
        assert ("value" in sample) != ("buckets" in sample), sample
    names = {s["name"] for s in samples}
    print(f"normal delivery: {count} records in order, {len(samples)} metric samples ({len(names)} names)")
    log = final_log(agent)
    summary = re.search(r"stopped: delivered (\d+) events", log)
    assert summary and int(summary.group(1)) >= count, log[-3000:]


def case_brokers_down_then_up(cluster, cleanup):
    before, during = 10, 1000
    prefix, spec = unique("eak"), unique("kafka_")
    cluster.create(f"{prefix}.events", 3)
    workdir = tempfile.mkdtemp(prefix="ea-kafka-")
    spool = os.path.join(workdir, "spool")
    spec_path = write_file(workdir, "spec.yaml", test_events_spec(spec, os.getpid()))
    agent = Agent(cleanup, [spec_path], workdir=workdir, extra_args=[
        "--output", kafka_output(cluster, prefix, spool, ",queue_max_records=50"), "--metrics-interval", "0"])
    agent.wait_ready()
    trigger(before)
    wait_for_events(cluster, prefix, spec, before)

    cluster.down()
    cleanup.add(cluster.up)  # never leave the cluster cut for a later case
    trigger(during)
    wait_for(lambda: len(ours(agent.records(), spec)) >= before + during, 20, what="records in the file output")
    wait_for(lambda: spool_bytes(spool) > 0, 10, what="records waiting in the spool")
    time.sleep(1)
    waiting = spool_bytes(spool)
    cluster.up()

    messages = wait_for_events(cluster, prefix, spec, before + during)
    time.sleep(1)  # anything duplicated would show up by now
    messages = event_messages(cluster, prefix, spec)
    assert_exactly_in_order(messages, before + during)
    log = agent.log_text()
    assert "all brokers are down" in log, log[-3000:]
    assert "Kafka takes records again" in log, log[-3000:]
    wait_for(lambda: spool_bytes(spool) == 0, 10, what="the spool to empty once delivered")
    assert agent.stop() == 0, final_log(agent)
    print(f"brokers down then up: {during} records waited in the spool ({waiting} bytes), "
          f"all {before + during} arrived in order, exactly once")


def case_killed_agent_replays_at_start(cluster, cleanup):
    count = 300
    prefix, spec = unique("eak"), unique("kafka_")
    cluster.create(f"{prefix}.events", 3)
    workdir = tempfile.mkdtemp(prefix="ea-kafka-")
    cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    spool = os.path.join(workdir, "spool")
    spec_path = write_file(workdir, "spec.yaml", test_events_spec(spec, os.getpid()))
    output = ["--output", kafka_output(cluster, prefix, spool), "--metrics-interval", "0"]
    first = Agent(cleanup, [spec_path], extra_args=output)
    first.wait_ready()
    cluster.down()
    cleanup.add(cluster.up)
    trigger(count)
    wait_for(lambda: len(ours(first.records(), spec)) >= count, 20, what="records in the file output")
    wait_for(lambda: spool_bytes(spool) > 0, 10, what="records waiting in the spool")
    first.proc.kill()  # no stop, no flush: what the spool holds on disk is all there is
    first.proc.wait()

    second = Agent(cleanup, [spec_path], extra_args=output)
    second.wait_ready()
    assert f"replaying {count} records" in second.log_text(), second.log_text()[-3000:]
    cluster.up()
    wait_for_events(cluster, prefix, spec, count)
    time.sleep(1)
    assert_exactly_in_order(event_messages(cluster, prefix, spec), count)
    assert second.stop() == 0, final_log(second)
    print(f"agent killed with {count} records spooled: the next start sent all of them, in order, once")


class KafkaDaemon(_AgentProcess):
    """`ebpf-agent daemon` with its own socket, no specs directory, a file and a Kafka output."""

    def __init__(self, cleanup, outputs):
        self.workdir = tempfile.mkdtemp(prefix="ea-kafka-daemon-")
        cleanup.add(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        self.socket = os.path.join(self.workdir, "agent.sock")
        self.output = os.path.join(self.workdir, "records.jsonl")
        self.log_path = os.path.join(self.workdir, "daemon.log")
        args = [AGENT, "daemon", "--socket", self.socket, "--specs-dir", "", "--metrics-interval", "0",
                "--output", f"file:{self.output}"]
        for output in outputs:
            args += ["--output", output]
        self._spawn(args)
        cleanup.add(self.stop)
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 15, what="control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")

    def ctl(self, *args):
        return run_agent(*args, "--socket", self.socket)

    def kafka_output(self):
        result = self.ctl("list", "-o", "json")
        assert result.returncode == 0, result.stderr
        return next(o for o in json.loads(result.stdout)["outputs"] if o["name"].startswith("kafka:"))


def case_spool_bound(cluster, cleanup):
    count = 400
    prefix, spec = unique("eak"), unique("kafka_")
    cluster.create(f"{prefix}.events", 3)
    spool = tempfile.mkdtemp(prefix="ea-kafka-spool-")
    cleanup.add(lambda: shutil.rmtree(spool, ignore_errors=True))
    daemon = KafkaDaemon(cleanup, [kafka_output(cluster, prefix, spool, ",spool_max_bytes=8K,queue_max_records=5")])
    result = daemon.ctl("apply", "-f", write_file(daemon.workdir, "spec.yaml", test_events_spec(spec, os.getpid())))
    assert result.returncode == 0, result.stderr

    cluster.down()
    cleanup.add(cluster.up)
    trigger(count)
    wait_for(lambda: len(ours(daemon.records(), spec)) >= count, 20, what="records in the file output")
    dropped = wait_for(lambda: daemon.kafka_output()["failures"], 10, what="dropped records in `list`")
    assert 0 < dropped < count, dropped
    assert spool_bytes(spool) <= 8 << 10, spool_bytes(spool)
    wait_for(lambda: "is full" in daemon.log_text(), 10, what="the spool-full warning in the log")
    table = daemon.ctl("list").stdout
    assert re.search(rf"OUTPUT kafka:\S+ .*failures={dropped}\b", table), table

    cluster.up()
    messages = wait_for_events(cluster, prefix, spec, count - dropped)
    time.sleep(1)
    messages = event_messages(cluster, prefix, spec)
    received = sequences(messages)
    assert len(received) + dropped == count, f"received {len(received)} + dropped {dropped} != {count}"
    assert received == list(range(count - dropped)), "the oldest records are kept, in order, once each"
    assert daemon.kafka_output()["failures"] == dropped, "nothing else was lost after the brokers came back"

    assert daemon.stop() == 0, final_log(daemon)
    log = final_log(daemon)
    summary = re.search(r"dropped over the spool bound: (\d+) events", log)
    assert summary and int(summary.group(1)) == dropped, log[-3000:]
    print(f"spool bound 8K: {len(received)} received + {dropped} counted as dropped == {count}")


def main():
    require_root()
    for path in (OBJECT, TOOL, AGENT):
        if not os.path.exists(path):
            skip(f"{path} not built")
    real = os.environ.get("EA_KAFKA_BROKERS")
    with Cleanup() as cleanup:
        cluster = KafkaCluster(cleanup, real)
        where = f"the real cluster {real}" if real else f"librdkafka's mock cluster at {cluster.bootstrap}"
        print(f"Kafka: {where}")
        case_normal_delivery(cluster, cleanup)
        if cluster.mock:
            case_brokers_down_then_up(cluster, cleanup)
            case_killed_agent_replays_at_start(cluster, cleanup)
            case_spool_bound(cluster, cleanup)
        else:
            print("SKIPPED (3 of 4 cases): 'brokers down then up', 'killed agent replays at start' and 'spool bound' "
                  "need the brokers cut, which this test can only do to the mock cluster (unset EA_KAFKA_BROKERS to "
                  "run them)", flush=True)
    print("ok")


if __name__ == "__main__":
    main()
