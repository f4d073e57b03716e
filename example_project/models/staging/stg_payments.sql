select
    payment_id,
    order_id,
    payment_method,
    {{ cents_to_dollars('amount') }} as amount,
    cast(paid_at as timestamp) as paid_at
from {{ ref('payments') }}
