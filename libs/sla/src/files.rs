//! Reading an operator's directory of TOML files.

use std::path::Path;

use crate::error::{Result, SlaError};

/// Every `*.toml` file in `dir`, in name order, as (path, text).
pub(crate) fn toml_files(dir: &Path, what: &str) -> Result<Vec<(String, String)>> {
    let io = |e: std::io::Error| SlaError::Invalid {
        what: format!("{what} directory {}", dir.display()),
        reason: e.to_string(),
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}
