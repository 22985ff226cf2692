/// The dashboard's page (`GET /_/`): the frame the script fills in. It holds no data and needs no
/// token; everything it shows comes from the REST API with the token the visitor gives.
enum DashboardPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Moonbase</title>
    <link rel="stylesheet" href="dashboard.css">
    <script src="dashboard.js" defer></script>
    </head>
    <body>
    <header>
      <h1>Moonbase</h1>
      <span id="node" class="muted"></span>
      <span id="updated" class="muted"></span>
      <button id="sign-out" type="button" hidden>Forget token</button>
    </header>
    <main>
      <form id="login" hidden>
        <h2>Admin token</h2>
        <p class="muted">The token <code>serve</code> was given (<code>--admin-token</code>) or logged when it generated one.
        It is kept for this tab only.</p>
        <p id="login-error" class="error" hidden></p>
        <input id="token" type="password" autocomplete="current-password" placeholder="admin token" required>
        <button type="submit">Open</button>
      </form>
      <div id="board" hidden>
        <p id="problem" class="error" hidden></p>
        <section>
          <h2>Hook files</h2>
          <div class="scroll"><table id="files">
            <thead><tr><th>File</th><th>Status</th><th>Handlers</th><th>Error</th></tr></thead><tbody></tbody>
          </table></div>
        </section>
        <section>
          <h2>Handlers</h2>
          <div class="scroll"><table id="handlers">
            <thead><tr><th>Handler</th><th>File</th><th>Event</th><th>Collection</th><th class="num">Calls</th><th class="num">Errors</th><th class="num">Mean</th><th>Last error</th></tr></thead><tbody></tbody>
          </table></div>
        </section>
        <section>
          <h2>Deliveries</h2>
          <form id="filters" class="filters">
            <label>Status <select id="filter-status">
              <option value="">any</option><option value="pending">pending</option><option value="running">running</option><option value="succeeded">succeeded</option><option value="failed">failed</option><option value="dead">dead</option>
            </select></label>
            <label>Handler <select id="filter-hook"><option value="">any</option></select></label>
            <label>Collection <input id="filter-collection" type="text" placeholder="any" autocapitalize="off"></label>
          </form>
          <div class="scroll"><table id="deliveries">
            <thead><tr><th class="num">Id</th><th>Handler</th><th>Collection</th><th>Record</th><th>Status</th><th class="num">Attempts</th><th>Last error</th><th>Updated</th><th></th></tr></thead><tbody></tbody>
          </table></div>
        </section>
        <section>
          <h2>Cron schedules</h2>
          <div class="scroll"><table id="crons">
            <thead><tr><th>Cron</th><th>File</th><th>Schedule</th><th>Next run</th><th>Last run</th><th class="num">Calls</th><th class="num">Errors</th><th>Last error</th></tr></thead><tbody></tbody>
          </table></div>
        </section>
        <section>
          <h2>Nodes</h2>
          <div class="scroll"><table id="nodes">
            <thead><tr><th>Node</th><th>Address</th><th>Version</th><th>Started</th><th>Heartbeat</th><th>Hooks</th></tr></thead><tbody></tbody>
          </table></div>
        </section>
      </div>
    </main>
    </body>
    </html>
    """#
}
