-- Revenue per day, without cancelled orders.
select
    cast(ordered_at as date) as order_date,
    count(*) as orders,
    sum(amount) as revenue
from {{ ref('stg_orders') }}
where status <> 'cancelled'
group by cast(ordered_at as date)
