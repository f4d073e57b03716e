//! The dbt package hub: `<hub>/api/v1/<owner>/<name>.json` lists a package's versions,
//! each with its tarball and its own dependencies; tarballs are `.tar.gz` archives with
//! the package in one top folder.

use std::path::Path;

use serde_json::Value as Json;

use super::spec::Spec;
use super::version::{Version, VersionReq};
use crate::http;

/// The hub etlm asks when the environment names none (`ETLM_PACKAGE_HUB_URL` or
/// `DBT_PACKAGE_HUB_URL`).
pub const DEFAULT_HUB: &str = "https://hub.getdbt.com";

/// One published version of a package.
#[derive(Clone, Debug)]
pub struct Release {
    pub version: Version,
    pub tarball: String,
    /// What this version itself depends on.
    pub packages: Vec<Spec>,
}

/// Every version of `package` (`owner/name`) the hub at `base` lists.
pub fn releases(base: &str, package: &str) -> Result<Vec<Release>, String> {
    let url = format!("{}/api/v1/{package}.json", base.trim_end_matches('/'));
    let body = http::get(&url)?;
    let index: Json = serde_json::from_slice(&body).map_err(|e| format!("`{url}` is not the hub's JSON: {e}"))?;
    let Some(versions) = index.get("versions").and_then(Json::as_object) else {
        return Err(format!("`{url}` lists no `versions`"));
    };
    let mut out = Vec::new();
    for (text, info) in versions {
        let Some(version) = Version::parse(text) else { continue };
        let Some(tarball) = info.pointer("/downloads/tarball").and_then(Json::as_str) else { continue };
        let mut packages = Vec::new();
        for dep in info.get("packages").and_then(Json::as_array).into_iter().flatten() {
            let (Some(name), Some(spec)) = (dep.get("package").and_then(Json::as_str), dep.get("version")) else {
                continue;
            };
            let parts: Vec<String> = match spec {
                Json::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                other => vec![other.as_str().map_or_else(|| other.to_string(), str::to_string)],
            };
            let version = VersionReq::parse(&parts).map_err(|m| format!("`{url}`: {name}: {m}"))?;
            packages.push(Spec::Hub { package: name.to_string(), version });
        }
        out.push(Release { version, tarball: tarball.to_string(), packages });
    }
    Ok(out)
}

/// Downloads the `.tar.gz` at `url` and unpacks the package into `dir` (the archive's one
/// top folder becomes `dir`).
pub fn fetch_tarball(url: &str, dir: &Path) -> Result<(), String> {
    let bytes = http::get(url)?;
    let unpacked = dir.with_extension("unpack");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    archive.unpack(&unpacked).map_err(|e| format!("`{url}` is not a .tar.gz archive etlm can unpack: {e}"))?;
    let entries: Vec<_> = std::fs::read_dir(&unpacked)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with("pax_global_header"))
        .collect();
    let top = match entries.as_slice() {
        [one] if one.path().is_dir() => one.path(),
        _ => unpacked.clone(),
    };
    std::fs::rename(&top, dir).map_err(|e| format!("could not place `{url}`: {e}"))?;
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked).map_err(|e| e.to_string())?;
    }
    Ok(())
}
