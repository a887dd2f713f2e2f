"""gRPC metrics from `ebpf-agent run --builtin http`: a real grpcio server and client (Debian's
python3-grpcio, generic handlers, no protoc), started after the agent, over h2c and then over TLS.

The client makes unary calls, server-streaming calls, client-streaming calls and calls that end
NOT_FOUND (a trailers-only response) on one channel. For each end, the agent's
rpc_server_duration_seconds_count / rpc_client_duration_seconds_count per rpc_method and
rpc_grpc_status_code must equal the calls made, labelled with the process's thread names and
tls="false"/"true". The service name is unique per run, so other traffic on the host cannot count.

TLS goes through the OpenSSL uprobes: the test checks that both grpcio processes map the system
libssl.so.3 (Debian's grpcio links it; a grpcio with BoringSSL inside would not be seen, and the
TLS half then says so loudly and is skipped).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import (BUILD_DIR, Agent, Cleanup, free_port, metric_sum, require_root, scrape, skip,
                     wait_for)

PYTHON = "/usr/bin/python3"  # Debian's, with python3-grpcio (pyenv's python3 has no grpc)
OBJECT = os.path.join(BUILD_DIR, "bpf", "l7.bpf.o")
SERVER_METRIC = "rpc_server_duration_seconds_count"
CLIENT_METRIC = "rpc_client_duration_seconds_count"
SERVER_COMM = "ea_grpc_srv"
CLIENT_COMM = "ea_grpc_cli"

# Calls the client makes, by (method, grpc status code).
CALLS = {("Say", "0"): 5, ("Stream", "0"): 3, ("Collect", "0"): 2, ("Fail", "5"): 2}

COMMON = r"""
import ctypes, sys
# PR_SET_NAME before grpc starts its threads: they inherit the name, so the agent's
# process_executable_name label (the thread's comm) tells our processes from others.
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
import grpc
"""

SERVER = COMMON + r"""
from concurrent import futures

service, tls_dir = sys.argv[2], sys.argv[3]

def say(request, context):
    return b"hello " + request

def stream(request, context):
    for i in range(3):
        yield b"part %d" % i

def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

def collect(request_iterator, context):
    return b"|".join(request_iterator)

server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Collect": grpc.stream_unary_rpc_method_handler(collect),
}),))
if tls_dir:
    key = open(tls_dir + "/key.pem", "rb").read()
    cert = open(tls_dir + "/cert.pem", "rb").read()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
else:
    port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop(None)
"""

CLIENT = COMMON + r"""
import json, os

service, port, tls_dir, calls = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
if tls_dir:
    credentials = grpc.ssl_channel_credentials(open(tls_dir + "/cert.pem", "rb").read())
    channel = grpc.secure_channel("localhost:" + port, credentials)
else:
    channel = grpc.insecure_channel("127.0.0.1:" + port)
made = {}
with channel:
    for _ in range(calls["Say 0"]):
        assert channel.unary_unary(f"/{service}/Say")(b"world", timeout=10) == b"hello world"
    for _ in range(calls["Stream 0"]):
        assert list(channel.unary_stream(f"/{service}/Stream")(b"x", timeout=10)) == [b"part 0", b"part 1", b"part 2"]
    for _ in range(calls["Collect 0"]):
        assert channel.stream_unary(f"/{service}/Collect")(iter([b"a", b"b", b"c", b"d"]), timeout=10) == b"a|b|c|d"
    for _ in range(calls["Fail 5"]):
        try:
            channel.unary_unary(f"/{service}/Fail")(b"x", timeout=10)
            raise AssertionError("Fail succeeded")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
print(json.dumps({"pid": os.getpid()}), flush=True)
"""


def thread_comms(pid):
    comms = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                comms.add(f.read().strip())
        except OSError:
            pass
    return comms


def maps_system_libssl(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any(line.rstrip().endswith("/libssl.so.3") for line in f)


def make_cert(directory):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-days", "1",
                    "-keyout", os.path.join(directory, "key.pem"), "-out", os.path.join(directory, "cert.pem")],
                   check=True, capture_output=True)


class GrpcServer:
    def __init__(self, cleanup, service, tls_dir):
        self.proc = subprocess.Popen([PYTHON, "-c", SERVER, SERVER_COMM, service, tls_dir or ""],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        cleanup.add(self.stop)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise AssertionError(f"grpc server did not start (exit {self.proc.poll()})")
        self.port = int(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_client(service, port, tls_dir):
    """Runs the client to the end; returns the thread names it had while it ran (from /proc)."""
    calls = {f"{method} {status}": n for (method, status), n in CALLS.items()}
    proc = subprocess.Popen([PYTHON, "-c", CLIENT, CLIENT_COMM, service, str(port), tls_dir or "", json.dumps(calls)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    comms, libssl = set(), False
    while proc.poll() is None:
        try:
            comms |= thread_comms(proc.pid)
            libssl = libssl or maps_system_libssl(proc.pid)
        except OSError:
            pass
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 0, f"grpc client failed ({proc.returncode}):\n{err}"
    return comms, libssl


def per_call(samples, metric, service, **labels):
    return {(method, status): metric_sum(samples, metric, rpc_service=service, rpc_method=method,
                                         rpc_grpc_status_code=status, **labels)
            for method, status in CALLS}


def diagnostics(port, agent):
    lines = []
    try:
        for name, labels, value in scrape(port):
            if name.startswith("ebpf_agent_http2") or ("l7_payload" in labels.values()) or \
                    labels.get("processor") == "builtin:http2" or \
                    (name.startswith("rpc_") and name.endswith("_count")):
                if value:
                    lines.append(f"  {name}{labels} {value:g}")
    except Exception as error:  # the agent may be gone: say so, keep the rest
        lines.append(f"  (scrape failed: {error})")
    return "\n".join(lines) + "\n--- agent log (end) ---\n" + agent.log_text()[-3000:]


def check_round(metrics_port, agent, service, tls, server, client_comms):
    tls_label = "true" if tls else "false"
    expected = {key: float(n) for key, n in CALLS.items()}

    def counts():
        samples = scrape(metrics_port)
        return (per_call(samples, SERVER_METRIC, service, tls=tls_label),
                per_call(samples, CLIENT_METRIC, service, tls=tls_label), samples)

    try:
        wait_for(lambda: counts()[:2] == (expected, expected), 15,
                 what=f"rpc counts for {'TLS' if tls else 'h2c'} calls")
    except AssertionError:
        server_counts, client_counts, _ = counts()
        raise AssertionError(f"{'TLS' if tls else 'h2c'}: expected {expected} on both ends;\n"
                             f"server side: {server_counts}\nclient side: {client_counts}\n"
                             f"{diagnostics(metrics_port, agent)}")
    time.sleep(0.5)  # anything extra (double counts) would show up now
    server_counts, client_counts, samples = counts()
    assert (server_counts, client_counts) == (expected, expected), (server_counts, client_counts)
    # The label is the comm of the thread that read or wrote the last bytes of the call.
    server_comms = thread_comms(server.proc.pid)
    names = {}
    for metric, comms in ((SERVER_METRIC, server_comms), (CLIENT_METRIC, client_comms)):
        seen = {labels["process_executable_name"] for name, labels, _ in samples
                if name == metric and labels.get("rpc_service") == service}
        assert seen and seen <= comms, f"{metric}: process_executable_name {seen}, threads {comms}"
        names[metric] = sorted(seen)
    other_tls = "false" if tls else "true"
    assert metric_sum(samples, SERVER_METRIC, rpc_service=service, tls=other_tls) == 0, "calls under the wrong tls"
    rejected = metric_sum(samples, "ebpf_agent_http2_rejected_records_total")
    assert rejected == 0, f"the http2 processor refused {rejected:g} records:\n{diagnostics(metrics_port, agent)}"
    print(f"{'TLS' if tls else 'h2c'}: {sum(CALLS.values())} calls counted on both ends by method and status "
          f"(process_executable_name: server {names[SERVER_METRIC]}, client {names[CLIENT_METRIC]})")


def main():
    require_root()
    if not os.path.exists(PYTHON) or subprocess.run([PYTHON, "-c", "import grpc"], capture_output=True).returncode:
        skip(f"{PYTHON} has no grpc module (Debian package python3-grpcio)")
    if not os.path.exists(OBJECT):
        skip(f"{OBJECT} not built (bpf/l7.bpf.c)")
    with Cleanup() as cleanup:
        workdir = tempfile.mkdtemp(prefix="ea-grpc-")
        cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
        metrics_port = free_port()
        agent = Agent(cleanup, [], extra_args=["--builtin", "http", "--metrics-listen", f"127.0.0.1:{metrics_port}"])
        agent.wait_ready(timeout=60)

        # Both rounds run whatever the first gives, so one run tells about both paths.
        failures = []

        # h2c: the agent sees each connection from its client preface.
        service = f"ea{os.urandom(4).hex()}.Echo"
        server = GrpcServer(cleanup, service, None)
        client_comms, _ = run_client(service, server.port, None)
        try:
            check_round(metrics_port, agent, service, False, server, client_comms)
        except AssertionError as error:
            failures.append(str(error))
        server.stop()

        # TLS through the OpenSSL uprobes.
        make_cert(workdir)
        service = f"ea{os.urandom(4).hex()}.Echo"
        server = GrpcServer(cleanup, service, workdir)
        if not maps_system_libssl(server.proc.pid):
            print("=" * 70 + "\nSKIPPED (TLS half): this grpcio does not load the system libssl.so.3 (BoringSSL "
                  "built in?), so the OpenSSL uprobes cannot see its plaintext\n" + "=" * 70, flush=True)
        else:
            client_comms, client_libssl = run_client(service, server.port, workdir)
            assert client_libssl, "the grpc client did not map libssl.so.3 although the server did"
            try:
                check_round(metrics_port, agent, service, True, server, client_comms)
            except AssertionError as error:
                failures.append(str(error))
        server.stop()

        stopped = agent.stop()
        if failures:
            raise AssertionError("\n\n".join(failures))
        assert stopped == 0, agent.log_text()


if __name__ == "__main__":
    main()
