select name, count(*) as n, count(distinct id) as ids, avg(amount) as mean,
  min(dt) as first_day, max(dt)::date as last_day, sum(case when amount > 1 then 1 else 0 end) as big
from main.raw
group by name
having count(*) > 1
order by n desc
limit 10 offset 1
