select
    order_id,
    customer_id,
    product_id,
    cast(quantity as integer) as quantity,
    status,
    cast(order_date as date) as order_date
from {{ ref('orders') }}
