{#- Integer cents to dollars, rounded to `scale` places. The cast keeps the arithmetic in
    decimals: dividing by a float literal would make sums such as 5.00 + 29.99 come out
    as 34.989999999999995 on some engines. -#}
{% macro cents_to_dollars(column_name, scale=2) %}round(cast({{ column_name }} as decimal(18, 2)) / 100, {{ scale }}){% endmacro %}
