#!/usr/bin/env python3
"""Cron under load: 1,000 `@every 1s` schedules on one server for SECONDS seconds; the lag from
each run's `scheduled_at` to the moment its outcome was recorded (`updated`, after the handler
ran: an upper bound on the lag to the handler's start), and whether every slot ran exactly once.

    python3 Benchmarks/cron.py [BINARY] [SECONDS] [SCHEDULES]   (default .build/release/moonbase, 10, 1000)

Slots are counted per cron between its first and last run: each second must appear once."""
import datetime, json, os, shutil, sys, tempfile, time
from bench_support import connect, free_port, start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/moonbase")
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000

def ms(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000

work = tempfile.mkdtemp(prefix="moonbase-cron-")
hooks = os.path.join(work, "hooks")
os.makedirs(hooks)
with open(os.path.join(hooks, "ticks.lua"), "w") as f:
    f.write(f'for i = 1, {count} do cron("tick" .. i, "@every 1s", function(event) end) end\n')
port = free_port()
server = start(binary, port, os.path.join(work, "data"), hooks)
try:
    time.sleep(seconds + 2)
    server.send_signal(15)
    server.wait()
    # Read the runs back from a server without the hooks (so no more run).
    os.rename(os.path.join(hooks, "ticks.lua"), os.path.join(hooks, "ticks.off"))
    server = start(binary, port, os.path.join(work, "data"), hooks)
    conn = connect(port)
    lags, runs, duplicates, gaps, failed = [], 0, 0, 0, 0
    for i in range(1, count + 1):
        conn.request("GET", f"/api/v1/hooks/deliveries?kind=cron&hook=tick{i}&limit=1000", headers={"Authorization": "Bearer bench"})
        items = json.loads(conn.getresponse().read())
        slots = sorted(ms(item["scheduled_at"]) for item in items if not item["manual"])
        runs += len(slots)
        duplicates += len(slots) - len(set(slots))
        if slots:
            gaps += int((slots[-1] - slots[0]) / 1000) + 1 - len(set(slots))
        for item in items:
            if item["status"] == "succeeded":
                lags.append(ms(item["updated"]) - ms(item["scheduled_at"]))
            else:
                failed += 1
    lags.sort()
    p = lambda q: lags[min(len(lags) - 1, int(len(lags) * q))]
    print(f"cron: {count} schedules @every 1s for {seconds} s: {runs} runs, {failed} not succeeded, {duplicates} slots run twice, "
          f"{gaps} slots missed; lag from scheduled_at to the recorded outcome p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, "
          f"max {lags[-1]:.0f} ms (goal p99 ≤ 250 ms, every slot once)")
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
