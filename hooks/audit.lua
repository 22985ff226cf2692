-- One after-hook for every event of every collection: an audit line per write.
-- Collections: any.
---@param event RecordEvent
function audit(event)
  log.info("audit", {
    event = event.type,
    collection = event.collection_name,
    record = event.record_id,
    at = event.timestamp,
    event_id = event.id,
  })
end

on_any_event(audit)
