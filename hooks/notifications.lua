-- After-hooks on named collections, as FastCMS users write them. They run after the write has
-- committed, in the background; an error here is logged and never affects the request.
-- Collections: posts, users, comments.
local sent = 0  -- a top-level local the handlers close over (per Lua state)

---@param event RecordEvent
function on_new_post(event)
  sent = sent + 1
  log.info("new post", {title = event.data.title, id = event.record_id, notified = sent})
end

---@param event RecordEvent
function on_user_update(event)
  local before, after = event.old_data.email, event.data.email
  if before ~= after then
    log.info("user changed e-mail", {user = event.record_id, from = before, to = after})
  end
end

on_record_create("posts", on_new_post)
on_record_update("users", on_user_update)
on_record_delete({"posts", "comments"}, function(event)
  log.warn("record deleted", {collection = event.collection_name, id = event.record_id})
end, {name = "deletion_notice"})
