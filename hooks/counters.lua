-- Counts posts per author in a `stats` collection ({author, posts}). The handler recounts
-- rather than adds one, so a redelivered event cannot count twice, and `order = "collection"`
-- runs it for one post event after another, in commit order, so two new posts by the same
-- author never race to create the author's stats record.
-- Collections: posts, stats (without stats it logs a warning and does nothing).
local function recount(author)
  if type(author) ~= "string" then return end
  local existing, missing = records.list("stats", {filter = {author = author}, per_page = 1})
  if not existing then
    log.warn("counters: create the stats collection to count posts per author", {error = missing})
    return
  end
  local stats = existing.items[1]
  local posts = assert(records.list("posts", {filter = {author = author}, per_page = 1})).total_items
  if stats then
    assert(records.update("stats", stats.id, {posts = posts}))
  else
    assert(records.create("stats", {author = author, posts = posts}))
  end
end

---@param event RecordEvent
function count_posts_per_author(event)
  if event.collection_name ~= "posts" then return end
  recount(event.data.author)
  if event.old_data and event.old_data.author ~= event.data.author then recount(event.old_data.author) end
end

on_any_event(count_posts_per_author, {order = "collection", retries = 3})
