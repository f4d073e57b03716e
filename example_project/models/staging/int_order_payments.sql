{{ config(materialized='ephemeral') }}

-- Payments rolled up to one row per order. Ephemeral: inlined as a CTE wherever it
-- is referenced, never built in the warehouse.
select
    order_id,
    count(*) as payment_count,
    sum(amount) as amount_paid,
    coalesce(sum(case when payment_method in ('coupon', 'gift_card') then amount end), 0) as voucher_amount,
    max(paid_at) as last_paid_at
from {{ ref('stg_payments') }}
group by order_id
