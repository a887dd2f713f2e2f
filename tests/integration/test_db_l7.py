"""Redis and PostgreSQL request metrics from `ebpf-agent run --builtin http`, against real servers
driven by real clients, compared with the numbers of commands the test sent:

- redis-benchmark (one connection per test): SET and GET one after the other, INCR pipelined by 4
  (-P 4): db_client_operation_duration_seconds counts for redis-benchmark and
  db_server_operation_duration_seconds counts for redis-server equal what was sent, by command;
- redis-cli commands that fail (LPUSH on a string: WRONGTYPE; an unknown command): counted with
  error_type="_OTHER" on both ends, next to the ones that succeed;
- psql in one session (-c per statement): VALUES statements that succeed and ones that fail
  (a syntax error still starts with VALUES), counted by the psql client and the postgres backend
  with error_type on the failed ones;
- pgbench -M extended -S (Parse/Bind/Describe/Execute/Sync): its SELECTs counted by name from
  the Parse, on both ends.
Every count must be exact.
The servers start before the agent; every connection is opened after it.
"""
import os
import shutil
import subprocess
import tempfile
import time

from harness import Agent, Cleanup, free_port, metric_sum, require_root, scrape, skip, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SERVER = "db_server_operation_duration_seconds_count"
CLIENT = "db_client_operation_duration_seconds_count"

N = 200              # redis-benchmark requests per command
PIPELINED = 100      # INCR, in pipelines of 4
FAILING = 5          # redis-cli LPUSH on a string key
QUERIES = 60         # psql VALUES that succeed
BAD_QUERIES = 3      # psql VALUES with a syntax error
TRANSACTIONS = 20    # pgbench -S transactions (one SELECT each)


def start_redis(cleanup, workdir):
    port = free_port()
    server = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", workdir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup.add(lambda: (server.terminate(), server.wait(10)))
    wait_for(lambda: subprocess.run([REDIS_CLI, "-p", str(port), "PING"], capture_output=True).returncode == 0
             if server.poll() is None else (_ for _ in ()).throw(AssertionError("redis-server exited")),
             15, what="redis-server")
    return port


def start_postgres(cleanup, workdir):
    port = free_port()
    pgdir = os.path.join(workdir, "pg")
    os.makedirs(pgdir)
    os.chmod(workdir, 0o755)
    shutil.chown(pgdir, "postgres", "postgres")

    def as_postgres(*args):
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120)

    as_postgres(f"{PG_BIN}/initdb", "-D", os.path.join(pgdir, "data"), "--auth=trust", "-U", "postgres")
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", os.path.join(pgdir, "data"), "-l", os.path.join(pgdir, "log"), "-w",
                "-o", f"-p {port} -k {pgdir} -c listen_addresses=127.0.0.1", "start")
    cleanup.add(lambda: as_postgres(f"{PG_BIN}/pg_ctl", "-D", os.path.join(pgdir, "data"), "-m", "immediate", "-w",
                                    "stop"))
    # pgbench's tables, made before the agent starts: their COPY is not part of what is measured.
    as_postgres(f"{PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-i", "-q", "postgres")
    return port


def main():
    require_root()
    for tool in (REDIS_SERVER, REDIS_CLI, REDIS_BENCHMARK, f"{PG_BIN}/initdb", f"{PG_BIN}/psql", f"{PG_BIN}/pgbench"):
        if not os.path.exists(tool):
            skip(f"{tool} is not installed (packaging/debian-packages.txt lists redis-server and postgresql-15)")
    with Cleanup() as cleanup:
        workdir = tempfile.mkdtemp(prefix="ea-db-")
        cleanup.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
        redis_port = start_redis(cleanup, workdir)
        pg_port = start_postgres(cleanup, workdir)
        metrics_port = free_port()
        agent = Agent(cleanup, [], extra_args=["--builtin", "http", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                               "--metrics-interval", "1s"])
        agent.wait_ready(timeout=60)

        # Redis.
        bench = [REDIS_BENCHMARK, "-p", str(redis_port), "-c", "1", "-q"]
        subprocess.run(bench + ["-n", str(N), "-t", "set,get"], check=True, capture_output=True, timeout=120)
        subprocess.run(bench + ["-n", str(PIPELINED), "-P", "4", "-t", "incr"], check=True, capture_output=True,
                       timeout=120)
        cli = [REDIS_CLI, "-p", str(redis_port)]
        subprocess.run(cli + ["SET", "ea:string", "v"], check=True, capture_output=True)
        for _ in range(FAILING):
            out = subprocess.run(cli + ["LPUSH", "ea:string", "x"], capture_output=True, text=True).stdout
            assert out.startswith("WRONGTYPE"), out
        out = subprocess.run(cli + ["NOSUCHCOMMAND", "a"], capture_output=True, text=True).stdout
        assert out.startswith("ERR"), out

        # PostgreSQL.
        psql = [f"{PG_BIN}/psql", "-X", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d", "postgres"]
        statements = [f"VALUES ({i})" for i in range(QUERIES)] + ["VALUES (1,"] * BAD_QUERIES
        args = [a for s in statements for a in ("-c", s)]
        subprocess.run(psql + args, capture_output=True, timeout=120)
        subprocess.run([f"{PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-n", "-S",
                        "-M", "extended", "-t", str(TRANSACTIONS), "postgres"], check=True, capture_output=True,
                       timeout=120)

        time.sleep(2.5)  # two metric intervals
        samples = scrape(metrics_port)
        db = [s for s in samples if s[0] in (SERVER, CLIENT)]
        for name, labels, value in sorted(db, key=lambda s: (s[0], sorted(s[1].items()))):
            print(f"{name} {labels} {value:.0f}")

        failures = []

        def check(actual, expected, what):
            ok = actual == expected
            print(("ok   " if ok else "FAIL ") + f"{what}: {actual:.0f} (expected {expected})")
            if not ok:
                failures.append(what)

        def count(metric, comm, system, op, **labels):
            return metric_sum(samples, metric, process_executable_name=comm, db_system_name=system,
                              db_operation_name=op, **labels)

        for op, sent in (("SET", N), ("GET", N), ("INCR", PIPELINED)):
            check(count(CLIENT, "redis-benchmark", "redis", op), sent, f"redis-benchmark {op} (client)")
        check(count(SERVER, "redis-server", "redis", "SET"), N + 1, "redis-server SET (server: benchmark and cli)")
        check(count(SERVER, "redis-server", "redis", "GET"), N, "redis-server GET (server)")
        check(count(SERVER, "redis-server", "redis", "INCR"), PIPELINED, "redis-server INCR pipelined (server)")
        check(count(CLIENT, "redis-cli", "redis", "LPUSH"), FAILING, "redis-cli LPUSH (client)")
        check(count(CLIENT, "redis-cli", "redis", "LPUSH", error_type="_OTHER"), FAILING, "redis-cli LPUSH failed")
        check(count(SERVER, "redis-server", "redis", "LPUSH", error_type="_OTHER"), FAILING, "redis-server LPUSH failed")
        check(count(SERVER, "redis-server", "redis", "NOSUCHCOMMAND", error_type="_OTHER"), 1, "unknown command failed")
        check(count(SERVER, "redis-server", "redis", "SET", error_type="_OTHER"), 0, "no SET failed")

        check(count(CLIENT, "psql", "postgresql", "VALUES"), QUERIES + BAD_QUERIES, "psql VALUES (client)")
        check(count(CLIENT, "psql", "postgresql", "VALUES", error_type="_OTHER"), BAD_QUERIES, "psql VALUES failed")
        check(count(SERVER, "postgres", "postgresql", "VALUES"), QUERIES + BAD_QUERIES, "postgres VALUES (server)")
        check(count(SERVER, "postgres", "postgresql", "VALUES", error_type="_OTHER"), BAD_QUERIES,
              "postgres VALUES failed (server)")
        # pgbench -S: one SELECT per transaction, named from its Parse; before its run pgbench 15
        # asks for the scale and the partitioning with two simple-query SELECTs (see the recorded
        # tests/fixtures/l7/postgres_pgbench_*.bin).
        check(count(CLIENT, "pgbench", "postgresql", "SELECT"), TRANSACTIONS + 2, "pgbench SELECT (client)")
        check(count(SERVER, "postgres", "postgresql", "SELECT"), TRANSACTIONS + 2, "postgres SELECT (server)")
        check(count(CLIENT, "pgbench", "postgresql", "EXECUTE"), 0, "no pgbench request left unnamed")

        if failures:
            print(f"agent log:\n{agent.log_text()[-4000:]}")
            raise SystemExit(f"{len(failures)} checks failed: {failures}")
        print("all checks passed")


if __name__ == "__main__":
    main()
