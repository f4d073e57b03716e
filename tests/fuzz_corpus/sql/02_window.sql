select id, dt,
  sum(amount) over (partition by name order by dt rows between unbounded preceding and current row) as running,
  row_number() over (order by amount desc) as rn,
  lag(amount, 1) over w as prev
from main.raw
window w as (partition by id order by dt)
