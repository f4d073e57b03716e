{# expression_is_true: model, expression, column_name (optional, prefixed to the expression). Failing rows: rows where it is not true. #}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({% if column_name is not none %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}
