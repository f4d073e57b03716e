//! OpenLineage RunEvents (spec 2-0-2) for the nodes of a compiled project, as JSON:
//! jobs, datasets and the facets etlm knows (`schema`, `dataSource`, `columnLineage`,
//! `outputStatistics`, `dataQualityAssertions`, `sql`, `jobType`, `errorMessage`,
//! `parent`, `processing_engine`). Each facet's `_schemaURL` is the version the official
//! Python client's classes carry; the tests parse every event with those classes.

use serde_json::{Map, Value as Json, json};

use crate::compile::CompiledProject;
use crate::engine::DatasetNames;
use crate::graph::ResourceType;
use crate::history::NodeResult;
use crate::lineage::{EdgeKind, Role};
use crate::node::Node;
use crate::relation::Relation;

/// The `producer` of every event and facet.
pub const PRODUCER: &str = concat!("https://github.com/etlm/etlm/tree/v", env!("CARGO_PKG_VERSION"));
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const FACETS: &str = "https://openlineage.io/spec/facets/";

/// A run's state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
    Abort,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Complete => "COMPLETE",
            EventType::Fail => "FAIL",
            EventType::Abort => "ABORT",
        }
    }
}

/// A job and one of its runs.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub namespace: String,
    pub name: String,
    pub run_id: String,
}

/// What every event of one invocation shares.
pub struct Context<'a> {
    pub compiled: &'a CompiledProject,
    pub names: &'a DatasetNames,
    /// The invocation's own job and run, which every node's run names as its parent.
    pub parent: &'a JobRun,
}

/// `{"_producer": ..., "_schemaURL": ...}` plus the facet's fields.
fn facet(schema: &str, fields: Json) -> Json {
    let mut out = Map::new();
    out.insert("_producer".into(), PRODUCER.into());
    out.insert("_schemaURL".into(), format!("{FACETS}{schema}").into());
    if let Json::Object(fields) = fields {
        out.extend(fields);
    }
    Json::Object(out)
}

fn job_type(kind: &str) -> Json {
    facet(
        "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
        json!({"processingType": "BATCH", "integration": "ETLM", "jobType": kind}),
    )
}

fn processing_engine() -> Json {
    facet(
        "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
        json!({"version": env!("CARGO_PKG_VERSION"), "name": "etlm", "openlineageAdapterVersion": env!("CARGO_PKG_VERSION")}),
    )
}

fn error_message(message: &str) -> Json {
    facet(
        "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
        json!({"message": message, "programmingLanguage": "SQL"}),
    )
}

fn event(
    kind: EventType,
    at: chrono::DateTime<chrono::Utc>,
    run: Json,
    job: Json,
    inputs: Vec<Json>,
    outputs: Vec<Json>,
) -> Json {
    json!({
        "eventType": kind.as_str(),
        "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": run,
        "job": job,
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// The invocation's own event: `etlm build` is the job `<project>.build`.
pub fn invocation(parent: &JobRun, kind: EventType, at: chrono::DateTime<chrono::Utc>, error: Option<&str>) -> Json {
    let mut facets = Map::new();
    facets.insert("processing_engine".into(), processing_engine());
    if let Some(message) = error {
        facets.insert("errorMessage".into(), error_message(message));
    }
    let job = json!({"namespace": parent.namespace, "name": parent.name, "facets": {"jobType": job_type("JOB")}});
    event(kind, at, json!({"runId": parent.run_id, "facets": facets}), job, Vec::new(), Vec::new())
}

impl Context<'_> {
    /// A node's event: `result` is `None` for START. `id` is a node's unique id, or an
    /// anomaly verdict's (which is about the model its result names).
    pub fn node_event(
        &self,
        id: &str,
        run: &JobRun,
        kind: EventType,
        at: chrono::DateTime<chrono::Utc>,
        result: Option<&NodeResult>,
    ) -> Json {
        let node = self.compiled.nodes.get(id).map(|n| n.as_ref());
        let tested = result.and_then(|r| r.test.as_ref()).and_then(|t| t.attached.as_deref());
        let mut run_facets = Map::new();
        run_facets.insert("parent".into(), self.parent_facet());
        run_facets.insert("processing_engine".into(), processing_engine());
        if let Some(message) = result.and_then(|r| r.line.message.as_deref()).filter(|_| kind != EventType::Complete) {
            run_facets.insert("errorMessage".into(), error_message(message));
        }
        let mut job_facets = Map::new();
        job_facets.insert("jobType".into(), job_type(job_kind(node)));
        if let Some(sql) = node.and_then(|n| n.compiled_sql.as_deref()) {
            let dialect = self.compiled.dialect.name();
            job_facets.insert(
                "sql".into(),
                facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", json!({"query": sql, "dialect": dialect})),
            );
        }
        let job = json!({"namespace": run.namespace, "name": run.name, "facets": job_facets});
        let run_json = json!({"runId": run.run_id, "facets": run_facets});
        let is_test = node.is_none_or(|n| matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest));
        let (inputs, outputs) = match (node, is_test) {
            (_, true) => (self.test_inputs(node, tested, result), Vec::new()),
            (Some(node), false) => (self.model_inputs(node), self.outputs(node, result)),
            (None, false) => (Vec::new(), Vec::new()),
        };
        event(kind, at, run_json, job, inputs, outputs)
    }

    fn parent_facet(&self) -> Json {
        let job = json!({"namespace": self.parent.namespace, "name": self.parent.name});
        let run = json!({"runId": self.parent.run_id});
        facet(
            "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
            json!({"job": job, "run": run, "root": {"job": job, "run": run}}),
        )
    }

    /// The datasets a model, seed or snapshot reads: its parents, through ephemeral
    /// models (which are CTEs, not datasets).
    fn model_inputs(&self, node: &Node) -> Vec<Json> {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<&str> = node.depends_on.iter().map(String::as_str).collect();
        let mut inputs = Vec::new();
        while let Some(id) = stack.pop() {
            let Some(parent) = self.compiled.nodes.get(id) else { continue };
            if !seen.insert(id) {
                continue;
            }
            if parent.is_ephemeral() {
                stack.extend(parent.depends_on.iter().map(String::as_str));
            } else if let Some(relation) = &parent.relation {
                inputs.push(self.dataset(parent, relation, Map::new()));
            }
        }
        inputs.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        inputs
    }

    /// A test reads the dataset it tests; the event says what it asserted there.
    fn test_inputs(&self, test: Option<&Node>, tested: Option<&str>, result: Option<&NodeResult>) -> Vec<Json> {
        let subject = tested
            .or_else(|| test?.generic_test.as_ref().map(|g| g.attached_to.as_str()))
            .and_then(|id| self.compiled.nodes.get(id));
        let Some((subject, relation)) = subject.and_then(|s| Some((s, s.relation.as_ref()?))) else {
            return test.map(|t| self.model_inputs(t)).unwrap_or_default();
        };
        let mut input = self.dataset(subject, relation, Map::new());
        if let Some(run) = result.and_then(|r| r.test.as_ref()) {
            let mut assertion = Map::new();
            assertion.insert("assertion".into(), run.test.clone().into());
            assertion.insert("success".into(), (!run.blocks() && run.status != crate::history::Status::Warn).into());
            if let Some(column) = &run.column {
                assertion.insert("column".into(), column.clone().into());
            }
            assertion.insert("severity".into(), run.severity.into());
            assertion.insert("name".into(), result.map_or_else(String::new, |r| r.line.name.clone()).into());
            if let Some(observed) = run.observed {
                assertion.insert("actual".into(), observed.to_string().into());
            }
            assertion.insert("expected".into(), run.threshold.clone().into());
            let assertions = facet(
                "1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet",
                json!({"assertions": [assertion]}),
            );
            input["inputFacets"] = json!({"dataQualityAssertions": assertions});
        }
        vec![input]
    }

    /// What a model, seed or snapshot writes: its relation, with its column lineage and,
    /// once built, its row count.
    fn outputs(&self, node: &Node, result: Option<&NodeResult>) -> Vec<Json> {
        let Some(relation) = node.relation.as_ref().filter(|_| node.resource_type != ResourceType::Source) else {
            return Vec::new();
        };
        let mut facets = Map::new();
        if let Some(lineage) = self.column_lineage(&node.unique_id) {
            facets.insert("columnLineage".into(), lineage);
        }
        let mut output = self.dataset(node, relation, facets);
        if let Some(rows) = result.and_then(|r| r.line.rows) {
            output["outputFacets"] = json!({"outputStatistics": facet(
                "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
                json!({"rowCount": rows}),
            )});
        }
        vec![output]
    }

    /// A dataset with its `schema` (when its columns are known) and `dataSource`.
    fn dataset(&self, node: &Node, relation: &Relation, mut facets: Map<String, Json>) -> Json {
        let namespace = &self.names.namespace;
        if let Some(lineage) = self.compiled.lineage.nodes.get(&node.unique_id).filter(|l| !l.columns.is_empty()) {
            let fields: Vec<Json> = lineage
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut field = json!({"name": c.name, "ordinal_position": i + 1});
                    let doc = node.columns.iter().find(|d| d.name == c.name);
                    if let Some(ty) = c.data_type.as_ref().or(doc.and_then(|d| d.data_type.as_ref())) {
                        field["type"] = ty.clone().into();
                    }
                    if let Some(doc) = doc.filter(|d| !d.description.is_empty()) {
                        field["description"] = doc.description.clone().into();
                    }
                    field
                })
                .collect();
            facets.insert(
                "schema".into(),
                facet("1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet", json!({"fields": fields})),
            );
        }
        facets.insert(
            "dataSource".into(),
            facet(
                "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
                json!({"name": namespace, "uri": namespace}),
            ),
        );
        json!({"namespace": namespace, "name": self.names.name(relation), "facets": facets})
    }

    /// The `columnLineage` facet of a node's output, from etlm's own column lineage:
    /// each column's inputs (through ephemeral models) with how it is derived, and the
    /// columns the whole query filters, joins, groups, sorts or windows by.
    fn column_lineage(&self, id: &str) -> Option<Json> {
        let lineage = self.compiled.lineage.nodes.get(id)?;
        let mut fields = Map::new();
        for column in &lineage.columns {
            let mut inputs = Vec::new();
            for edge in &column.upstream {
                self.direct_inputs(&edge.node, &edge.column, edge.kind, &mut inputs, 0);
            }
            if inputs.is_empty() {
                continue;
            }
            inputs.sort();
            inputs.dedup();
            let input_fields: Vec<Json> = inputs
                .into_iter()
                .map(|(dataset, field, kind)| {
                    self.input_field(
                        &dataset,
                        &field,
                        "DIRECT",
                        match kind {
                            EdgeKind::Copy => "IDENTITY",
                            EdgeKind::Transform => "TRANSFORMATION",
                            EdgeKind::Aggregate => "AGGREGATION",
                        },
                    )
                })
                .collect();
            fields.insert(column.name.clone(), json!({"inputFields": input_fields}));
        }
        let mut indirect = Vec::new();
        for (role, columns) in &lineage.usage {
            let subtype = match role {
                Role::Filter => "FILTER",
                Role::Group => "GROUP_BY",
                Role::Join => "JOIN",
                Role::Order => "SORT",
                Role::Window => "WINDOW",
            };
            let mut inputs = Vec::new();
            for c in columns {
                self.direct_inputs(&c.node, &c.column, EdgeKind::Copy, &mut inputs, 0);
            }
            inputs.sort();
            inputs.dedup();
            indirect.extend(inputs.into_iter().map(|(d, f, _)| self.input_field(&d, &f, "INDIRECT", subtype)));
        }
        if fields.is_empty() && indirect.is_empty() {
            return None;
        }
        Some(facet(
            "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
            json!({"fields": fields, "dataset": indirect}),
        ))
    }

    /// The dataset columns that `node.column` stands for: itself, or through an
    /// ephemeral model the columns it derives from (the strongest kind along the way).
    fn direct_inputs(
        &self,
        node: &str,
        column: &str,
        kind: EdgeKind,
        out: &mut Vec<(String, String, EdgeKind)>,
        depth: usize,
    ) {
        let Some(n) = self.compiled.nodes.get(node) else { return };
        if !n.is_ephemeral() {
            if let Some(relation) = &n.relation {
                out.push((self.names.name(relation), column.to_string(), kind));
            }
            return;
        }
        // Ephemeral chains are short; a bound keeps a malformed graph from looping.
        if depth > 64 {
            return;
        }
        let Some(lineage) = self.compiled.lineage.nodes.get(node) else { return };
        for edge in lineage.columns.iter().filter(|c| c.name == column).flat_map(|c| &c.upstream) {
            self.direct_inputs(&edge.node, &edge.column, kind.max(edge.kind), out, depth + 1);
        }
    }

    fn input_field(&self, dataset: &str, field: &str, kind: &str, subtype: &str) -> Json {
        json!({
            "namespace": self.names.namespace,
            "name": dataset,
            "field": field,
            "transformations": [{"type": kind, "subtype": subtype}],
        })
    }
}

/// The `jobType` of a node's job.
fn job_kind(node: Option<&Node>) -> &'static str {
    match node.map(|n| n.resource_type) {
        Some(ResourceType::Seed) => "SEED",
        Some(ResourceType::Snapshot) => "SNAPSHOT",
        Some(ResourceType::Model) => "MODEL",
        _ => "TEST",
    }
}
