"""Every kind of bad input gets a clear error and leaves what runs untouched.

A daemon runs a "keeper" spec; each bad spec is applied (and, for the file-level ones, validated)
and must be refused with an error naming what is wrong; afterwards the keeper still produces."""
import hashlib
import os
import socket

from harness import BUILD_DIR, Cleanup, Daemon, require_root, run_agent, skip, unique, wait_for, write_file

FIXTURES = os.path.join(BUILD_DIR, "tests")
EVENTS_OBJECT = os.path.join(FIXTURES, "bpf", "test_events.bpf.o")
VERIFIER_OBJECT = os.path.join(FIXTURES, "bpf", "obj_rejected.bpf.o")
KPROBE_OBJECT = os.path.join(FIXTURES, "bpf", "kprobe_only.bpf.o")
PLUGINS = os.path.join(FIXTURES, "plugins")


def object_spec(name, path, extra_program_fields="", properties=""):
    return f"""kind: ebpfprogram
name: {name}
spec:
  programs:
    - name: events
      path: {path}
      type: ebpf_object{extra_program_fields}
      properties:
        variables:
          target_tgid: {os.getpid()}{properties}
  channels:
    test_events:
      type: ring_buffer
"""


def plugin_spec(name, plugin, function="process"):
    return f"""kind: ebpfprogram
name: {name}
spec:
  programs:
    - name: events
      path: file://{EVENTS_OBJECT}
      type: ebpf_object
    - name: decoder
      path: file://{os.path.join(PLUGINS, plugin)}
      type: user_so
      properties:
        functions:
          - name: {function}
  channels:
    test_events:
      type: ring_buffer
  events:
    - name: decoder
      target_processor: {function}
"""


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cases(name):
    with open(EVENTS_OBJECT, "rb") as f:
        real_sha = hashlib.sha256(f.read()).hexdigest()
    wrong_sha = "0" * 64 if real_sha != "0" * 64 else "1" * 64
    good = object_spec(name, f"file://{EVENTS_OBJECT}")
    yield ("YAML syntax error", "kind: ebpfprogram\nname: [unclosed\nspec: {}\n", ["YAML_syntax_error.yaml:"])
    yield ("unknown program type", good.replace("type: ebpf_object", "type: ebpf_obj"),
           ["unknown_program_type.yaml:", "ebpf_obj", "ebpf_object"])
    yield ("unknown field", good.replace("      type: ebpf_object", "      type: ebpf_object\n      colour: red"),
           ["unknown_field.yaml:", "colour"])
    yield ("missing file", object_spec(name, "file:///nonexistent/dir/missing.bpf.o"), ["missing.bpf.o"])
    yield ("sha256 mismatch", object_spec(name, f"file://{EVENTS_OBJECT}", f"\n      sha256: {wrong_sha}"),
           ["sha256", wrong_sha, real_sha])
    yield ("unreachable URL", object_spec(name, f"http://127.0.0.1:{closed_port()}/events.bpf.o"),
           ["127.0.0.1"])
    if os.path.exists(VERIFIER_OBJECT):
        yield ("verifier rejection", object_spec(name, f"file://{VERIFIER_OBJECT}").replace(
            "        variables:\n          target_tgid: " + str(os.getpid()) + "\n", ""), ["invalid mem access"])
    else:
        raise AssertionError(f"fixture {VERIFIER_OBJECT} missing")
    yield ("plugin missing its function", plugin_spec(name, "missing_symbol.so", "decode"), ["decode", "missing_symbol.so"])
    yield ("plugin for another ABI version", plugin_spec(name, "abi_mismatch.so"), ["ABI"])
    yield ("not a plugin", plugin_spec(name, "no_handshake.so"), ["ea_plugin_abi_version"])


def main():
    require_root()
    for path in (EVENTS_OBJECT, os.path.join(PLUGINS, "abi_mismatch.so")):
        if not os.path.exists(path):
            skip(f"fixture {path} not built")
    with Cleanup() as cleanup:
        daemon = Daemon(cleanup)
        keeper = unique("keeper_")
        r = daemon.apply(object_spec(keeper, f"file://{EVENTS_OBJECT}"), "keeper.yaml")
        assert r.returncode == 0, r.stderr
        victim = unique("victim_")
        failures = []
        for label, text, fragments in cases(victim):
            file_name = label.replace(" ", "_") + ".yaml"
            result = daemon.apply(text, file_name)
            message = result.stderr
            missing = [f for f in fragments if f not in message]
            if result.returncode == 0 or missing:
                failures.append(f"{label}: exit {result.returncode}, missing {missing} in:\n{message}")
            else:
                print(f"ok   {label}: {message.strip().splitlines()[0][:160]}")
            if fragments[0].endswith(".yaml:"):  # file-level errors: `validate` must report them too
                validated = run_agent("validate", os.path.join(daemon.workdir, file_name))
                if validated.returncode == 0 or not all(f in validated.stderr for f in fragments):
                    failures.append(f"validate {label}: exit {validated.returncode}:\n{validated.stderr}")
        assert not failures, "\n\n".join(failures)

        names = {s["name"] for s in daemon.list()["specs"]}
        assert names == {keeper}, f"expected only the keeper to run, got {names}"
        mark = len(daemon.records())
        for _ in range(5):
            os.getppid()
        wait_for(lambda: any(r["spec"] == keeper for r in daemon.records()[mark:]), 10,
                 what="the keeper spec to keep producing")
        print("bad input: every case refused, keeper kept running")


if __name__ == "__main__":
    main()
