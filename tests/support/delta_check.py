"""Reads Delta tables that etlm wrote with two other readers, DuckDB's delta extension and
the `deltalake` package, and compares their rows with what `etlm show` printed.

    delta_check.py TABLE ETLM_ROWS.jsonl

TABLE is a table's folder, or its `s3://` URL: then the `AWS_*` variables name the server
and its credentials, and only `deltalake` reads it (`duckdb_version` is null).

Prints one JSON object: the table's version as each reader sees it, its row count, and
`mismatch`, the first reader whose rows differ (null when both agree with etlm). Values
are compared by meaning: numbers as floats, times as ISO text without a UTC suffix, a
missing key as NULL. Run it with a Python that has `deltalake`, `pyarrow`, `duckdb` and
`duckdb-ext-delta` (.ci/run makes one: ETLM_DELTA_PYTHON).
"""

import datetime
import decimal
import glob
import json
import os
import sys

import deltalake
import duckdb


def canonical(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return round(float(value), 9)
    if isinstance(value, (datetime.datetime, datetime.date)):
        value = value.isoformat()
    if isinstance(value, str):
        for suffix in ("Z", "+00:00"):
            if value.endswith(suffix):
                value = value[: -len(suffix)]
        return value.replace(" ", "T") if len(value) > 10 and value[10] == " " else value
    return str(value)


def rows(dicts, columns):
    out = [tuple(json.dumps(canonical(d.get(c)), sort_keys=True) for c in columns) for d in dicts]
    return sorted(out)


def duckdb_connection():
    import duckdb_ext  # noqa: F401  (the package that carries the extension)

    extensions = os.path.join(list(duckdb_ext.__path__)[0], "extensions", f"v{duckdb.__version__}")
    pattern = os.path.join(extensions, "*", "delta.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{glob.glob(pattern)[0]}'")
    return con


def main():
    table, etlm_file = sys.argv[1], sys.argv[2]
    with open(etlm_file) as f:
        ours = [json.loads(line) for line in f if line.strip()]

    s3 = table.startswith("s3://")
    options = None
    if s3:
        keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
        options = {key: os.environ[key] for key in keys if key in os.environ}
        options["AWS_ALLOW_HTTP"] = "true"
    dt = deltalake.DeltaTable(table, storage_options=options)
    columns = [field.name for field in dt.schema().fields]
    theirs = {"deltalake": dt.to_pyarrow_table().to_pylist()}
    if s3:
        report(dt, None, ours, theirs, columns)
        # deltalake's S3 client can abort the interpreter's teardown (C++ terminate):
        # the report is out, so leave without one.
        sys.stdout.flush()
        os._exit(0)

    con = duckdb_connection()
    cursor = con.execute(f"select * from delta_scan('{table}')")
    names = [d[0] for d in cursor.description]
    theirs["duckdb"] = [dict(zip(names, r)) for r in cursor.fetchall()]
    # DuckDB reads a table at a version; the latest is the one after which none reads.
    def reads_at(version):
        try:
            con.execute(f"attach '{table}' as at_{version} (type delta, version {version})")
            con.execute(f"select count(*) from at_{version}").fetchall()
            return True
        except duckdb.Error:
            return False

    latest = dt.version()
    duckdb_version = latest if reads_at(latest) and not reads_at(latest + 1) else None
    report(dt, duckdb_version, ours, theirs, columns)


def report(dt, duckdb_version, ours, theirs, columns):
    expected = rows(ours, columns)
    mismatch = next((name for name, got in theirs.items() if rows(got, columns) != expected), None)
    print(
        json.dumps(
            {
                "deltalake_version": dt.version(),
                "duckdb_version": duckdb_version,
                "rows": len(ours),
                "mismatch": mismatch,
                "ours": expected[:3] if mismatch else None,
                "theirs": rows(theirs[mismatch], columns)[:3] if mismatch else None,
            }
        )
    )


main()
