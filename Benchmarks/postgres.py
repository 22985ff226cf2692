#!/usr/bin/env python3
"""Creates on PostgreSQL against PostgreSQL's own ceiling, in one run (issue 14):

- (pgbench) PostgreSQL alone: `pgbench -c32 -j2 -n` with a script inserting the same 10-field JSON
  document into a `jsonb` table (`bench_docs`, made for it);
- (shape) the same pgbench, with Moonbase's own create statement into its `records` table (a
  database a Moonbase node migrated): what PostgreSQL's side of a create costs, Moonbase left out;
- (serial) PostgreSQL alone on one connection, 16 such inserts per transaction (`pgbench -c1`): the
  shape of Moonbase's writes, which one connection per node commits in groups; its rate is inserts/s;
- (pg1)  Moonbase, one node on PostgreSQL, no hooks;
- (pg2)  Moonbase, two nodes sharing one database, the 32 connections split 16 + 16 (two wrk);
- (hooks) Moonbase, one node on PostgreSQL with 10 no-op after-hooks;
- (sqlite) Moonbase on SQLite, no hooks, for comparison.

Moonbase's cases POST the same document to /api/v1/collections/posts/records (wrk -t1, Lua
script, 32 connections in all). Each case has its own database and servers, which run throughout;
the cases take turns for ROUNDS rounds of SECONDS seconds (each round starts one case later) and
the figures are medians. Beside each rate: failed requests (non-2xx and socket errors; pgbench's
failed transactions) and the CPU each side used during the run, in % of the machine's cores (100 %
= all of them), read from /proc: the case's moonbase processes; the PostgreSQL server (postmaster,
its live children, and through its cutime/cstime the children that ended, i.e. pgbench's
backends); and the load generator (wrk or pgbench, from getrusage of this script's children). Then
the CPU time per create (or insert) of Moonbase and PostgreSQL together, the load generator left
out: on a busy machine it moves less than the rates. For Moonbase on PostgreSQL, also the mean
writes per transaction (group commit), from /metrics.

    python3 Benchmarks/postgres.py [BINARY] [SECONDS] [ROUNDS] [BASELINE]
                                   (default .build/release/moonbase, 10, 3, none)

With BASELINE, another build of moonbase (e.g. the commit before a change), its (pg1) and (hooks)
run in the same rounds as (pg1b) and (hooksb), to measure a change before and after.

Unless MOONBASE_TEST_POSTGRES_URL names a cluster already, the script runs itself under
`scripts/with-postgres.sh` with MOONBASE_POSTGRES_DURABLE=1: a throwaway cluster with
PostgreSQL's default durability (fsync and synchronous_commit on), installed if missing, and
plain TCP (MOONBASE_POSTGRES_TLS=0), as the earlier runs had. wrk is
installed if missing. Exits 1 if a request failed or a check failed (every answered create stored;
every stored record delivered once to each of the 10 hooks); a goal not met is printed, not an
error."""
import glob, json, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time
import urllib.parse
from bench_support import connect, free_port, start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.environ.get("MOONBASE_TEST_POSTGRES_URL"):
    os.execvpe("bash", ["bash", os.path.join(ROOT, "scripts/with-postgres.sh"), sys.executable, os.path.abspath(__file__),
                        *sys.argv[1:]], {**os.environ, "MOONBASE_POSTGRES_DURABLE": "1", "MOONBASE_POSTGRES_TLS": "0"})

binary = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/moonbase")
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
baseline = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None
CONNECTIONS = 32
GROUP = 16  # inserts per transaction in (serial), about Moonbase's groups at 32 connections
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count()
AUTH = {"Authorization": "Bearer bench"}
DOCUMENT = ('{"title":"Hello Moonbase","slug":null,"body":"A records backend with drop-in Lua hooks.","author":"ada",'
            '"status":"published","views":1234,"likes":56,"rating":4.5,"score":0.875,"published":true}')

url = urllib.parse.urlsplit(os.environ["MOONBASE_TEST_POSTGRES_URL"])
postmaster = int(open(os.path.join(os.environ["MOONBASE_TEST_POSTGRES_DATA"], "postmaster.pid")).readline())
pg_bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
pg_env = {**os.environ, "PGHOST": url.hostname, "PGPORT": str(url.port), "PGUSER": url.username, "PGPASSWORD": url.password}
work = tempfile.mkdtemp(prefix="moonbase-postgres-bench-")
servers = {}  # case -> [Popen]

def psql(database, sql):
    subprocess.run([f"{pg_bin}/psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], env=pg_env, check=True,
                   stdout=subprocess.DEVNULL)

def database_url(name):
    return f"postgres://{url.username}:{url.password}@{url.hostname}:{url.port}/{name}"

# CPU ticks (user + system) of a process; of the PostgreSQL server with its children.
def ticks(pid, children=False):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)

def postgres_children():
    """The PostgreSQL server's processes other than the postmaster: {pid: ticks}."""
    found = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                found[int(stat.split("/")[2])] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass  # a backend that ended meanwhile: counted in the postmaster's cutime/cstime
    return found

def postgres_ticks(settled=None):
    """The server's CPU ticks; with `settled`, first waits (at most 2 s) until only those processes
    are left, so the backends of clients that just disconnected (pgbench's) are reaped and counted."""
    for _ in range(100 if settled is not None else 0):
        if set(postgres_children()) <= set(settled):
            break
        time.sleep(0.02)
    return ticks(postmaster, children=True) + sum(postgres_children().values())

def client_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

def serve(case, hooks=0, *flags, build=binary):
    """A moonbase node of `case` on a free port; its first node makes the collection."""
    folder = os.path.join(work, f"{case}-{len(servers.get(case, []))}")
    os.makedirs(os.path.join(folder, "hooks"))
    for i in range(hooks):
        with open(os.path.join(folder, "hooks", f"noop_{i:02}.lua"), "w") as f:
            f.write("on_record_create('posts', function(event) end)\n")
    port = free_port()
    server = start(build, port, os.path.join(folder, "data"), os.path.join(folder, "hooks"), *flags)
    server.port = port
    conn = connect(port, timeout=10)
    if not servers.get(case):  # the others read it from the database they share when they start
        conn.request("POST", "/api/v1/collections", body='{"name":"posts"}', headers=AUTH)
        answer = conn.getresponse()
        if answer.status >= 300:
            raise SystemExit(f"({case}) could not make the collection: {answer.status} {answer.read()!r}")
        answer.read()
    servers.setdefault(case, []).append(server)

def get(port, path):
    conn = connect(port, timeout=30)
    conn.request("GET", path, headers=AUTH)
    return json.loads(conn.getresponse().read())

def hook_calls(port):
    return sum(h["calls"] for f in get(port, "/api/v1/hooks") for h in f["handlers"])

def failed(wrk_output):
    count = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_output):
        count += int(m.group(1))
    if m := re.search(r"Socket errors: (.*)", wrk_output):
        count += sum(int(n) for n in re.findall(r"\d+", m.group(1)))
    return count

def run_wrk(case):
    """wrk against the case's nodes at once, the connections split between them; (rate, failed, answered)."""
    nodes = servers[case]
    runs = [subprocess.Popen(["wrk", "-t1", f"-c{CONNECTIONS // len(nodes)}", f"-d{seconds}s", "-s", post,
                              f"http://127.0.0.1:{node.port}/api/v1/collections/posts/records"],
                             stdout=subprocess.PIPE, text=True) for node in nodes]
    outputs = [run.communicate()[0] for run in runs]
    rate = sum(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) for out in outputs)
    answered = sum(int(re.search(r"(\d+) requests in", out).group(1)) for out in outputs)
    return rate, sum(failed(out) for out in outputs), answered

def run_pgbench(case):
    """(inserts/s, failed, inserts): 32 connections of one insert each, or (serial) one of 16."""
    clients, script, inserts, database = {"pgbench": (CONNECTIONS, insert, 1, "pgbench"), "shape": (CONNECTIONS, shaped, 1, "shape"),
                                          "serial": (1, grouped, GROUP, "pgbench")}[case]
    out = subprocess.run([f"{pg_bin}/pgbench", "-c", str(clients), f"-j{min(clients, 2)}", "-T", str(seconds), "-n",
                          "-f", script, database], env=pg_env, capture_output=True, text=True)
    if out.returncode != 0 or not (m := re.search(r"tps = ([\d.]+) \(without initial", out.stdout)):
        raise SystemExit(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    errors = re.search(r"number of failed transactions: (\d+)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    return float(m.group(1)) * inserts, int(errors.group(1)) if errors else 0, int(done.group(1)) * inserts

def commit_batches(case):
    """(writes, transactions) the case's nodes committed so far (moonbase_store_commit_batch_size)."""
    writes = transactions = 0
    for node in servers.get(case, []) if case.startswith(("pg", "hooks")) and case != "pgbench" else []:
        conn = connect(node.port, timeout=30)
        conn.request("GET", "/metrics", headers=AUTH)
        text = conn.getresponse().read().decode()
        writes += float(re.search(r"^moonbase_store_commit_batch_size_sum ([\d.e+]+)", text, re.M).group(1))
        transactions += float(re.search(r"^moonbase_store_commit_batch_size_count ([\d.e+]+)", text, re.M).group(1))
    return writes, transactions

def wait_for_deliveries(case):
    """Until the case's node has made every call it owes (10 per stored record), at most 2 minutes."""
    port = servers[case][0].port
    began = time.monotonic()
    while time.monotonic() - began < 120:
        owed = 10 * get(port, "/api/v1/collections/posts/records?per_page=1")["total_items"]
        if hook_calls(port) >= owed:
            break
        time.sleep(0.2)
    return time.monotonic() - began

if shutil.which("wrk") is None:
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)

labels = {"pgbench": "PostgreSQL alone: pgbench -c32 -j2, INSERT jsonb",
          "shape": "the same, Moonbase's INSERT into its records table",
          "serial": f"PostgreSQL alone: pgbench -c1, {GROUP} INSERTs per tx", "pg1": "Moonbase on PostgreSQL, one node",
          "pg2": "Moonbase on PostgreSQL, two nodes (16 + 16)", "hooks": "one node, 10 no-op after-hooks",
          "sqlite": "Moonbase on SQLite, one node"}
if baseline:
    labels |= {"pg1b": "(pg1) with BASELINE", "hooksb": "(hooks) with BASELINE"}
cases = list(labels)
results = {case: [] for case in cases}  # (rate, failed, answered, moonbase %, postgres %, client %)
drains = []
try:
    post = os.path.join(work, "post.lua")
    with open(post, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer bench"\nwrk.body = \'{DOCUMENT}\'\n')
    insert = os.path.join(work, "insert.sql")
    with open(insert, "w") as f:
        f.write(f"INSERT INTO bench_docs (doc) VALUES ('{DOCUMENT}'::jsonb);\n")
    grouped = os.path.join(work, "grouped.sql")
    with open(grouped, "w") as f:
        f.write("BEGIN;\n" + f"INSERT INTO bench_docs (doc) VALUES ('{DOCUMENT}'::jsonb);\n" * GROUP + "COMMIT;\n")
    shaped = os.path.join(work, "shaped.sql")
    with open(shaped, "w") as f:  # PostgresStore's insert of a create without an event, values inline
        f.write("INSERT INTO records (collection, id, created, updated, version, data) SELECT 'posts', gen_random_uuid()::text, "
                "'2026-12-03T12:00:00.000Z', '2026-12-03T12:00:00.000Z', 1, "
                f"'{DOCUMENT}'::json WHERE EXISTS (SELECT 1 FROM collections WHERE name = 'posts') "
                "ON CONFLICT (collection, id) DO NOTHING RETURNING 1;\n")
    for name in ("pgbench", "shape", "pg1", "pg2", "hooks") + (("pg1b", "hooksb") if baseline else ()):
        psql("postgres", f"CREATE DATABASE {name}")
    psql("pgbench", "CREATE TABLE bench_docs (id bigserial PRIMARY KEY, doc jsonb NOT NULL)")
    serve("shape", 0, "--database", database_url("shape"))  # idle: it made the tables (shape)'s pgbench fills
    serve("pg1", 0, "--database", database_url("pg1"))
    serve("pg2", 0, "--database", database_url("pg2"), "--node-id", "node-a")
    serve("pg2", 0, "--database", database_url("pg2"), "--node-id", "node-b")
    serve("hooks", 10, "--database", database_url("hooks"))
    serve("sqlite")
    if baseline:
        serve("pg1b", 0, "--database", database_url("pg1b"), build=baseline)
        serve("hooksb", 10, "--database", database_url("hooksb"), build=baseline)

    print(f"creates of a 10-field JSON document, {CONNECTIONS} connections, {rounds} rounds of {seconds} s per case, "
          f"medians; PostgreSQL {subprocess.run([f'{pg_bin}/postgres', '--version'], capture_output=True, text=True).stdout.split()[2]}"
          f" (durable: {os.environ.get('MOONBASE_POSTGRES_DURABLE') == '1'}), {CORES} cores; load before: "
          f"{open('/proc/loadavg').read().split()[0]}", flush=True)
    for round in range(rounds):
        for turn in range(len(cases)):
            case = cases[(turn + round) % len(cases)]
            pids = [server.pid for server in servers.get(case, [])]
            alone = case in ("pgbench", "shape", "serial")
            settled = postgres_children()
            batches = commit_batches(case)
            before = (sum(ticks(pid) for pid in pids), postgres_ticks(), client_seconds(), time.monotonic())
            rate, failures, answered = (run_pgbench if alone else run_wrk)(case)
            ended = time.monotonic()
            after = (sum(ticks(pid) for pid in pids), postgres_ticks(settled if alone else None), client_seconds())
            elapsed = (ended - before[3]) * CORES / 100
            writes, transactions = (a - b for a, b in zip(commit_batches(case), batches))
            results[case].append((rate, failures, answered, (after[0] - before[0]) / TICKS / elapsed,
                                  (after[1] - before[1]) / TICKS / elapsed, (after[2] - before[2]) / elapsed,
                                  writes / transactions if transactions else None))
            if case.startswith("hooks"):  # its deliveries finish before the next case runs
                drains.append(wait_for_deliveries(case))

    problems = []
    for case in cases:
        for server in servers.get(case, []):
            if server.poll() is not None:
                problems.append(f"({case}) a node exited with status {server.returncode}")
        if case in servers:
            stored = get(servers[case][0].port, "/api/v1/collections/posts/records?per_page=1")["total_items"]
            answered = sum(r[2] - r[1] for r in results[case])
            if stored < answered:
                problems.append(f"({case}) {stored} records stored < {answered} creates answered")
            if case.startswith("hooks") and (calls := hook_calls(servers[case][0].port)) != 10 * stored:
                problems.append(f"({case}) {calls} hook calls for {stored} records, expected {10 * stored}")

    print(f"\n{'case':<58} {'per s':>8} {'failed':>6}   CPU % of {CORES} cores: moonbase postgres client"
          f"   writes/tx  CPU µs/op")
    rate = {}
    for case in cases:
        rows = results[case]
        rate[case] = statistics.median(r[0] for r in rows)
        failures = sum(r[1] for r in rows)
        moonbase, postgres, client = (statistics.median(r[i] for r in rows) for i in (3, 4, 5))
        groups = [r[6] for r in rows if r[6] is not None]
        print(f"({case}) {labels[case]:<{56 - len(case)}} {rate[case]:>8.0f} {failures:>6}   "
              f"{'-' if case in ('pgbench', 'shape', 'serial') else f'{moonbase:.0f}':>27} {postgres:>8.0f} {client:>6.0f}"
              f"   {f'{statistics.median(groups):.1f}' if groups else '-':>9}"
              f"  {(moonbase + postgres) / 100 * CORES / rate[case] * 1e6:>9.0f}")
        if failures:
            problems.append(f"({case}) {failures} failed")
    print(f"after-hooks' deliveries done {max(drains):.1f} s at most after a run of (hooks) ended")

    print(f"\n{'goals (issue 14)':<60} {'figure':>7}  goal")
    def goal(name, figure, text, met):
        print(f"  {name:<58} {figure:>7}  {text:<8} {'met' if met else 'NOT MET'}")
    goal("(pg1)/(pgbench): one node against PostgreSQL's inserts", f"{rate['pg1'] / rate['pgbench']:.2f}", ">= 0.5",
         rate["pg1"] / rate["pgbench"] >= 0.5)
    goal("(hooks)/(pg1): 10 no-op after-hooks against none", f"{rate['hooks'] / rate['pg1']:.2f}", ">= 0.8",
         rate["hooks"] / rate["pg1"] >= 0.8)
    goal("failed requests and checks", str(len(problems)), "0", not problems)
    if baseline:
        print(f"  against BASELINE: (pg1)/(pg1b) {rate['pg1'] / rate['pg1b']:.2f}, (hooks)/(hooksb) "
              f"{rate['hooks'] / rate['hooksb']:.2f}; BASELINE's goals: (pg1b)/(pgbench) {rate['pg1b'] / rate['pgbench']:.2f}, "
              f"(hooksb)/(pg1b) {rate['hooksb'] / rate['pg1b']:.2f}")
    print(f"  (pg2)/(pg1): two nodes against one {rate['pg2'] / rate['pg1']:.2f}; "
          f"(pg1)/(serial): one node against one connection's grouped inserts {rate['pg1'] / rate['serial']:.2f}; "
          f"(pg1)/(sqlite): PostgreSQL against SQLite {rate['pg1'] / rate['sqlite']:.2f}")
    for problem in problems:
        print(problem, file=sys.stderr)
    status = 1 if problems else 0
finally:
    for nodes in servers.values():
        for server in nodes:
            server.terminate()
    for nodes in servers.values():
        for server in nodes:
            server.wait()
    shutil.rmtree(work, ignore_errors=True)
sys.exit(status)
