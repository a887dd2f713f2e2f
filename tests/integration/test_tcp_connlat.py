"""specs/examples/tcp_connlat.yaml end to end: real connects between two network namespaces the
test makes (a veth pair, link-local IPv4 and ULA IPv6 addresses that exist only inside them), and
the records the agent writes for each: addresses, ports, pid/comm, result, error and latency.

Without netem, latency comes from TCP itself: a listener whose accept queue is full drops SYNs,
so a connect to it waits for the SYN retransmission (1 s), or times out when the queue never
drains (the client namespace allows one SYN retry: 1 s + 2 s)."""
import json
import os
import subprocess
import sys
import tempfile
import time

from harness import (BUILD_DIR, SOURCE_DIR, Agent, Cleanup, require_root, skip, unique, wait_for,
                     write_file)

EXAMPLE = os.path.join(SOURCE_DIR, "specs", "examples", "tcp_connlat.yaml")
OBJECT = os.path.join(BUILD_DIR, "bpf", "tcp_connlat.bpf.o")
CLIENT_COMM = "ea_connlat_cli"

CLIENT_ADDR4, SERVER_ADDR4 = "169.254.77.1", "169.254.77.2"
CLIENT_ADDR6, SERVER_ADDR6 = "fd00:ea:77::1", "fd00:ea:77::2"
PORT_OPEN = 18080     # accepts and closes every connection
PORT_SLOW = 18081     # accept queue full until 0.5 s after the first connection: the next SYN is dropped once
PORT_FULL = 18082     # accept queue full forever: the next connect times out
PORT_CLOSED = 18083   # nothing listens: reset
OPEN_CONNECTS = 3     # per address family
# listen(1) holds two completed connections; the third SYN finds the queue full.
QUEUE_FILLERS = 2

SERVER = r"""
import select, socket, sys, threading, time

def listen(family, addr, port, backlog):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    return s

def accept_and_close(s):
    while True:
        s.accept()[0].close()

def accept_late(s, held):
    select.select([s], [], [])
    time.sleep(0.5)
    while True:
        held.append(s.accept()[0])

addr4, addr6, port_open, port_slow, port_full = sys.argv[1:6]
held = []
for family, addr in ((socket.AF_INET, addr4), (socket.AF_INET6, addr6)):
    threading.Thread(target=accept_and_close, args=(listen(family, addr, int(port_open), 64),), daemon=True).start()
threading.Thread(target=accept_late, args=(listen(socket.AF_INET, addr4, int(port_slow), 1), held), daemon=True).start()
never_accepted = listen(socket.AF_INET, addr4, int(port_full), 1)
print("ready", flush=True)
sys.stdin.read()
"""

CLIENT = r"""
import ctypes, errno, json, os, socket, sys, threading, time

ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: our comm
local4, server4, local6, server6 = sys.argv[2:6]
port_open, port_slow, port_full, port_closed, open_connects, fillers = map(int, sys.argv[6:12])
connects, held = [], []

def connect(family, local, addr, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((local, 0))  # the source port is known even when the connect fails
    sport = s.getsockname()[1]
    start = time.monotonic()
    try:
        s.connect((addr, port))
        outcome = "established"
    except OSError as e:
        outcome = errno.errorcode[e.errno]
    connects.append({"daddr": addr, "dport": port, "sport": sport, "outcome": outcome,
                     "seconds": time.monotonic() - start})
    held.append(s)  # queue fillers must stay connected

for _ in range(open_connects):
    connect(socket.AF_INET, local4, server4, port_open)
    connect(socket.AF_INET6, local6, server6, port_open)
connect(socket.AF_INET, local4, server4, port_closed)
for port in (port_slow, port_full):
    for _ in range(fillers + 1):
        connect(socket.AF_INET, local4, server4, port)
print(json.dumps({"pid": threading.get_native_id(), "tgid": os.getpid(), "connects": connects}))
"""


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def make_network(cleanup):
    """Two namespaces joined by a veth pair; returns (client_ns, server_ns)."""
    client_ns, server_ns = unique("ea_clc_"), unique("ea_cls_")
    client_if, server_if = unique("eclc"), unique("ecls")
    for ns in (client_ns, server_ns):
        run("ip", "netns", "add", ns)
        cleanup.add(lambda ns=ns: run("ip", "netns", "del", ns))
        run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "link", "add", client_if, "netns", client_ns, "type", "veth", "peer", "name", server_if, "netns",
        server_ns)
    for ns, ifname, addr4, addr6 in ((client_ns, client_if, CLIENT_ADDR4, CLIENT_ADDR6),
                                     (server_ns, server_if, SERVER_ADDR4, SERVER_ADDR6)):
        run("ip", "-n", ns, "addr", "add", f"{addr4}/30", "dev", ifname)
        run("ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", ifname, "nodad")
        run("ip", "-n", ns, "link", "set", ifname, "up")
    # One SYN retry, so the connect to the never-draining queue times out after 1 s + 2 s.
    run("ip", "netns", "exec", client_ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/tcp_syn_retries")
    return client_ns, server_ns


def start_server(cleanup, server_ns):
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, sys.executable, "-c", SERVER, SERVER_ADDR4,
                               SERVER_ADDR6, str(PORT_OPEN), str(PORT_SLOW), str(PORT_FULL)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop():
        server.kill()
        server.wait()
    cleanup.add(stop)
    line = server.stdout.readline()
    assert line.strip() == "ready", f"server did not start (exit {server.poll()})"


def warm_up(client_ns):
    """One connect per family from another process (so not counted): on a fresh veth the first
    IPv6 SYN can wait a second for the link to become ready."""
    code = ("import socket, sys\n"
            "for addr in sys.argv[1:3]: socket.create_connection((addr, int(sys.argv[3])), timeout=5).close()")
    run("ip", "netns", "exec", client_ns, sys.executable, "-c", code, SERVER_ADDR4, SERVER_ADDR6, str(PORT_OPEN),
        timeout=15)


def run_client(client_ns):
    out = run("ip", "netns", "exec", client_ns, sys.executable, "-c", CLIENT, CLIENT_COMM, CLIENT_ADDR4,
              SERVER_ADDR4, CLIENT_ADDR6, SERVER_ADDR6, str(PORT_OPEN), str(PORT_SLOW), str(PORT_FULL), str(PORT_CLOSED),
              str(OPEN_CONNECTS), str(QUEUE_FILLERS), timeout=30).stdout
    return json.loads(out)


def expected_outcomes(client):
    """What the client itself saw, checked first so a surprise in the network set-up is named as such."""
    outcomes = [(c["dport"], c["outcome"]) for c in client["connects"]]
    expected = ([(PORT_OPEN, "established")] * 2 * OPEN_CONNECTS + [(PORT_CLOSED, "ECONNREFUSED")]
                + [(PORT_SLOW, "established")] * (QUEUE_FILLERS + 1)
                + [(PORT_FULL, "established")] * QUEUE_FILLERS + [(PORT_FULL, "ETIMEDOUT")])
    assert outcomes == expected, f"the test network did not behave as planned:\n{outcomes}\n!=\n{expected}"
    slow = client["connects"][-QUEUE_FILLERS - 2]
    assert slow["seconds"] > 0.9, f"connect to the full queue did not wait for a SYN retry: {slow}"


def check_records(records, client, spec):
    mine = [r for r in records if r["spec"] == spec and r.get("tgid") == client["tgid"]]
    for record in mine:
        data = record["data"]
        assert record["pid"] == data["pid"] == client["pid"], record
        assert data["tgid"] == client["tgid"] and record["comm"] == data["comm"] == CLIENT_COMM, record
        assert record["program"] == "tcp_connlat" and record["channel"] == "connlat_events", record
        assert data["latency_ns"] > 0 and abs(data["latency_us"] * 1000 - data["latency_ns"]) < 1, record
    return mine


def record_of(records, connect):
    """The one record of a connect, matched by its address and port pair."""
    found = [r["data"] for r in records
             if (r["data"]["daddr"], r["data"]["dport"], r["data"]["sport"]) ==
             (connect["daddr"], connect["dport"], connect["sport"])]
    assert len(found) == 1, f"expected one record for {connect}, got {found}"
    data = found[0]
    v6 = ":" in connect["daddr"]
    assert data["family"] == ("ipv6" if v6 else "ipv4"), data
    assert data["saddr"] == (CLIENT_ADDR6 if v6 else CLIENT_ADDR4), data
    if connect["outcome"] == "established":
        assert data["result"] == "established" and "error" not in data, (connect, data)
    else:
        assert data["result"] == "failed" and data["error"] == connect["outcome"], (connect, data)
    return data


def main():
    require_root()
    if not os.path.exists(OBJECT):
        skip(f"{OBJECT} not built")
    if not os.path.exists("/sys/kernel/tracing/events/sock/inet_sock_set_state") and \
            not os.path.exists("/sys/kernel/debug/tracing/events/sock/inet_sock_set_state"):
        skip("kernel has no sock:inet_sock_set_state tracepoint")
    with Cleanup() as cleanup:
        client_ns, server_ns = make_network(cleanup)
        start_server(cleanup, server_ns)
        warm_up(client_ns)
        # The example as shipped, plus a copy that only reports connects slower than 0.5 s (the
        # `min_latency_ns` variable must filter in the kernel).
        slow_only = unique("connlat_slow_")
        with open(EXAMPLE) as f:
            text = f.read()
        assert "name: tcp_connlat\n" in text and "min_latency_ns: 0" in text
        workdir = tempfile.mkdtemp(prefix="ea-connlat-")
        slow_spec = write_file(workdir, "slow.yaml", text.replace("name: tcp_connlat\n", f"name: {slow_only}\n", 1)
                               .replace("min_latency_ns: 0", "min_latency_ns: 500000000"))
        agent = Agent(cleanup, [EXAMPLE, slow_spec], workdir=workdir)
        agent.wait_ready()

        client = run_client(client_ns)
        expected_outcomes(client)
        total = 2 * OPEN_CONNECTS + 1 + 2 * (QUEUE_FILLERS + 1)
        wait_for(lambda: len(check_records(agent.records(), client, "tcp_connlat")) >= total, 10,
                 what=f"{total} connect records from pid {client['tgid']}")
        time.sleep(0.3)  # anything extra would show up now
        records = check_records(agent.records(), client, "tcp_connlat")
        assert len(records) == total, f"expected {total} records, got {len(records)}:\n" + "\n".join(map(str, records))

        for connect in client["connects"]:
            data = record_of(records, connect)
            # The kernel's latency is what the client waited for: about 1 s for the dropped SYN,
            # 3 s for the timeout, well under 100 ms for the rest on a veth.
            if connect["seconds"] > 0.5:
                assert abs(data["latency_ns"] / 1e9 - connect["seconds"]) < 0.2, (connect, data)
            else:
                assert data["latency_ns"] < 100_000_000, (connect, data)

        wait_for(lambda: len(check_records(agent.records(), client, slow_only)) >= 2, 10,
                 what=f"the two slow connects from {slow_only}")
        slow_records = check_records(agent.records(), client, slow_only)
        assert sorted((r["data"]["dport"], r["data"]["result"]) for r in slow_records) == \
            [(PORT_SLOW, "established"), (PORT_FULL, "failed")], slow_records

        assert agent.stop() == 0, agent.log_text()
        print(f"tcp_connlat: {total} connects reported with addresses, ports, pid/comm, result and latency; "
              f"min_latency_ns filtered in the kernel")


if __name__ == "__main__":
    main()
