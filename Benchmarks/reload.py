#!/usr/bin/env python3
"""Reload benchmark: the time from `kill -HUP` to the new generation serving, with the shipped
hooks and with 100 files; the server's memory after 100 reloads against after the first; and
creates under load (wrk, 32 connections, 10 s) while a reload comes every second.

    python3 Benchmarks/reload.py [BINARY] [ROUNDS]      (default .build/release/moonbase, 20)

Each round sends SIGHUP and polls GET /api/v1/hooks (one kept-alive connection) until the
listing's generation has moved on; the figure is the median of the rounds. Memory is the
process's resident set (VmRSS) after the 1st and after the 100th reload. Under load: the p99 of a
steady run and of a run with reloads, side by side on one server, failed requests, and whether
every stored record was delivered exactly once to the after-hook (its calls in /metrics, which
count across generations, against the collection's total)."""
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from bench_support import connect, free_port, start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/moonbase")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def run(name, make_hooks):
    work = tempfile.mkdtemp(prefix="moonbase-reload-")
    hooks = os.path.join(work, "hooks")
    make_hooks(hooks)
    port = free_port()
    server = start(binary, port, os.path.join(work, "data"), hooks)
    try:
        conn = connect(port, timeout=10)
        headers = {"Authorization": "Bearer bench"}

        def generation():
            conn.request("GET", "/api/v1/hooks", headers=headers)
            listing = json.loads(conn.getresponse().read())
            return listing[0]["generation"]

        files = len([f for f in os.listdir(hooks) if f.endswith(".lua") and not f.startswith("_")])
        times, memory = [], {}
        for n in range(1, max(rounds, 300) + 1):
            before = generation()
            began = time.perf_counter()
            server.send_signal(signal.SIGHUP)
            while generation() == before:
                pass
            if n <= rounds:
                times.append((time.perf_counter() - began) * 1000)
            if n in (1, 100, 300):
                memory[n] = rss_kib(server.pid)
        print(f"{name}: {files} files, HUP to serving median {statistics.median(times):.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}, {rounds} rounds); "
              f"memory after the 1st reload {memory[1] / 1024:.1f} MiB, after the 100th {memory[100] / 1024:.1f} MiB "
              f"({(memory[100] / memory[1] - 1) * 100:+.1f} %), after the 300th {memory[300] / 1024:.1f} MiB")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

def shipped(hooks):
    shutil.copytree(os.path.join(ROOT, "hooks"), hooks)

def hundred(hooks):
    os.makedirs(hooks)
    for i in range(100):
        with open(os.path.join(hooks, f"h{i:03}.lua"), "w") as f:
            f.write(f"""local seen = 0
function handle_{i}(event)
  seen = seen + 1
  log.debug("seen", {{n = seen, id = event.record_id}})
end
on_record_create("c{i % 10}", handle_{i}, {{retries = 2}})
before_record_update("c{i % 10}", function(event)
  if event.data.locked == true then reject("locked", 409) end
end)
""")

def wrk_run(port, seconds, work):
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Authorization"] = "Bearer bench"\nwrk.body = \'{"title":"Hello","n":1}\'\n')
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}/api/v1/collections/posts/records"], capture_output=True, text=True).stdout
    def latency(label):
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == [label]:
                value = parts[1]
                for unit, factor in (("ms", 1), ("us", 0.001), ("s", 1000)):
                    if value.endswith(unit):
                        return float(value[:-len(unit)]) * factor
    failed = 0
    for line in out.splitlines():
        if "Non-2xx" in line or "Socket errors" in line:
            failed += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    requests = next(int(line.split()[0]) for line in out.splitlines() if "requests in" in line)
    return latency("99%"), failed, requests

def under_load(seconds=10):
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    work = tempfile.mkdtemp(prefix="moonbase-reload-load-")
    hooks = os.path.join(work, "hooks")
    os.makedirs(hooks)
    with open(os.path.join(hooks, "count.lua"), "w") as f:
        f.write('function counted(event) end\non_record_create("posts", counted, {name = "counted"})\n')
    port = free_port()
    server = start(binary, port, os.path.join(work, "data"), hooks)
    try:
        headers = {"Authorization": "Bearer bench"}
        conn = connect(port)
        conn.request("POST", "/api/v1/collections", body='{"name":"posts"}', headers=headers)
        conn.getresponse().read()
        steady_p99, steady_failed, steady_requests = wrk_run(port, seconds, work)
        stop = []
        def reload_every_second():
            while not stop:
                time.sleep(1)
                server.send_signal(signal.SIGHUP)
        import threading
        reloader = threading.Thread(target=reload_every_second)
        reloader.start()
        reload_p99, reload_failed, reload_requests = wrk_run(port, seconds, work)
        stop.append(True)
        reloader.join()

        def get(path):
            conn.request("GET", path, headers=headers)
            return conn.getresponse().read().decode()
        total = json.loads(get("/api/v1/collections/posts/records?per_page=1"))["total_items"]
        calls = 0
        for _ in range(600):
            calls = sum(float(line.split()[-1]) for line in get("/metrics").splitlines()
                        if line.startswith("moonbase_hook_handler_calls_total") and 'handler="counted"' in line)
            if calls >= total:
                break
            time.sleep(0.1)
        generation = json.loads(get("/api/v1/hooks"))[0]["generation"]
        print(f"under load (wrk -c32, {seconds} s each): p99 steady {steady_p99:.2f} ms, with a reload every second "
              f"{reload_p99:.2f} ms (ratio {reload_p99 / steady_p99:.2f}); failed requests {steady_failed + reload_failed} "
              f"of {steady_requests + reload_requests}; {generation - 1} reloads; {total} records stored, "
              f"{int(calls)} after-hook calls ({'exact' if int(calls) == total else 'NOT EXACT'})")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

run("shipped hooks", shipped)
run("100 files", hundred)
under_load()
