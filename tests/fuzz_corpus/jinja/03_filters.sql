{%- set d = {'a': 1, 'b': [1, 2, 3]} -%}
select {{ d['a'] | int + 1 }} as one,
  '{{ d.b | join("-") | upper | replace("-", "_") }}' as joined,
  '{{ "x,y".split(",") | length }}' as n,
  {{ d.get('c', 7) }} as c,
  '{{ run_started_at.strftime("%Y") }}' as year
from {{ source('shop', 'raw') }}
