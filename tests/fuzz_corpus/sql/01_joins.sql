with s as (select id, name, amount from main.stg where amount > 0),
r as (select id, sum(amount) as total from main.raw group by id)
select s.id, s.name, r.total, s.amount / nullif(r.total, 0) as share
from s left join r on s.id = r.id
order by 1
