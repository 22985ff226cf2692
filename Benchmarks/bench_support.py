"""What the Python benchmarks share: a free port, a release server started on it, and a
kept-alive connection once it answers."""
import http.client, os, socket, subprocess, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start(binary, port, data, hooks, *flags):
    """`moonbase serve` on `port` with the admin token `bench`, quiet."""
    return subprocess.Popen([binary, "serve", "--port", str(port), "--data", data, "--hooks-dir", hooks,
                             "--admin-token", "bench", "--log-level", "warning", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def connect(port, timeout=30):
    """A connection to the server on `port`, once its /health answers."""
    for _ in range(500):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            return conn
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"no server answered on port {port}")
