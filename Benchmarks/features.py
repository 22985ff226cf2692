#!/usr/bin/env python3
"""What the newer features cost, each measured side by side in one run (wrk, release build):

- a Lua route returning a small JSON table, against GET /api/v1/health on the same server;
- creates whose only after-hook has a `when` that never matches, against no hooks;
- creates while a scraper reads /metrics every 100 ms, against no scraper;
- creates with `--sync full`, against `--sync normal`.

    python3 Benchmarks/features.py [BINARY] [ROUNDS] [SECONDS]   (default .build/release/moonbase, 3, 5)

Each pair runs alternately, ROUNDS rounds of SECONDS seconds (wrk -t1 -c32), and the figure is
the ratio of the medians; the goals are printed beside them."""
import http.client, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
from bench_support import connect, free_port, start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/moonbase")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
work = tempfile.mkdtemp(prefix="moonbase-features-")
servers = []

def serve(name, hooks, *flags):
    folder = os.path.join(work, name)
    os.makedirs(os.path.join(folder, "hooks"))
    for file, source in hooks.items():
        with open(os.path.join(folder, "hooks", file), "w") as f:
            f.write(source)
    port = free_port()
    servers.append(start(binary, port, os.path.join(folder, "data"), os.path.join(folder, "hooks"), *flags))
    conn = connect(port, timeout=10)
    conn.request("POST", "/api/v1/collections", body='{"name":"posts"}', headers={"Authorization": "Bearer bench"})
    conn.getresponse().read()
    return port

post = os.path.join(work, "post.lua")
with open(post, "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer bench"\n'
            'wrk.body = \'{"title":"Hello Moonbase","status":"draft","views":1234,"published":true}\'\n')

def rate(url, script=None):
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", url]
    if script:
        command[4:4] = ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed requests\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

def pair(label, goal, a, b):
    """Alternates a and b; returns the ratio of the medians of a to b."""
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(a())
        rb.append(b())
    ratio = statistics.median(ra) / statistics.median(rb)
    print(f"{label}: {statistics.median(ra):,.0f} against {statistics.median(rb):,.0f} req/s, "
          f"ratio {ratio:.2f} (goal ≥ {goal}) {'met' if ratio >= goal else 'NOT MET'}")

if shutil.which("wrk") is None:
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
try:
    route = serve("route", {"ping.lua": 'route("GET", "/ping", function(req) return {ok = true, n = 1} end, {public = true})\n'})
    plain = serve("plain", {})
    never = serve("never", {"never.lua": 'on_record_create("posts", function(e) end, {when = {status = "never"}})\n'})
    scraped = serve("scraped", {})
    full = serve("full", {}, "--sync", "full")
    records = lambda port: f"http://127.0.0.1:{port}/api/v1/collections/posts/records"
    print(f"features: wrk -t1 -c32, {rounds} rounds of {seconds} s per case, alternating; medians")
    pair("Lua route {ok = true} vs GET /api/v1/health", 0.5,
         lambda: rate(f"http://127.0.0.1:{route}/ping"), lambda: rate(f"http://127.0.0.1:{route}/api/v1/health"))
    pair("creates, one after-hook whose `when` never matches vs no hooks", 0.95,
         lambda: rate(records(never), post), lambda: rate(records(plain), post))

    def scraping(port, stop):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop:
            conn.request("GET", "/metrics", headers={"Authorization": "Bearer bench"})
            conn.getresponse().read()
            time.sleep(0.1)
    def with_scraper():
        stop = []
        thread = threading.Thread(target=scraping, args=(scraped, stop))
        thread.start()
        try:
            return rate(records(scraped), post)
        finally:
            stop.append(True)
            thread.join()
    pair("creates with /metrics scraped every 100 ms vs none", 0.98, with_scraper, lambda: rate(records(plain), post))
    pair("creates with --sync full vs --sync normal", 0.8, lambda: rate(records(full), post), lambda: rate(records(plain), post))
finally:
    for server in servers:
        server.terminate()
        server.wait()
    shutil.rmtree(work, ignore_errors=True)
