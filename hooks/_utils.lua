-- Shared helpers: files starting with "_" are modules, loaded with require("_utils"), never as hooks.
local M = {}

--- "Hello, World!" -> "hello-world"
function M.slugify(text)
  local slug = string.lower(tostring(text)):gsub("[^%w]+", "-"):gsub("^-+", ""):gsub("-+$", "")
  return slug
end

--- Trims white space at both ends.
function M.trim(text)
  return (tostring(text):gsub("^%s+", ""):gsub("%s+$", ""))
end

return M
