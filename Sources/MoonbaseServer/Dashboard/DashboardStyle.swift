/// The dashboard's style sheet: system fonts, no external resource; tables scroll sideways and
/// filters wrap on a phone.
enum DashboardStyle {
    static let css = #"""
    :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f7f8fa; --ok: #067647; --bad: #b42318; --warn: #b54708; --accent: #3e4bd1; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
    header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1rem; padding: .8rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
    header h1 { margin: 0; font-size: 1.2rem; }
    header button { margin-left: auto; }
    main { max-width: 1200px; margin: 0 auto; padding: 1rem; }
    section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; margin-bottom: 1rem; }
    h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
    .muted { color: var(--muted); font-size: .9rem; }
    .error { color: var(--bad); white-space: pre-wrap; word-break: break-word; }
    .scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
    table { border-collapse: collapse; width: 100%; font-size: .9rem; }
    th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { color: var(--muted); font-weight: 600; white-space: nowrap; }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
    td.message { min-width: 12rem; max-width: 28rem; word-break: break-word; }
    code, td.key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
    .status { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: #eef0f3; }
    .status.loaded, .status.succeeded { color: var(--ok); background: #ecfdf3; }
    .status.failed, .status.dead { color: var(--bad); background: #fef3f2; }
    .status.pending, .status.running { color: var(--warn); background: #fffaeb; }
    .filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; margin-bottom: .6rem; }
    .filters label { display: flex; align-items: center; gap: .4rem; font-size: .9rem; }
    input, select, button { font: inherit; padding: .3rem .5rem; border: 1px solid #cfd4dc; border-radius: 6px; background: #fff; }
    button { cursor: pointer; color: #fff; background: var(--accent); border-color: var(--accent); }
    button:disabled { opacity: .5; cursor: default; }
    #login { max-width: 28rem; margin: 2rem auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem; }
    #login input { width: 100%; margin-bottom: .6rem; }
    @media (max-width: 640px) {
      body { font-size: 14px; }
      main { padding: .5rem; }
      section { padding: .6rem; }
      /* Tables become cards: one row a card, each cell labelled by its column. */
      table, tbody, tr, td { display: block; width: 100%; }
      thead { display: none; }
      tr { padding: .4rem 0; border-bottom: 1px solid var(--line); }
      td { display: flex; gap: .6rem; border: none; padding: .12rem 0; }
      td::before { content: attr(data-label); flex: 0 0 6rem; color: var(--muted); font: 600 .8rem system-ui, sans-serif; }
      td:empty, td[data-label=""]:not([colspan]):empty { display: none; }
      td.num { text-align: left; }
      td.message { min-width: 0; max-width: none; }
    }
    """#
}
