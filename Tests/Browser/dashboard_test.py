#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium.

Starts `moonbase serve` on a fresh folder with a loaded file, a failed file and an after-hook
that fails until it is retried, writes records through the API, then opens /_ in the browser,
gives the token and checks what the page shows: the files and the failed file's error, the
handlers' calls and errors, the dead deliveries, and that retry turns one into succeeded. Also
that a wrong token is refused and that the page fits a phone's width. Saves screenshots.

Any failure, including a missing browser, driver or selenium, exits 1: this test never skips.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BINARY = os.environ.get("MOONBASE_BIN", os.path.join(ROOT, ".build", "debug", "moonbase"))
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT", os.path.join(ROOT, ".build", "browser-test", "dashboard.png"))
TOKEN = "browser-test-token"
WAIT = 15  # seconds for anything the page or the server does

HOOKS = {
    "orders.lua": """
on_record_create("orders", function(e)
  if e.attempt == 1 then error("payment service down") end
end, {name = "charge"})

on_record_create("orders", function(e) log.info("order seen") end, {name = "audit"})

cron("nightly_report", "@daily", function(e) log.info("report") end)
""",
    # Server text with markup in it must show as text, never become markup.
    "webhooks.lua": """
error("set <webhook-url> in the config first")
""",
    "broken.lua": """
on_record_create("orders", function(e)
  return 1 +
end)
""",
}


def request(port, method, path, body=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


def eventually(what, condition, timeout=WAIT):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page may be between two refreshes
            last = error
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def start_server(folder):
    hooks = os.path.join(folder, "hooks")
    os.makedirs(hooks)
    for name, text in HOOKS.items():
        with open(os.path.join(hooks, name), "w") as file:
            file.write(text)
    log_path = os.path.join(folder, "serve.log")
    log = open(log_path, "w")
    process = subprocess.Popen([BINARY, "serve", "--port", "0", "--data", os.path.join(folder, "data"), "--hooks-dir", hooks,
                                "--admin-token", TOKEN, "--hook-workers", "1"], stdout=log, stderr=log)

    def ready():
        if process.poll() is not None:
            raise AssertionError("moonbase serve exited: " + open(log_path).read())
        for line in open(log_path):
            match = re.search(r"address=[^ ]*:(\d+)", line)
            if match and "moonbase ready" in line:
                return int(match.group(1))
        return None

    return process, eventually("the server to get ready", ready)


def browser(width, height):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def text_of(driver, css):
    return [element.text for element in driver.find_elements("css selector", css)]


def deliveries(driver):
    """The deliveries table as {id: row text}, read at once (a refresh replaces the rows)."""
    return driver.execute_script("""
        const rows = {};
        for (const row of document.querySelectorAll("#deliveries tbody tr[data-delivery]")) rows[row.dataset.delivery] = row.innerText;
        return rows;""")


def click_retry(driver, delivery):
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        driver.find_element("css selector", f'#deliveries tr[data-delivery="{delivery}"] button.retry').click()
        return True
    except StaleElementReferenceException:
        return False


def run(port, checks):
    from selenium.webdriver.support.ui import Select

    driver = browser(1280, 1100)
    try:
        # /_ redirects to /_/, which asks for the token.
        driver.get(f"http://127.0.0.1:{port}/_")
        checks.append(("/_ redirects to /_/", driver.current_url.endswith("/_/")))
        eventually("the token form", lambda: driver.find_element("id", "login").is_displayed())

        # A wrong token is refused and the form comes back with the server's reason.
        driver.find_element("id", "token").send_keys("not-the-token")
        driver.find_element("css selector", "#login button").click()
        refused = eventually("the refusal", lambda: driver.find_element("id", "login-error").is_displayed()
                             and driver.find_element("id", "login-error").text)
        checks.append(("a wrong token is refused", "wrong admin token" in refused))
        checks.append(("the wrong token is not kept", driver.execute_script("return sessionStorage.length") == 0))

        driver.find_element("id", "token").send_keys(TOKEN)
        driver.find_element("css selector", "#login button").click()
        eventually("the board", lambda: driver.find_element("id", "board").is_displayed())
        checks.append(("the token is kept for the tab", driver.execute_script("return sessionStorage.getItem('moonbase.adminToken')") == TOKEN))

        # Files, with the failed file's error.
        files = eventually("the files", lambda: len(text_of(driver, "#files tbody tr[data-file]")) == 3
                           and {row.get_attribute("data-file"): row.text for row in driver.find_elements("css selector", "#files tbody tr")})
        checks.append(("orders.lua is loaded", "loaded" in files.get("hooks/orders.lua", "")))
        checks.append(("broken.lua failed, with its error", "failed" in files.get("hooks/broken.lua", "")
                       and "broken.lua:" in files.get("hooks/broken.lua", "")))
        checks.append(("an error's markup shows as text", "set <webhook-url> in the config first" in files.get("hooks/webhooks.lua", "")
                       and not driver.find_elements("css selector", "webhook-url")))

        # Handlers with their counts (3 orders written), a latency figure and the last error.
        def handler(name, css):
            return driver.find_element("css selector", f'#handlers tr[data-handler="{name}"] td.{css}').text
        eventually("the audit handler's 3 calls", lambda: handler("audit", "calls") == "3")
        checks.append(("audit: 3 calls, 0 errors", handler("audit", "calls") == "3" and handler("audit", "errors") == "0"))
        checks.append(("charge: 3 calls, 3 errors", handler("charge", "calls") == "3" and handler("charge", "errors") == "3"))
        charge_row = driver.find_element("css selector", '#handlers tr[data-handler="charge"]').text
        checks.append(("charge shows its last error", "payment service down" in charge_row))
        checks.append(("a latency figure", re.search(r"\d ms", charge_row) is not None))

        # Deliveries, filtered to the failing handler and dead ones; then one is retried.
        Select(driver.find_element("id", "filter-hook")).select_by_value("charge")
        Select(driver.find_element("id", "filter-status")).select_by_value("dead")
        rows = eventually("three dead deliveries", lambda: (lambda r: len(r) == 3 and r)(deliveries(driver)))
        checks.append(("dead deliveries show their error", all("payment service down" in text for text in rows.values())))
        delivery = sorted(rows)[0]
        Select(driver.find_element("id", "filter-status")).select_by_value("")
        eventually("the filter to apply", lambda: len(deliveries(driver)) == 3 and not driver.find_elements(
            "css selector", "#deliveries tbody tr td.delivery-status .succeeded"))
        eventually("the retry button to be pressed", lambda: click_retry(driver, delivery))
        eventually("the retried delivery to succeed", lambda: "succeeded" in deliveries(driver).get(delivery, ""))
        checks.append(("retry turns the delivery to succeeded", "succeeded" in deliveries(driver)[delivery]))
        checks.append(("the API agrees", request(port, "GET", f"/api/v1/hooks/deliveries/{delivery}")[1]["status"] == "succeeded"))
        checks.append(("the others stay dead", sorted(text.split("\t")[4] for text in deliveries(driver).values()) == ["dead", "dead", "succeeded"]))
        checks.append(("the node is named", f"127.0.0.1:{port}" in driver.find_element("id", "node").text))
        node_row = eventually("the nodes table", lambda: driver.find_element("css selector", f'#nodes tr[data-node="127.0.0.1:{port}"]').text)
        checks.append(("the nodes table lists this node with its hooks digest", "(this node)" in node_row
                       and request(port, "GET", "/api/v1/nodes")[1]["items"][0]["hooks_digest"][:12] in node_row))

        # The cron, with its schedule, next and last run; its run (asked for by hand) is a delivery.
        cron_row = eventually("the cron", lambda: driver.find_element("css selector", '#crons tr[data-cron="nightly_report"]').text)
        checks.append(("the cron shows its schedule and runs", "@daily" in cron_row and "hooks/orders.lua" in cron_row
                       and re.search(r"\d{4}-\d\d-\d\d 00:00:00", cron_row) is not None))
        Select(driver.find_element("id", "filter-hook")).select_by_value("")
        rows = eventually("every delivery listed", lambda: (lambda r: len(r) == 7 and r)(deliveries(driver)))
        checks.append(("the cron run is listed", "nightly_report" in rows.get("cron-1", "") and "succeeded" in rows.get("cron-1", "")))
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        driver.set_window_size(1280, driver.execute_script("return document.documentElement.scrollHeight") + 120)
        driver.save_screenshot(SCREENSHOT)

        # A phone: the page is no wider than the screen (tables scroll inside their sections).
        driver.set_window_size(390, 844)
        time.sleep(0.3)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        checks.append(("fits a phone's width", overflow <= 0))
        driver.save_screenshot(SCREENSHOT.replace(".png", "-phone.png"))
    finally:
        driver.quit()


def main():
    checks = []
    folder = tempfile.mkdtemp(prefix="moonbase-browser-")
    process = None
    try:
        if not os.access(BINARY, os.X_OK):
            raise AssertionError(f"no moonbase binary at {BINARY}: build it first (swift build)")
        process, port = start_server(folder)
        request(port, "POST", "/api/v1/collections", {"name": "orders"})
        for n in range(3):
            request(port, "POST", "/api/v1/collections/orders/records", {"n": n})
        eventually("three dead deliveries in the API", lambda: len(request(
            port, "GET", "/api/v1/hooks/deliveries?status=dead&hook=charge")[1]) == 3)
        request(port, "POST", "/api/v1/hooks/cron/nightly_report/run")
        eventually("the cron run in the API", lambda: request(port, "GET", "/api/v1/hooks/deliveries/cron-1")[1]["status"] == "succeeded")
        run(port, checks)
    except Exception:
        traceback.print_exc()
        checks.append(("the test ran to its end", False))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(("ok     " if ok else "FAILED ") + name)
    print(f"screenshots: {SCREENSHOT}")
    print(f"browser: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
