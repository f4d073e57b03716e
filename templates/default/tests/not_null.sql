{# not_null: model, column_name. Failing rows: every row where the column is null. #}
{% test not_null(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{% endtest %}
