-- Every order, updated in place: a run merges only orders newer than the table's
-- newest (`etlm build --full-refresh` rebuilds it from scratch).
{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='merge') }}

select order_id, customer_id, ordered_at, amount, status
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where ordered_at > (select max(ordered_at) from {{ this }})
{% endif %}
