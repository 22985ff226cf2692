-- A notification once an order is paid: `when` and `changed` say which writes the handler
-- wants, and the server decides it before any Lua runs. An update that leaves the order
-- unpaid, or that touches a paid order without changing its status, never calls the handler
-- and stores no event for it.
--
-- Set ORDER_PAID_URL in the server's environment to have each payment POSTed there as JSON
-- (for a mailer, a chat channel…); without it the hook only logs.
-- Collections: orders.
on_record_update("orders", function(event)
  local order = event.data
  log.info("order paid", {order = event.record_id, total = order.total, was = event.old_data.status})
  local url = os.getenv("ORDER_PAID_URL")
  if not url or url == "" then return end
  local response, err = http.request{method = "POST", url = url, timeout_ms = 5000,
                                     json = {order = event.record_id, total = order.total, email = order.email}}
  if not response then error("order-paid notification failed: " .. err) end
  if response.status >= 300 then error("order-paid notification answered " .. response.status) end
end, {name = "notify_order_paid", when = {status = "paid"}, changed = {"status"}, retries = 3})
