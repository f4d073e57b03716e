{# not_null: model, column_name. Failing rows: every row where the column is null (the
   column, or whole rows when they are stored, as in dbt). #}
{% test not_null(model, column_name) %}
select {{ '*' if should_store_failures() else column_name }}
from {{ model }}
where {{ column_name }} is null
{% endtest %}
