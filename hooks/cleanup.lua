-- A nightly cleanup: every day at 03:00 UTC, deletes the records of a collection that are older
-- than a number of days, through `records` (so each delete runs the collection's hooks like any
-- other). The run is recorded in the deliveries log, retried twice if it fails, and a night the
-- server was down is caught up once at the next start. Run it by hand with
-- `moonbase hooks run cleanup_sessions`.
--
-- CLEANUP_COLLECTION (default "sessions") and CLEANUP_DAYS (default 30) in the server's
-- environment say what to clean.
-- Collections: sessions (without it the run logs a warning and does nothing).
local BATCH = 100      -- records read per page
local MAX_DELETES = 200 -- per run, to stay well within the budgets; the rest goes the next night

-- `scheduled_at` minus `days`, as records' `created` are written (both ISO-8601 UTC, which sort
-- as text). os.time and os.date("*t") read and write the same fields, so the day arithmetic
-- round-trips whatever the server's time zone.
local function cutoff(scheduled_at, days)
  local y, m, d, hh, mm, ss = scheduled_at:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  local t = os.time{year = tonumber(y), month = tonumber(m), day = tonumber(d) - days,
                    hour = tonumber(hh), min = tonumber(mm), sec = tonumber(ss)}
  return os.date("%Y-%m-%dT%H:%M:%S.000Z", t)
end

cron("cleanup_sessions", "0 3 * * *", function(event)
  local collection = os.getenv("CLEANUP_COLLECTION") or "sessions"
  local days = tonumber(os.getenv("CLEANUP_DAYS") or "") or 30
  local before = cutoff(event.scheduled_at, days)
  local deleted = 0
  while deleted < MAX_DELETES do
    local page, err = records.list(collection, {sort = "created", per_page = BATCH})
    if not page then
      log.warn("cleanup skipped", {collection = collection, reason = err})
      return
    end
    local old = 0
    for _, record in ipairs(page.items) do
      if record.created >= before or deleted >= MAX_DELETES then break end
      local ok, delete_err = records.delete(collection, record.id)
      -- A record deleted meanwhile by someone else is fine; anything else fails the run (retried).
      if not ok and not tostring(delete_err):find("not found") then error("cleanup: " .. tostring(delete_err)) end
      deleted = deleted + 1
      old = old + 1
    end
    if old < BATCH then break end -- the oldest left is recent enough
  end
  log.info("cleanup done", {collection = collection, deleted = deleted, before = before, run = event.id})
end, {retries = 2})
