"""An ebpf_object spec end to end through the daemon: the object fetched over http:// with a
sha256 pin, `progs` picking the hook this kernel has, `variables` and `maps` typed through BTF,
and ring-buffer records decoded through BTF into named fields with no processor at all."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys

from harness import BUILD_DIR, Cleanup, Daemon, require_root, skip, unique, wait_for

FIXTURE_DIR = os.path.join(BUILD_DIR, "tests", "bpf")
OBJECT = os.path.join(FIXTURE_DIR, "obj_types.bpf.o")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_server(cleanup, directory):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", directory,
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup.add(lambda: (server.terminate(), server.wait()))

    def accepting():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(accepting, 10, what="http.server")
    return port


def spec_text(name, url, sha256):
    return f"""kind: ebpfprogram
name: {name}
spec:
  programs:
    - name: types
      path: {url}
      sha256: {sha256}
      type: ebpf_object
      properties:
        progs: ["emit_event"]
        variables:
          target_tgid: {os.getpid()}
          threshold: 7
          limits: {{port: 8080, level: 2}}
        maps:
          conns:
            max_entries: 64
            entries:
              - {{key: {{addr: 0x7f000001, port: 80, proto: 6}}, value: {{hits: 5, label: lo}}}}
  channels:
    events:
      type: ring_buffer
      struct: event
"""


def conns_maps():
    out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out) if m.get("name") == "conns"]


def main():
    require_root()
    if not os.path.exists(OBJECT):
        skip(f"fixture {OBJECT} not built")
    if shutil.which("bpftool") is None and not os.path.exists("/usr/sbin/bpftool"):
        skip("bpftool is not installed")
    with Cleanup() as cleanup:
        maps_before = {m["id"] for m in conns_maps()}
        port = start_http_server(cleanup, FIXTURE_DIR)
        url = f"http://127.0.0.1:{port}/obj_types.bpf.o"
        with open(OBJECT, "rb") as f:
            sha256 = hashlib.sha256(f.read()).hexdigest()
        daemon = Daemon(cleanup)
        name = unique("obj_")

        r = daemon.apply(spec_text(name, url, "0" * 64), "bad_pin.yaml")
        assert r.returncode != 0 and f"sha256 mismatch for {url}" in r.stderr, r.stderr

        r = daemon.apply(spec_text(name, url, sha256))
        assert r.returncode == 0, r.stderr
        spec = next(s for s in daemon.list()["specs"] if s["name"] == name)
        assert spec["programs"][0]["attach_points"] == ["tracepoint/syscalls/sys_enter_getppid"], spec

        new_maps = [m for m in conns_maps() if m["id"] not in maps_before]
        assert len(new_maps) == 1 and new_maps[0]["max_entries"] == 64, new_maps
        dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "id", str(new_maps[0]["id"])],
                                         capture_output=True, text=True, check=True).stdout)
        entries = [e.get("formatted", e) for e in dump]
        assert any(e["key"] == {"addr": 0x7f000001, "port": 80, "proto": 6} and e["value"]["hits"] == 5
                   for e in entries), dump

        os.getppid()
        record = wait_for(lambda: next((r for r in daemon.records() if r["spec"] == name), None), 10,
                          what="a decoded record")
        with open("/proc/self/comm") as f:
            comm = f.read().strip()
        assert record["pid"] == os.getpid() and record["tgid"] == os.getpid() and record["comm"] == comm, record
        assert record["data"] == {"pid": os.getpid(), "tgid": os.getpid(), "comm": comm, "kind": "EVENT_GETPPID",
                                  "peer": {"port": 8080, "addr": [127, 0, 0, 1]}, "delta": -5, "flag": 1,
                                  "level": 2, "cookie": 7, "ok": True}, record

        r = daemon.ctl("delete", name)
        assert r.returncode == 0, r.stderr
        assert not [m for m in conns_maps() if m["id"] not in maps_before], "maps left after delete"
        print("ebpf_object over http with BTF-typed properties and records: ok")


if __name__ == "__main__":
    main()
