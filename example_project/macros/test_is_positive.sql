{#- A custom generic test, used like a built-in one in schema.yml: `- is_positive`.
    Failing rows: those where the column is zero or negative. -#}
{% test is_positive(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} <= 0
{% endtest %}
