"""HTTP/1.x and HTTPS request metrics from `ebpf-agent run --builtin http`, against a real nginx
driven by real clients, compared with what the clients and nginx's own access log say:

- wrk over keep-alive connections on routes answering 200, 404 and 500 (and /users/<n>, which
  must come out as the route /users/{id}): the server-side counts per status equal nginx's access
  log, wrk's client-side count equals wrk's own total, both within 0.5 %, and the client-side
  median latency is consistent with wrk's (same bucket range, within a factor of two);
- a static file served with sendfile, a POST with a body, and three requests pipelined in one
  send() from a raw socket: all counted with their statuses on both sides;
- HTTPS (nginx with TLS, curl reusing one connection, and wrk): the same metrics through the
  OpenSSL uprobes, marked url_scheme="https", with no https request leaking into the plain counts;
- the same series in the embedded store (`ebpf-agent query`) as on the Prometheus endpoint.
"""
import collections
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from harness import (Agent, Cleanup, free_port, metric_sum, require_root, run_agent, scrape, skip,
                     wait_for, write_file)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CURL = shutil.which("curl") or "/usr/bin/curl"
SERVER = "http_server_request_duration_seconds"
CLIENT = "http_client_request_duration_seconds"

NGINX_CONF = """
user root;
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format status '$status $request_method $uri';
  access_log {dir}/access.log status;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    root {dir}/www;
    location = /ok {{ return 200 "ok\\n"; }}
    location = /missing {{ return 404; }}
    location = /fail {{ return 500; }}
    location /users/ {{ return 200 "user\\n"; }}
    location = /submit {{ return 201 "created\\n"; }}
    location /static/ {{ }}
  }}
}}
"""

# wrk cycles through these, one request each in turn.
WRK_SCRIPT = """
local paths = {"/ok", "/ok", "/missing", "/fail", "/users/1234", "/users/98765"}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def start_nginx(cleanup, workdir):
    port, tls_port = free_port(), free_port()
    os.makedirs(os.path.join(workdir, "www", "static"))
    with open(os.path.join(workdir, "www", "static", "file.bin"), "wb") as f:
        f.write(os.urandom(64 * 1024))  # large enough that nginx sends its body with sendfile
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", os.path.join(workdir, "key.pem"), "-out", os.path.join(workdir, "cert.pem")],
                   check=True, capture_output=True)
    conf = write_file(workdir, "nginx.conf", NGINX_CONF.format(dir=workdir, port=port, tls_port=tls_port))
    proc = subprocess.Popen([NGINX, "-c", conf, "-p", workdir], stderr=subprocess.PIPE)

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    cleanup.add(stop)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(listening, 10, what="nginx to listen")
    return port, tls_port


def access_log_counts(workdir):
    counts = collections.Counter()
    with open(os.path.join(workdir, "access.log")) as f:
        for line in f:
            status, method, uri = line.split()
            counts[(status, method, uri)] += 1
    return counts


def run_wrk(url, seconds, workdir):
    script = write_file(workdir, "paths.lua", WRK_SCRIPT)
    out = subprocess.run([WRK, "-t1", "-c4", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[median.group(2)]
    return total, float(median.group(1)) * scale, out


def histogram_quantile(samples, name, q, **labels):
    buckets = collections.defaultdict(float)
    for sample_name, sample_labels, value in samples:
        if sample_name == name + "_bucket" and all(sample_labels.get(k) == v for k, v in labels.items()):
            buckets[float(sample_labels["le"])] += value
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return previous_bound
            fraction = (rank - previous_count) / max(buckets[bound] - previous_count, 1e-9)
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, buckets[bound]
    return previous_bound


def within(measured, expected, tolerance):
    return abs(measured - expected) <= tolerance * expected


def pipelined_requests(port):
    """Three GETs in one send(); reads until three responses arrived."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        request = "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n"
        s.sendall((request * 2 + "GET /missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.1 ") == 3, data


def peeking_requests(port, count):
    """Keep-alive GETs whose responses are peeked at (MSG_PEEK) before they are read: counted once."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(count):
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert s.recv(12, socket.MSG_PEEK).startswith(b"HTTP/1.1 200")
            data = s.recv(65536)
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok\n"), data


def server_then_client_on_one_fd(port):
    """Serves one request on an accepted socket, closes it, then calls nginx from a socket that gets
    the same fd number: the connection state goes with the socket, so the second use starts as a
    client instead of inheriting the server role. Returns the fd number both had."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = socket.create_connection(listener.getsockname())
        served, _ = listener.accept()
        peer.sendall(b"GET /reuse-server HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert served.recv(65536).startswith(b"GET /reuse-server")
        served.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert peer.recv(65536).startswith(b"HTTP/1.1 200")
        fd = served.fileno()
        served.close()
        fillers = []  # lower free fd numbers, taken so that the caller gets `fd`
        caller = socket.socket()
        while caller.fileno() != fd and len(fillers) < 1000:
            fillers.append(caller)
            caller = socket.socket()
        for filler in fillers:
            filler.close()
        assert caller.fileno() == fd, (caller.fileno(), fd)
        with caller:
            caller.connect(("127.0.0.1", port))
            caller.sendall(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert caller.recv(65536).startswith(b"HTTP/1.1 200")
        peer.close()
    return fd


def main():
    require_root()
    for tool in (NGINX, WRK, CURL):
        if not os.path.exists(tool):
            skip(f"{tool} is not installed (packaging/debian-packages.txt lists it; run `make deps`)")
    with Cleanup() as cleanup:
        workdir = tempfile.mkdtemp(prefix="ea-http-")
        cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
        port, tls_port = start_nginx(cleanup, workdir)
        metrics_port = free_port()
        store = os.path.join(workdir, "tsdb")
        agent = Agent(cleanup, [], extra_args=["--builtin", "http", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                               "--metrics-interval", "1s", "--output", f"tsdb:{store}"])
        agent.wait_ready(timeout=60)

        # 1. Plain HTTP under wrk, keep-alive.
        wrk_total, wrk_median, wrk_out = run_wrk(f"http://127.0.0.1:{port}", 4, workdir)
        # 2. sendfile, POST with a body, pipelining.
        for _ in range(5):
            subprocess.run([CURL, "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/static/file.bin"], check=True)
        subprocess.run([CURL, "-s", "-o", "/dev/null", "-d", "name=value&other=1", f"http://127.0.0.1:{port}/submit"],
                       check=True)
        pipelined_requests(port)
        peeking_requests(port, 4)
        server_then_client_on_one_fd(port)
        # 3. HTTPS: one curl reusing its connection for 20 requests, then wrk.
        urls = [f"https://127.0.0.1:{tls_port}/users/{n}" for n in range(20)]
        subprocess.run([CURL, "-skf", "-o", "/dev/null", *sum((["-o", "/dev/null", u] for u in urls), [])],
                       check=True)
        tls_total, _, _ = run_wrk(f"https://127.0.0.1:{tls_port}", 2, workdir)

        time.sleep(0.5)  # nginx writes its access log line after the response
        log = access_log_counts(workdir)
        samples = scrape(metrics_port)
        server = lambda **labels: metric_sum(samples, SERVER + "_count", process_executable_name="nginx", **labels)
        client = lambda comm, **labels: metric_sum(samples, CLIENT + "_count", process_executable_name=comm, **labels)
        print(f"wrk: {wrk_total} requests, median {wrk_median * 1e6:.0f} us; https wrk {tls_total}")
        print(f"access log: {sum(log.values())} lines")

        failures = []

        def check(ok, what):
            print(("ok   " if ok else "FAIL ") + what)
            if not ok:
                failures.append(what)

        # Server side, per status and route, against the access log (plain and TLS together:
        # nginx logs both; the scheme label splits them below).
        def logged(status=None, uri=None, method=None):
            return sum(n for (s, m, u), n in log.items()
                       if (status is None or s == status) and (uri is None or u == uri) and (method is None or m == method))
        for status in ("200", "404", "500", "201"):
            check(within(server(http_response_status_code=status), logged(status), 0.005),
                  f"nginx status {status}: agent {server(http_response_status_code=status):.0f} vs access log {logged(status)}")
        users_logged = sum(n for (_, _, uri), n in log.items() if uri.startswith("/users/"))
        check(within(server(http_route="/users/{id}"), users_logged, 0.005),
              f"route /users/{{id}}: agent {server(http_route='/users/{id}'):.0f} vs access log {users_logged}")
        check(within(server(http_route="/ok"), logged(uri="/ok"), 0.005),
              f"route /ok: agent {server(http_route='/ok'):.0f} vs access log {logged(uri='/ok')}")
        check(not any(labels.get("http_route", "").startswith("/users/") and labels["http_route"] != "/users/{id}"
                      for _, labels, _ in samples), "no raw /users/<n> route")
        check(server(http_response_status_class="5xx") == server(http_response_status_code="500"), "status class 5xx")
        check(server(http_route="/static/file.bin", http_response_status_code="200") == 5, "sendfile responses: 5")
        check(server(http_route="/submit", http_request_method="POST") == 1, "POST with a body: 1")

        # Client side: wrk's own count (requests in flight when wrk stops are sent but not counted
        # by wrk, hence the tolerance), curl, and the pipelining python client.
        wrk_plain = client("wrk", url_scheme="http")
        check(within(wrk_plain, wrk_total, 0.005), f"wrk client side: agent {wrk_plain:.0f} vs wrk {wrk_total}")
        wrk_tls = client("wrk", url_scheme="https")
        check(within(wrk_tls, tls_total, 0.005), f"wrk over TLS: agent {wrk_tls:.0f} vs wrk {tls_total}")
        check(client("curl", url_scheme="https", http_route="/users/{id}") == 20, "curl over TLS: 20 on one connection")
        check(client("curl", url_scheme="http", http_route="/static/file.bin") == 5, "curl plain: 5 static files")
        python = [comm for _, labels, _ in samples for comm in [labels.get("process_executable_name", "")]
                  if comm.startswith("python")]
        python_requests = sum(client(comm, http_request_method="GET", http_route="/ok") for comm in set(python))
        python_requests += sum(client(comm, http_request_method="GET", http_route="/missing") for comm in set(python))
        check(python_requests == 3 + 4 + 1,
              f"pipelined, peeking and fd-reusing client requests to nginx: {python_requests:.0f} of 3 + 4 + 1")
        python_server = sum(metric_sum(samples, SERVER + "_count", process_executable_name=comm,
                                       http_route="/reuse-server") for comm in set(python))
        python_caller = sum(client(comm, http_route="/reuse-server") for comm in set(python))
        check(python_server == 1 and python_caller == 1,
              f"a socket served one request and the next socket on its fd called nginx: "
              f"server {python_server:.0f}, caller {python_caller:.0f} (each 1)")

        # TLS: nginx's https requests are marked, and equal the TLS traffic sent.
        check(within(server(url_scheme="https"), tls_total + 20, 0.005),
              f"nginx https requests: agent {server(url_scheme='https'):.0f} vs {tls_total + 20}")

        # Latency: the client-side median against wrk's (two buckets per power of two).
        median = histogram_quantile(samples, CLIENT, 0.5, process_executable_name="wrk", url_scheme="http")
        check(wrk_median / 2 <= median <= wrk_median * 2,
              f"wrk median latency: agent {median * 1e6:.0f} us vs wrk {wrk_median * 1e6:.0f} us")

        # Nothing was lost pairing the traffic.
        drops = metric_sum(samples, "ebpf_agent_l7_drops_total", reason="response_without_request")
        check(drops <= 0.005 * wrk_total, f"responses without a request: {drops:.0f}")

        # The embedded store holds the same series.
        agent_stopped = agent.stop()
        check(agent_stopped == 0, f"agent stopped cleanly ({agent_stopped})")
        query = run_agent("query", f'{SERVER}_count{{process_executable_name="nginx",http_response_status_code="404"}}',
                          "--db", store, "--from", "0", "-o", "json")
        check(query.returncode == 0, f"query: {query.stderr.strip()}")
        series = json.loads(query.stdout) if query.returncode == 0 else []
        last = sum(s["samples"][-1][1] for s in series if s["samples"]) if series else None
        check(last is not None and within(float(last), logged("404"), 0.005),
              f"store: 404 count {last} vs access log {logged('404')}")

        if failures:
            print(wrk_out)
            print(agent.log_text()[-4000:])
            raise AssertionError(f"{len(failures)} checks failed: {failures}")


if __name__ == "__main__":
    main()
