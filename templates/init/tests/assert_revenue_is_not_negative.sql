-- A singular test: the rows it returns are failures.
select order_date, revenue
from {{ ref('daily_revenue') }}
where revenue < 0
