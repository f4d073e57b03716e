-- One row per customer, with their order history summed up. Returned orders count
-- as orders but not towards lifetime value.
with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

ranked_orders as (
    select
        customer_id,
        order_id,
        order_date,
        category,
        status,
        amount_paid,
        row_number() over (partition by customer_id order by order_date, order_id) as order_sequence
    from orders
),

customer_orders as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as most_recent_order_date,
        count(*) as number_of_orders,
        coalesce(sum(case when status <> 'returned' then amount_paid end), 0) as lifetime_value
    from ranked_orders
    group by customer_id
),

first_orders as (
    select
        customer_id,
        category as first_order_category
    from ranked_orders
    where order_sequence = 1
)

select
    customers.customer_id,
    customers.first_name,
    customers.last_name,
    customers.email,
    customers.country_code,
    customers.signup_date,
    customer_orders.first_order_date,
    customer_orders.most_recent_order_date,
    first_orders.first_order_category,
    coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
    coalesce(customer_orders.lifetime_value, 0) as lifetime_value
from customers
left join customer_orders
    on customers.customer_id = customer_orders.customer_id
left join first_orders
    on customers.customer_id = first_orders.customer_id
