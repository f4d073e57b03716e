-- One row per order, with its product and what has been paid so far.
with orders as (
    select * from {{ ref('stg_orders') }}
),

products as (
    select * from {{ ref('stg_products') }}
),

order_payments as (
    select * from {{ ref('int_order_payments') }}
),

joined as (
    select
        orders.order_id,
        orders.customer_id,
        orders.product_id,
        products.product_name,
        products.category,
        orders.order_date,
        orders.status,
        orders.quantity,
        products.unit_price,
        orders.quantity * products.unit_price as gross_amount,
        coalesce(order_payments.payment_count, 0) as payment_count,
        coalesce(order_payments.amount_paid, 0) as amount_paid,
        coalesce(order_payments.voucher_amount, 0) as voucher_amount,
        order_payments.last_paid_at
    from orders
    inner join products
        on orders.product_id = products.product_id
    left join order_payments
        on orders.order_id = order_payments.order_id
)

select
    order_id,
    customer_id,
    product_id,
    product_name,
    category,
    order_date,
    status,
    quantity,
    unit_price,
    gross_amount,
    payment_count,
    amount_paid,
    voucher_amount,
    last_paid_at,
    case when amount_paid >= gross_amount then 'paid' else 'unpaid' end as payment_status
from joined
where gross_amount >= {{ var('min_order_amount') }}
