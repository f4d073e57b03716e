{% set rel = adapter.get_relation(database=target.database, schema=target.schema, identifier='stg') %}
{% set cols = adapter.get_columns_in_relation(ref('stg')) %}
select {% for col in cols %}{{ adapter.quote(col.name) }}, {% endfor %} 1 as one
from {{ ref('stg') }}
{{ log('hello', info=True) }}
{% if execute %}{% set q = run_query('select 1 as a') %}{% endif %}
