-- Payments must match what was ordered: never less than nothing, never more than the
-- order is worth, and paid in full once the order has left the `placed` state.
-- Returns the offending orders; no rows means the test passes.
select
    order_id,
    status,
    gross_amount,
    amount_paid
from {{ ref('fct_orders') }}
where amount_paid < 0
   or amount_paid > gross_amount
   or (status <> 'placed' and amount_paid < gross_amount)
