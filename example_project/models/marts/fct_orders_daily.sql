{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by='dt',
        on_schema_change='append_new_columns'
    )
}}

-- Orders and revenue per day. On an incremental run only the latest day already in
-- the table and the days after it are recomputed; insert_overwrite replaces exactly
-- those `dt` partitions.
select
    cast(order_date as date) as dt,
    count(*) as order_count,
    count(distinct customer_id) as customer_count,
    sum(quantity) as units_sold,
    coalesce(sum(case when status <> 'returned' then gross_amount end), 0) as revenue,
    coalesce(sum(case when status = 'returned' then gross_amount end), 0) as returned_amount
from {{ ref('fct_orders') }}
{% if is_incremental() -%}
where order_date >= (select max(dt) from {{ this }})
{% endif -%}
group by cast(order_date as date)
