"""An installed agent (cmake --install into a fresh prefix) runs the shipped example specs as
written: the specs find their objects and plugins through the installed library directory."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile

from harness import Agent, BUILD_DIR, Cleanup, require_root, wait_for


def main():
    require_root()
    with Cleanup() as cleanup:
        prefix = tempfile.mkdtemp(prefix="ea-install-")
        cleanup.add(lambda: shutil.rmtree(prefix, ignore_errors=True))
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True, capture_output=True)
        agent = os.path.join(prefix, "bin", "ebpf-agent")
        examples = sorted(glob.glob(os.path.join(prefix, "share", "ebpf-agent", "specs", "examples", "*.yaml")))
        assert examples, "no example specs installed"
        assert os.path.exists(os.path.join(prefix, "include", "ebpf_agent", "plugin.h"))
        # Away from the build tree, so nothing can be found there by accident.
        env = dict(os.environ, EBPF_AGENT_PATH="")
        result = subprocess.run([agent, "validate", *examples], capture_output=True, text=True, cwd="/", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        print(result.stdout.strip())

        spec = os.path.join(prefix, "share", "ebpf-agent", "specs", "examples", "tcp_connlat.yaml")
        runner = Agent(cleanup, [spec], binary=agent)
        runner.wait_ready()
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port)):
                pass
        wait_for(lambda: any(r["data"].get("dport") == port for r in runner.records()), 10,
                 what="a tcp_connlat record from the installed agent")
        print("installed agent: ok")


if __name__ == "__main__":
    main()
