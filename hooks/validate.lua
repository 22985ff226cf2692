-- A before-hook: refuse a post without a title, fill in a slug when the client sent none.
-- Collections: posts.
local utils = require("_utils")

---@param event RecordEvent
local function check_post(event)
  local title = event.data.title
  if type(title) ~= "string" or utils.trim(title) == "" then
    reject("a post needs a title")            -- 422 {"error": "a post needs a title"}; nothing is stored
  end
  event.data.title = utils.trim(title)
  if event.data.slug == nil or event.data.slug == json.null then
    event.data.slug = utils.slugify(title)   -- the changed data is what gets stored
  end
end

before_record_create("posts", check_post, {name = "require_title_and_slug"})
before_record_update("posts", check_post, {name = "keep_title_on_update"})
