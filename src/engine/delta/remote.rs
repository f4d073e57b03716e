//! An S3 location (`location: s3://bucket/prefix`): the bucket as an object store, and
//! the objects of each table under `<prefix>/<schema>/<name>/`, in the layout of a local
//! location. Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...), never from the profile.

use std::path::Path;
use std::sync::Arc;

use datafusion::object_store::aws::AmazonS3Builder;
use datafusion::object_store::path::Path as Key;
use datafusion::object_store::prefix::PrefixStore;
use datafusion::object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use deltalake::logstore::{LogStoreRef, StorageConfig, default_logstore};
use futures_util::TryStreamExt as _;
use url::Url;

use crate::project::Target;

/// The target's S3 location.
#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix/`.
    url: Url,
    /// `prefix` inside the bucket.
    prefix: Key,
}

impl Remote {
    /// The location of an `s3://` target, with its `endpoint`, `region` and `allow_http`
    /// settings.
    pub fn of(target: &Target, location: &str) -> Result<Remote, String> {
        let mut url = Url::parse(location).map_err(|e| format!("`{location}` is not a URL: {e}"))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let setting = |key: &str| target.settings.get(key).and_then(|v| v.as_str().map(str::to_string));
        let mut builder = AmazonS3Builder::from_env().with_url(location);
        if let Some(endpoint) = setting("endpoint") {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = setting("region") {
            builder = builder.with_region(region);
        }
        let allow_http = target.settings.get("allow_http").is_some_and(|v| v.as_bool() == Some(true) || v == "true");
        let store = builder.with_allow_http(allow_http).build().map_err(|e| e.to_string())?;
        let prefix = Key::from(url.path().trim_matches('/'));
        Ok(Remote { store: Arc::new(store), url, prefix })
    }

    /// `prefix/<relative>` as a key.
    fn key(&self, relative: &str) -> Key {
        let mut key = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            key = key.join(part);
        }
        key
    }

    /// The Delta log of the table at `relative` (`schema/name`).
    pub fn log_store(&self, relative: &str) -> Result<LogStoreRef, String> {
        let url = self.url.join(&format!("{relative}/")).map_err(|e| e.to_string())?;
        let prefixed: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(self.store.clone(), self.key(relative)));
        Ok(default_logstore(prefixed, self.store.clone(), &url, &StorageConfig::default()))
    }

    /// The object at `relative`, if there is one.
    pub async fn get(&self, relative: &str) -> Result<Option<bytes::Bytes>, String> {
        match self.store.get(&self.key(relative)).await {
            Ok(found) => found.bytes().await.map(Some).map_err(|e| e.to_string()),
            Err(datafusion::object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes `bytes` as the object at `relative`, replacing it.
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.store.put(&self.key(relative), PutPayload::from(bytes)).await.map(drop).map_err(|e| e.to_string())
    }

    /// Uploads every file under `dir` as the objects under `relative`, at the same paths.
    pub async fn upload(&self, dir: &Path, relative: &str) -> Result<(), String> {
        for entry in walkdir::WalkDir::new(dir).min_depth(1) {
            let entry = entry.map_err(|e| e.to_string())?;
            if !entry.file_type().is_file() {
                continue;
            }
            let inside = entry.path().strip_prefix(dir).expect("walked inside the folder");
            let inside = inside.to_str().ok_or("a file name is not UTF-8")?;
            let bytes = tokio::fs::read(entry.path()).await.map_err(|e| format!("{}: {e}", entry.path().display()))?;
            self.put(&format!("{relative}/{inside}"), bytes).await?;
        }
        Ok(())
    }

    /// Downloads every object under `relative` into `dir`, at the same paths.
    pub async fn download(&self, relative: &str, dir: &Path) -> Result<(), String> {
        let prefix = self.key(relative);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| e.to_string())?;
        for object in objects {
            let inside: Vec<String> =
                object.location.prefix_match(&prefix).into_iter().flatten().map(|p| p.as_ref().to_string()).collect();
            let file = inside.iter().fold(dir.to_path_buf(), |path, part| path.join(part));
            if let Some(parent) = file.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let bytes = self.store.get(&object.location).await.map_err(|e| e.to_string())?;
            let bytes = bytes.bytes().await.map_err(|e| e.to_string())?;
            tokio::fs::write(&file, bytes).await.map_err(|e| format!("{}: {e}", file.display()))?;
        }
        Ok(())
    }

    /// Removes every object under `relative`.
    pub async fn remove(&self, relative: &str) -> Result<(), String> {
        let objects: Vec<_> =
            self.store.list(Some(&self.key(relative))).try_collect().await.map_err(|e| e.to_string())?;
        for object in objects {
            self.store.delete(&object.location).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The `schema/name` of every folder two levels below the prefix.
    pub async fn tables(&self) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let schemas = self.store.list_with_delimiter(Some(&self.prefix)).await.map_err(|e| e.to_string())?;
        for schema in schemas.common_prefixes {
            let Some(schema_name) = schema.filename().map(str::to_string) else { continue };
            if schema_name.starts_with(['.', '_']) {
                continue;
            }
            let tables = self.store.list_with_delimiter(Some(&schema)).await.map_err(|e| e.to_string())?;
            found.extend(
                tables.common_prefixes.iter().filter_map(|t| t.filename()).map(|t| format!("{schema_name}/{t}")),
            );
        }
        Ok(found)
    }
}
