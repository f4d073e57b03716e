{% set cols = ['id', 'name', 'amount'] %}
select
{% for c in cols %}
    {{ c }}{% if not loop.last %},{% endif %}
{% endfor %}
from {{ ref('stg') }}
where amount > {{ var('min', 0) }}
