-- Keeps a `search_index` collection in step with `products`: one entry per product with its
-- lowercased searchable text. One handler takes every product event, so create, update and
-- delete of one product reach it in commit order, never overlapping. Each event upserts or
-- deletes by product id, so a redelivered event does no harm.
-- Collections: products, search_index (without search_index it logs a warning and does nothing).
local searchable = {"name", "description", "brand"}

-- The index entry of a product; false when the index collection does not exist.
local function entry_for(product_id)
  local page, missing = records.list("search_index", {filter = {product_id = product_id}, per_page = 1})
  if not page then
    log.warn("search: create the search_index collection to index products", {error = missing})
    return false
  end
  return page.items[1]
end

local function text_of(product)
  local parts = {}
  for _, field in ipairs(searchable) do
    if type(product[field]) == "string" then parts[#parts + 1] = string.lower(product[field]) end
  end
  return table.concat(parts, " ")
end

---@param event RecordEvent
function sync_search_index(event)
  if event.collection_name ~= "products" then return end
  local entry = entry_for(event.record_id)
  if entry == false then return end
  if event.type == "record.deleted" then
    if entry then assert(records.delete("search_index", entry.id)) end
    return
  end
  local fields = {product_id = event.record_id, text = text_of(event.data), price = event.data.price}
  if entry then
    assert(records.update("search_index", entry.id, fields))
  else
    assert(records.create("search_index", fields))
  end
end

on_any_event(sync_search_index, {retries = 3})
