-- A signed webhook to a fulfillment service for every new order (Standard Webhooks: the
-- receiver checks `webhook-signature` with the shared secret). Configure it in the server's
-- environment: FULFILLMENT_URL and FULFILLMENT_SECRET. Without a URL the hook only logs.
-- A failed send raises, so the delivery is retried (options.retries) and ends in the
-- deliveries log; `webhook-id` is the event's id on every attempt, so the receiver can drop
-- a duplicate.
-- Collections: orders.
on_record_create("orders", function(event)
  local url = os.getenv("FULFILLMENT_URL")
  if not url or url == "" then
    log.info("FULFILLMENT_URL is not set: order not sent", {order = event.record_id})
    return
  end
  local secret = os.getenv("FULFILLMENT_SECRET") or ""
  if secret == "" then error("FULFILLMENT_SECRET is not set: cannot sign the webhook") end
  local response, err = webhook.send(url, {type = event.type, order = event.data}, {secret = secret, timeout_ms = 5000})
  if not response then error("fulfillment webhook failed: " .. err) end
  if response.status >= 300 then error("fulfillment webhook answered " .. response.status) end
  log.info("order sent to fulfillment", {order = event.record_id, status = response.status})
end, {name = "send_order_to_fulfillment", retries = 5})
