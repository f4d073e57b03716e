"""Checks OpenLineage events with the official client's classes (openlineage-python).

Reads one JSON event per line from the file named on the command line, builds each
into `openlineage.client.event_v2.RunEvent` and its facet classes strictly (an unknown
key, a missing required field, a bad runId or eventTime, or a `_schemaURL` other than
the class's own is an error), serializes it back with the client's `Serde` and
requires the same JSON (the client may add only empty defaults). Prints the number of events checked; exits 1 on the first
event that does not pass, saying why.
"""

import enum
import json
import sys
import typing

import attr
from openlineage.client import event_v2
from openlineage.client.generated import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    datasource_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.serde import Serde

FACETS = {
    "run": {
        "parent": parent_run.ParentRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    },
    "job": {"jobType": job_type_job.JobTypeJobFacet, "sql": sql_job.SQLJobFacet},
    "dataset": {
        "schema": schema_dataset.SchemaDatasetFacet,
        "dataSource": datasource_dataset.DatasourceDatasetFacet,
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    },
    "inputFacets": {"dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet},
    "outputFacets": {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet},
}


def unwrap(hint):
    """`X | None` -> X."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    return hint


def convert(hint, value, where, facets=None):
    hint = unwrap(hint)
    origin = typing.get_origin(hint)
    if facets is not None:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: facets must be an object")
        out = {}
        for key, facet in value.items():
            if key not in facets:
                raise ValueError(f"{where}: unknown facet `{key}`")
            out[key] = build(facets[key], facet, f"{where}.{key}")
        return out
    if attr.has(hint) if isinstance(hint, type) else False:
        return build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        return [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        return {k: convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is str and not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    return value


def build(cls, data, where):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attr.fields(cls)}
    kwargs, fixed = {}, {}
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            raise ValueError(f"{where}: `{key}` is not a field of {cls.__name__}")
        if not field.init:
            fixed[key] = value
            continue
        context = None
        if key == "facets":
            context = FACETS["run" if cls is event_v2.Run else "job" if cls is event_v2.Job else "dataset"]
        elif key in ("inputFacets", "outputFacets"):
            context = FACETS[key]
        kwargs[field.alias] = convert(hints[key], value, f"{where}.{key}", context)
    obj = cls(**kwargs)
    for key, value in fixed.items():
        if getattr(obj, key) != value:
            raise ValueError(f"{where}: `{key}` is {value!r}, the client's {cls.__name__} has {getattr(obj, key)!r}")
    return obj


def same(raw, back, where="event"):
    """`back` says what `raw` says, plus at most empty defaults ([] or {})."""
    if isinstance(raw, dict) and isinstance(back, dict):
        for key in set(raw) | set(back):
            if key not in raw:
                if back[key] not in ([], {}):
                    return f"{where}.{key}: the client added {back[key]!r}"
            elif key not in back:
                return f"{where}.{key}: the client dropped it"
            else:
                problem = same(raw[key], back[key], f"{where}.{key}")
                if problem:
                    return problem
        return None
    if isinstance(raw, list) and isinstance(back, list):
        if len(raw) != len(back):
            return f"{where}: {len(raw)} items became {len(back)}"
        for i, (r, b) in enumerate(zip(raw, back)):
            problem = same(r, b, f"{where}[{i}]")
            if problem:
                return problem
        return None
    return None if raw == back else f"{where}: {raw!r} became {back!r}"


def main(path):
    count = 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            raw = json.loads(line)
            try:
                event = build(event_v2.RunEvent, raw, f"event {number}")
            except Exception as e:  # noqa: BLE001
                print(f"event {number} does not parse: {e}\n{line}", file=sys.stderr)
                return 1
            problem = same(Serde.remove_nulls_and_enums(raw), Serde.to_dict(event), f"event {number}")
            if problem:
                print(f"event {number} does not round-trip: {problem}\n{line}", file=sys.stderr)
                return 1
            count += 1
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
