"""Daemon lifecycle against the real kernel: apply, list, replace, refuse bad versions, delete,
the watched specs directory, and that nothing a spec made is left behind."""
import json
import os
import subprocess

from harness import BUILD_DIR, Cleanup, Daemon, require_root, skip, unique, wait_for, write_file

OBJECT = os.path.join(BUILD_DIR, "tests", "bpf", "test_events.bpf.o")


def spec_text(name, cookie, pinpath=None, extra=""):
    pin = f"\n      pinpath: {pinpath}" if pinpath else ""
    return f"""kind: ebpfprogram
name: {name}
version: "{cookie}"
spec:
  programs:
    - name: events
      path: file://{OBJECT}
      type: ebpf_object
      properties:
        variables:
          target_tgid: {os.getpid()}
          cookie: {cookie}
{extra}  channels:
    test_events:
      type: ring_buffer{pin}
"""


def trigger(count=5):
    for _ in range(count):
        os.getppid()


def cookies_seen(records, spec, since=0):
    return {r["data"]["cookie"] for r in records[since:] if r["spec"] == spec}


def loaded_program_ids():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p["id"] for p in json.loads(out) if p.get("name") == "on_getppid"}


def main():
    require_root()
    if not os.path.exists(OBJECT):
        skip(f"fixture {OBJECT} not built")
    with Cleanup() as cleanup:
        programs_before = loaded_program_ids()
        daemon = Daemon(cleanup)
        work, socket_path, specs_dir = daemon.workdir, daemon.socket, daemon.specs_dir
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o600", "control socket must be root-only"
        ctl, records = daemon.ctl, daemon.records

        keep = unique("keep_")
        change = unique("chg_")
        pin = f"/sys/fs/bpf/{unique('ea_test_')}"
        cleanup.add(lambda: os.path.exists(pin) and os.unlink(pin))

        # Two specs running side by side.
        r = ctl("apply", "-f", write_file(work, "keep.yaml", spec_text(keep, 1)))
        assert r.returncode == 0, r.stderr
        r = ctl("apply", "-f", write_file(work, "change_v1.yaml", spec_text(change, 10, pin)))
        assert r.returncode == 0, r.stderr
        assert os.path.exists(pin), "channel pinpath not pinned"
        listing = json.loads(ctl("list", "-o", "json").stdout)
        names = {s["name"] for s in listing["specs"]}
        assert {keep, change} <= names, names
        spec = next(s for s in listing["specs"] if s["name"] == change)
        assert spec["programs"][0]["attach_points"], spec
        assert "tracepoint" in " ".join(spec["programs"][0]["attach_points"])
        table = ctl("list").stdout
        assert change in table and "test_events" in table, table

        trigger()
        wait_for(lambda: 10 in cookies_seen(records(), change) and 1 in cookies_seen(records(), keep), 10,
                 what="records from both specs")

        # A new version replaces the old one; the other spec keeps producing.
        r = ctl("apply", "-f", write_file(work, "change_v2.yaml", spec_text(change, 20, pin)))
        assert r.returncode == 0, r.stderr
        mark = len(records())
        trigger()
        wait_for(lambda: 20 in cookies_seen(records(), change, mark) and 1 in cookies_seen(records(), keep, mark), 10,
                 what="records from v2 and the untouched spec")
        assert 10 not in cookies_seen(records(), change, mark), "v1 still attached after replacement"

        # Bad versions are refused with a clear error and v2 keeps running.
        bad_field = spec_text(change, 30, pin).replace("      type: ebpf_object", "      type: ebpf_object\n      colour: red")
        r = ctl("apply", "-f", write_file(work, "change_bad_field.yaml", bad_field))
        assert r.returncode != 0 and "colour" in r.stderr, r.stderr
        missing = spec_text(change, 40, pin).replace(OBJECT, "/nonexistent/missing.bpf.o")
        r = ctl("apply", "-f", write_file(work, "change_missing.yaml", missing))
        assert r.returncode != 0 and "missing.bpf.o" in r.stderr, r.stderr
        bad_variable = spec_text(change, 50, pin).replace("cookie: 50", "cookie: 50\n          no_such_variable: 1")
        r = ctl("apply", "-f", write_file(work, "change_bad_var.yaml", bad_variable))
        assert r.returncode != 0 and "no_such_variable" in r.stderr, r.stderr
        mark = len(records())
        trigger()
        wait_for(lambda: 20 in cookies_seen(records(), change, mark), 10, what="v2 still running after bad applies")
        assert not cookies_seen(records(), change, mark) & {30, 40, 50}

        # Delete: the spec's programs and pin are gone, the other spec keeps producing.
        assert len(loaded_program_ids() - programs_before) == 2
        r = ctl("delete", change)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(pin), "pin left behind by delete"
        assert len(loaded_program_ids() - programs_before) == 1, "deleted spec's program still loaded"
        mark = len(records())
        trigger()
        wait_for(lambda: 1 in cookies_seen(records(), keep, mark), 10, what="untouched spec after delete")
        assert not cookies_seen(records(), change, mark)
        r = ctl("delete", change)
        assert r.returncode != 0 and "no spec named" in r.stderr, r.stderr

        # The watched specs directory: a new file is applied, a removed file's specs are deleted.
        watched = unique("dir_")
        path = write_file(specs_dir, "watched.yaml", spec_text(watched, 7))
        wait_for(lambda: watched in ctl("list").stdout, 15, what="spec from the specs directory")
        os.unlink(path)
        wait_for(lambda: watched not in ctl("list").stdout, 15, what="removal of the spec file to unload it")

        # SIGTERM: flushes, detaches everything, removes the socket.
        assert daemon.stop() == 0, daemon.log_text()
        assert not os.path.exists(socket_path)
        assert loaded_program_ids() == programs_before, "programs left loaded after the daemon stopped"
        print("daemon lifecycle: ok")


if __name__ == "__main__":
    main()
