select id, (select max(amount) from main.raw r2 where r2.id = r.id) as top,
  case when amount between 1 and 10 then 'low' when amount > 10 then 'high' else null end as band,
  coalesce(name, 'n/a') || '-' || cast(id as varchar) as label
from main.raw r
where exists (select 1 from main.stg s where s.id = r.id) and id in (select id from main.stg)
