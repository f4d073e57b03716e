-- One row per order: amounts in dollars, the time as a timestamp.
select
    order_id,
    customer_id,
    cast(ordered_at as timestamp) as ordered_at,
    amount_cents / 100.0 as amount,
    status
from {{ ref('raw_orders') }}
