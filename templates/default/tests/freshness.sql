{# freshness: model, column_name (a date or time the rows were loaded or happened at), max_age (an interval, default '1 day'). Failing rows: one row holding the newest value, when it is older than max_age or the model is empty. #}
{% test freshness(model, column_name, max_age='1 day') %}
select max({{ column_name }}) as latest
from {{ model }}
having max({{ column_name }}) is null
    or max({{ column_name }}) < now() - interval '{{ max_age }}'
{% endtest %}
