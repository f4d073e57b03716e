{# row_count: model, min_value, max_value (also spelled min, max). Failing rows: one row holding the count when it is out of range. #}
{% test row_count(model, min_value=none, max_value=none, min=none, max=none) %}
{%- set low = min_value if min_value is not none else min -%}
{%- set high = max_value if max_value is not none else max -%}
select row_count
from (select count(*) as row_count from {{ model }}) counted
where 1 = 2
{%- if low is not none %}
    or row_count < {{ low }}
{%- endif %}
{%- if high is not none %}
    or row_count > {{ high }}
{%- endif %}
{% endtest %}
