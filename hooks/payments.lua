-- A public endpoint for a payment provider's webhook: POST /webhooks/payments. It checks the
-- Standard Webhooks signature (what `webhook.send` produces, and Svix and many providers
-- send) with the shared secret in PAYMENTS_WEBHOOK_SECRET, then marks the order paid. That
-- update is what order_paid.lua's `when`/`changed` handler is waiting for.
--
-- The payload: {"type": "payment.succeeded", "data": {"order_id": "..."}}.
-- Collections: orders.
local TOLERANCE = 5 * 60 -- seconds between the provider's timestamp and ours

-- The key behind a "whsec_<base64>" secret (any other secret is its own bytes).
local function signing_key(secret)
  if secret:sub(1, 6) == "whsec_" then return crypto.base64_decode(secret:sub(7)) end
  return secret
end

-- Compares in time that depends only on the lengths, so a forger learns nothing from timing.
local function same(a, b)
  if #a ~= #b then return false end
  local difference = 0
  for i = 1, #a do difference = difference | (a:byte(i) ~ b:byte(i)) end
  return difference == 0
end

-- Whether `req` carries a valid, recent signature of its exact body.
---@param req RouteRequest
---@param secret string
local function verified(req, secret)
  local id, timestamp = req.headers["webhook-id"], tonumber(req.headers["webhook-timestamp"])
  local signatures = req.headers["webhook-signature"]
  if not id or not timestamp or not signatures then return false, "missing webhook headers" end
  if math.abs(os.time() - timestamp) > TOLERANCE then return false, "timestamp too old or too new" end
  local key = signing_key(secret)
  if not key then return false, "PAYMENTS_WEBHOOK_SECRET is not a valid whsec_ secret" end
  local expected = crypto.hmac_sha256(key, id .. "." .. req.headers["webhook-timestamp"] .. "." .. req.body, "base64")
  for signature in signatures:gmatch("v1,([^%s]+)") do -- several when the provider rotates its secret
    if same(signature, expected) then return true end
  end
  return false, "no valid signature"
end

route("POST", "/webhooks/payments", function(req)
  local secret = os.getenv("PAYMENTS_WEBHOOK_SECRET")
  if not secret or secret == "" then reject("payments webhook is not configured", 503) end
  local ok, why = verified(req, secret)
  if not ok then
    log.warn("payments webhook refused", {reason = why, id = req.headers["webhook-id"]})
    reject("invalid signature", 401)
  end
  local payload = req.json
  if type(payload) ~= "table" or payload.type ~= "payment.succeeded" then
    return {ignored = true} -- other event types are acknowledged, so the provider stops sending them
  end
  local order_id = payload.data and payload.data.order_id
  if type(order_id) ~= "string" then reject("data.order_id is required") end
  local order, err = records.update("orders", order_id, {status = "paid", paid_at = os.date("!%Y-%m-%dT%H:%M:%SZ")})
  if not order then reject("cannot mark order " .. order_id .. " paid: " .. err) end
  log.info("payment received", {order = order.id, webhook = req.headers["webhook-id"]})
  return {received = true}
end, {name = "receive_payment", public = true})
