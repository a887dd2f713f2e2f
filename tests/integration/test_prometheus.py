"""A real Prometheus server scrapes the real agent's /metrics endpoint every second, and the series
it stored come back through its HTTP query API consistent with what the agent itself serves:
the same metric names, the same label sets, counter values between two direct scrapes of ours,
gauges equal, histograms whole, no sample Prometheus had to drop. The agent runs
specs/examples/tcp_connlat.yaml (the test makes loopback TCP connects, so the per-channel record
counters move) and specs/examples/syscall_counts.yaml (per-process counters and a latency
histogram read from BPF maps). A second agent asked for the same address must refuse to start
and name the flag."""
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from harness import (SOURCE_DIR, Agent, Cleanup, require_root, run_agent, skip, wait_for, write_file)

EXAMPLE = os.path.join(SOURCE_DIR, "specs", "examples", "tcp_connlat.yaml")
# Counters and a latency histogram read from BPF maps, labelled by process name (arbitrary bytes).
SYSCALLS = os.path.join(SOURCE_DIR, "specs", "examples", "syscall_counts.yaml")
HISTOGRAM = "syscall_duration_seconds"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JOB = "ebpf-agent"
# Series Prometheus adds to every target itself.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added"}
# No proxy from the environment: everything here is on loopback.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None, timeout=5):
    """(status, headers, body bytes); HTTP errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with HTTP.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(text):
    """{(name, frozenset(labels)): value} from the text format; checks each line's shape."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or re.match(r"# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line), line
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)", line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        label_set = frozenset((k, unescape(v)) for k, v in LABEL.findall(labels or ""))
        key = (name, label_set)
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    return samples


def scrape_agent(listen):
    status, headers, body = http_get(f"http://{listen}/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200, f"/metrics answered {status}: {body[:200]!r}"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", headers["Content-Type"]
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return parse_exposition(body.decode("utf-8"))


def make_connects(count):
    """Loopback TCP connects: each one is a tcp_connlat record."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(count)
        for _ in range(count):
            with socket.create_connection(server.getsockname(), timeout=5):
                pass
            server.accept()[0].close()


class Prometheus:
    def __init__(self, cleanup, target):
        self.dir = tempfile.mkdtemp(prefix="ea-prometheus-")
        cleanup.add(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.address = f"127.0.0.1:{free_port()}"
        config = write_file(self.dir, "prometheus.yml", f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ["{target}"]
""")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address={self.address}", "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=subprocess.STDOUT)
        cleanup.add(self.stop)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                return http_get(f"http://{self.address}/-/ready", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(ready, 60, interval=0.2, what="prometheus to be ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def query(self, expression):
        """Instant query: [(labels dict, float value)]."""
        url = f"http://{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        status, _, body = http_get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"query {expression!r}: {status} {body[:300]!r}"
        assert answer["data"]["resultType"] == "vector", answer
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]

    def self_metric(self, name):
        """A counter from Prometheus's own /metrics (its scrape accounting)."""
        status, _, body = http_get(f"http://{self.address}/metrics")
        assert status == 200
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def without_target_labels(labels):
    return frozenset((k, v) for k, v in labels.items() if k not in ("__name__", "job", "instance"))


def series_of(samples, name):
    return {labels: value for (sample_name, labels), value in samples.items() if sample_name == name}


def check_second_agent_refused(listen, workdir):
    result = run_agent("run", "-f", EXAMPLE, "--metrics-listen", listen, "--duration", "20s",
                       "--output", f"file:{os.path.join(workdir, 'second.jsonl')}", timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"a second agent started on {listen}:\n{output}"
    assert listen in output and "--metrics-listen" in output, f"bind error does not say what to change:\n{output}"
    print(f"second agent on {listen} refused: {output.strip().splitlines()[-1]}", flush=True)


def main():
    require_root()
    if not os.access(PROMETHEUS, os.X_OK):
        skip("prometheus is not installed (Debian package 'prometheus'): nothing to scrape the agent with")
    help_text = run_agent("run", "--help")
    if "--metrics-listen" not in help_text.stdout + help_text.stderr:
        skip("this ebpf-agent has no 'run --metrics-listen' flag: the /metrics endpoint is not wired in")

    with Cleanup() as cleanup:
        listen = f"127.0.0.1:{free_port()}"
        agent = Agent(cleanup, [EXAMPLE, SYSCALLS], ["--metrics-listen", listen])
        agent.wait_ready()
        try:
            make_connects(5)
            first = wait_for(lambda: (lambda s: s if sum(series_of(s, "ebpf_agent_channel_records_total").values()) > 0
                                      else None)(scrape_agent(listen)),
                             20, interval=0.5, what="the agent to count tcp_connlat records")
            channel_series = series_of(first, "ebpf_agent_channel_records_total")
            print(f"agent serves {len(first)} samples; channel records {dict(channel_series)}", flush=True)
            check_second_agent_refused(listen, agent.workdir)

            prometheus = Prometheus(cleanup, listen)
            up = wait_for(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'), 30, interval=0.5,
                          what="prometheus to scrape the agent (up == 1)")
            assert up[0][0]["instance"] == listen, up

            # Counters Prometheus holds lie between our first scrape and one made afterwards.
            make_connects(5)
            query = f'ebpf_agent_channel_records_total{{job="{JOB}"}}'
            want = {labels: value for labels, value in channel_series.items()}

            def caught_up():
                stored = {without_target_labels(m): v for m, v in prometheus.query(query)}
                return stored if set(stored) == set(want) and all(stored[k] >= want[k] for k in want) else None
            stored = wait_for(caught_up, 30, interval=0.5, what=f"prometheus to hold {query} as the agent serves it")
            time.sleep(2.5)  # two more scrapes, so that the name sets below compare like with like
            stored = {without_target_labels(m): v for m, v in prometheus.query(query)}
            latest = scrape_agent(listen)
            for labels, value in stored.items():
                assert want[labels] <= value <= series_of(latest, "ebpf_agent_channel_records_total")[labels], \
                    (labels, want[labels], value)
            print(f"prometheus stored {query}: {stored}", flush=True)

            # Every metric name the agent serves is in Prometheus, and nothing else is.
            names = {m["__name__"] for m, _ in prometheus.query(f'count by (__name__) ({{job="{JOB}"}})')}
            served = {name for name, _ in latest}
            assert SYNTHETIC <= names, names
            assert names - SYNTHETIC == served, (
                f"only in prometheus: {sorted(names - SYNTHETIC - served)}; only served: {sorted(served - names)}")

            # A gauge that does not move is stored exactly, labels and value.
            specs = {without_target_labels(m): v for m, v in prometheus.query(f'ebpf_agent_specs{{job="{JOB}"}}')}
            assert specs == series_of(latest, "ebpf_agent_specs"), (specs, series_of(latest, "ebpf_agent_specs"))

            # The histogram comes back whole: every bucket the agent serves, a count between our
            # two scrapes, and a quantile Prometheus can compute from the buckets.
            served_les = {dict(labels)["le"] for labels in series_of(latest, HISTOGRAM + "_bucket")}
            stored_les = {m["le"] for m, _ in prometheus.query(f'{HISTOGRAM}_bucket{{job="{JOB}"}}')}
            assert "+Inf" in served_les and len(served_les) > 2 and stored_les == served_les, (stored_les, served_les)
            count = prometheus.query(f'{HISTOGRAM}_count{{job="{JOB}"}}')[0][1]
            assert 0 < count <= series_of(latest, HISTOGRAM + "_count")[frozenset()], count
            median = prometheus.query(f'histogram_quantile(0.5, {HISTOGRAM}_bucket{{job="{JOB}"}})')
            assert median and 0 < median[0][1] < 60, median
            comms = prometheus.query(f'process_syscalls_total{{job="{JOB}"}}')
            assert comms and all("comm" in m for m, _ in comms), comms[:3]
            print(f"{HISTOGRAM}: {int(count)} calls, median {median[0][1]:.6f}s, {len(served_les)} buckets; "
                  f"process_syscalls_total for {len(comms)} process names", flush=True)

            # Whole scrapes accepted: the target is healthy and Prometheus dropped no sample.
            status, _, body = http_get(f"http://{prometheus.address}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")], targets
            for counter in ("prometheus_target_scrapes_sample_duplicate_timestamp_total",
                            "prometheus_target_scrapes_sample_out_of_order_total",
                            "prometheus_target_scrapes_sample_out_of_bounds_total"):
                assert prometheus.self_metric(counter) == 0, counter
            scraped = prometheus.query(f'scrape_samples_scraped{{job="{JOB}"}}')[0][1]
            print(f"OK: prometheus scraped {int(scraped)} samples per scrape from {listen}; "
                  f"{len(names - SYNTHETIC)} metric names match the agent's own /metrics", flush=True)
        except BaseException:
            print(f"--- agent log ---\n{agent.log_text()[-4000:]}", file=sys.stderr)
            if "prometheus" in locals():
                print(f"--- prometheus log ---\n{prometheus.log_text()}", file=sys.stderr)
            raise


if __name__ == "__main__":
    main()
