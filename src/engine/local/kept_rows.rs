//! A view's kept rows: its output written once to an uncompressed Arrow IPC file, and
//! read back by mapping the file into memory. A scan's arrays point into the mapping,
//! so reading decodes and copies nothing, and the pages leave the process when the
//! last array over them is dropped, instead of staying with the allocator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::FileDecoder;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::ipc::{Block, convert::fb_to_schema, root_as_footer};
use datafusion::catalog::Session;
use datafusion::common::DataFusionError;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// The extension of the files [`Writer`] writes.
pub const ROWS_FILE_EXTENSION: &str = ".arrow";

/// Writes a view's rows to a file, batch by batch; [`KeptRowsTable`] reads the file once
/// [`Writer::finish`] has returned.
pub struct Writer(FileWriter<std::io::BufWriter<std::fs::File>>);

impl Writer {
    /// Creates `file` for rows of `columns`.
    pub fn create(file: &Path, columns: &SchemaRef) -> Result<Writer, DataFusionError> {
        let out = std::io::BufWriter::new(std::fs::File::create(file)?);
        Ok(Writer(FileWriter::try_new(out, columns)?))
    }

    /// Appends one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataFusionError> {
        Ok(self.0.write(batch)?)
    }

    /// Writes the footer and flushes.
    pub fn finish(mut self) -> Result<(), DataFusionError> {
        self.0.finish()?;
        Ok(())
    }
}

/// The rows in a file [`Writer`] wrote, as a table.
#[derive(Debug)]
pub struct KeptRowsTable {
    file: PathBuf,
    columns: SchemaRef,
}

impl KeptRowsTable {
    /// The table over `file`, whose rows have `columns`.
    pub fn new(file: PathBuf, columns: SchemaRef) -> KeptRowsTable {
        KeptRowsTable { file, columns }
    }
}

#[async_trait::async_trait]
impl TableProvider for KeptRowsTable {
    fn schema(&self) -> SchemaRef {
        self.columns.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let batches = read(&self.file)?;
        if let Some(found) = batches.first().map(RecordBatch::schema)
            && found.fields() != self.columns.fields()
        {
            return Err(DataFusionError::Internal(format!(
                "kept rows `{}` hold other columns than their view's",
                self.file.display()
            )));
        }
        let partitions = split(&batches, state.config().target_partitions());
        let source = MemorySourceConfig::try_new(&partitions, self.columns.clone(), projection.cloned())?;
        Ok(DataSourceExec::from_data_source(source.with_limit(limit)))
    }
}

/// The batches of the IPC file at `file`, their buffers in one read-only mapping of it.
fn read(file: &Path) -> Result<Vec<RecordBatch>, DataFusionError> {
    let opened = std::fs::File::open(file)?;
    // SAFETY: the file is the run's own, in a staging directory no other writer touches;
    // it is complete before it is registered and never written again (only removed,
    // which leaves a mapping intact).
    let mapping = unsafe { memmap2::Mmap::map(&opened)? };
    let bytes = Buffer::from(bytes::Bytes::from_owner(mapping));
    Ok(decode(&bytes)?)
}

/// The batches of the IPC file in `bytes`, sharing its memory.
fn decode(bytes: &Buffer) -> Result<Vec<RecordBatch>, ArrowError> {
    let invalid = |what: &str| ArrowError::IpcError(format!("kept rows file: {what}"));
    // An IPC file ends with its footer, the footer's length (4 bytes) and "ARROW1".
    let trailer = bytes.len().checked_sub(10).ok_or_else(|| invalid("too short"))?;
    let length: [u8; 4] = bytes[trailer..trailer + 4].try_into().expect("four bytes");
    let footer_start = usize::try_from(i32::from_le_bytes(length))
        .ok()
        .and_then(|length| trailer.checked_sub(length))
        .ok_or_else(|| invalid("bad footer length"))?;
    let footer = root_as_footer(&bytes[footer_start..trailer]).map_err(|e| invalid(&e.to_string()))?;
    let schema = fb_to_schema(footer.schema().ok_or_else(|| invalid("no schema"))?);
    // SAFETY: the file is the run's own, written by arrow's IPC writer from arrays that
    // were valid (the trust that mapping it rests on already): validating them again,
    // UTF-8 above all, took about 7% of a build's CPU time (perf, N=1000 benchmark).
    let mut decoder = unsafe { FileDecoder::new(Arc::new(schema), footer.version()).with_skip_validation(true) };
    let block_bytes = |block: &Block| {
        let start = usize::try_from(block.offset()).map_err(|_| invalid("bad block offset"))?;
        let length = usize::try_from(block.metaDataLength()).map_err(|_| invalid("bad block length"))?
            + usize::try_from(block.bodyLength()).map_err(|_| invalid("bad block length"))?;
        match start.checked_add(length) {
            Some(end) if end <= bytes.len() => Ok(bytes.slice_with_length(start, length)),
            _ => Err(invalid("block past the end")),
        }
    };
    for block in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(block, &block_bytes(block)?)?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        batches.extend(decoder.read_record_batch(block, &block_bytes(block)?)?);
    }
    Ok(batches)
}

/// `batches` in at most `partitions` runs of consecutive batches, in order.
fn split(batches: &[RecordBatch], partitions: usize) -> Vec<Vec<RecordBatch>> {
    if batches.is_empty() {
        return vec![vec![]];
    }
    batches.chunks(batches.len().div_ceil(partitions.max(1))).map(<[RecordBatch]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, Int32Array, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use datafusion::prelude::SessionContext;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
            Field::new("kind", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let ids: Vec<i64> = (from..from + rows).collect();
        let names: StringViewArray =
            ids.iter().map(|i| (i % 7 != 0).then(|| format!("customer number {i} with a long name"))).collect();
        // One dictionary for every batch: an IPC file cannot replace one.
        let keys = Int32Array::from_iter_values(ids.iter().map(|i| (*i % 3) as i32));
        let kinds = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(vec!["a", "b", "c"])))
            .expect("dictionary");
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids)), Arc::new(names), Arc::new(kinds)])
            .expect("batch")
    }

    fn write(file: &Path, batches: &[RecordBatch]) {
        let mut writer = Writer::create(file, &batches[0].schema()).expect("create");
        for b in batches {
            writer.write(b).expect("write");
        }
        writer.finish().expect("finish");
    }

    #[tokio::test]
    async fn kept_rows_read_back_as_written_and_answer_queries() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("rows.arrow");
        let written: Vec<RecordBatch> = (0..5).map(|i| batch(i * 1000, 1000)).collect();
        write(&file, &written);
        assert_eq!(read(&file).expect("read"), written);

        let ctx = SessionContext::new();
        ctx.register_table("kept", Arc::new(KeptRowsTable::new(file.clone(), written[0].schema()))).expect("register");
        let sql = "select arrow_cast(kind, 'Utf8') as kind, count(*) as n, count(name) as named, sum(id) as ids \
                   from kept where id >= 10 group by kind order by kind";
        let plan = ctx.sql(sql).await.expect("sql").create_physical_plan().await.expect("plan");
        // The run removes kept rows when it ends; a plan already made keeps its mapping.
        std::fs::remove_file(&file).expect("remove");
        let rows = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.expect("run");
        let got = datafusion::arrow::util::pretty::pretty_format_batches(&rows).expect("format").to_string();
        let ids = |k: i64| (10..5000).filter(move |i| i % 3 == k);
        let mut expected = vec![
            "+------+------+-------+---------+".to_string(),
            "| kind | n    | named | ids     |".to_string(),
            "+------+------+-------+---------+".to_string(),
        ];
        for (k, kind) in ["a", "b", "c"].iter().enumerate() {
            let k = k as i64;
            let (n, named, sum) = (ids(k).count(), ids(k).filter(|i| i % 7 != 0).count(), ids(k).sum::<i64>());
            expected.push(format!("| {kind:<4} | {n:<4} | {named:<5} | {sum:<7} |"));
        }
        expected.push(expected[0].clone());
        assert_eq!(got, expected.join("\n"));
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("rows.arrow");
        write(&file, &[batch(0, 10)]);
        let whole = std::fs::read(&file).expect("read");
        for cut in [0, 5, 12, whole.len() / 2, whole.len() - 1] {
            std::fs::write(&file, &whole[..cut]).expect("write");
            assert!(read(&file).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn batches_split_in_order_into_at_most_the_partitions() {
        let batches: Vec<RecordBatch> = (0..5).map(|i| batch(i, 1)).collect();
        let parts = split(&batches, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.concat(), batches);
        assert_eq!(split(&batches, 8).len(), 5);
        assert_eq!(split(&[], 2), vec![Vec::<RecordBatch>::new()]);
    }
}
