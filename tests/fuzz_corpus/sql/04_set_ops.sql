select id, name from main.raw
union all
select id, name from main.stg
except
select id, name from main.raw where dt < date '2024-01-02'
