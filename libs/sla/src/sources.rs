//! The texts the calendars and policies in force were built from, so that the rules
//! themselves can be recorded (as an event in the log) and rebuilt exactly later: an
//! auditor's view of a past moment uses the rules in force then, not today's.

use std::path::Path;

use crate::error::Result;
use crate::{Calendars, Engine, Policies};

/// One rules file: its name and its TOML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    pub name: String,
    pub text: String,
}

/// Every calendar and policy file in force, in the order they are applied: the built-in
/// ones, then the operator's (by file name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSources {
    pub calendars: Vec<RuleFile>,
    pub policies: Vec<RuleFile>,
}

fn files(list: &[(&str, &str)]) -> Vec<RuleFile> {
    list.iter()
        .map(|(name, text)| RuleFile {
            name: format!("built-in/{name}"),
            text: (*text).to_owned(),
        })
        .collect()
}

fn operator(dir: &Path, what: &str) -> Result<Vec<RuleFile>> {
    Ok(crate::files::toml_files(dir, what)?
        .into_iter()
        .map(|(path, text)| RuleFile {
            name: format!(
                "operator/{}",
                Path::new(&path)
                    .file_name()
                    .map_or(path.clone(), |n| n.to_string_lossy().into_owned())
            ),
            text,
        })
        .collect())
}

impl RuleSources {
    /// The rules shipped with the service.
    pub fn built_in() -> Self {
        Self {
            calendars: files(crate::calendar::BUILT_IN),
            policies: files(crate::policy::BUILT_IN),
        }
    }

    /// The built-in rules with the operator's calendar and policy directories added.
    pub fn with_operator_dirs(calendars: Option<&Path>, policies: Option<&Path>) -> Result<Self> {
        let mut sources = Self::built_in();
        if let Some(dir) = calendars {
            sources.calendars.extend(operator(dir, "calendar")?);
        }
        if let Some(dir) = policies {
            sources.policies.extend(operator(dir, "policy")?);
        }
        Ok(sources)
    }

    /// The engine these rules make (checking every file).
    pub fn engine(&self) -> Result<Engine> {
        let mut calendars = Calendars::default();
        for file in &self.calendars {
            calendars.merge_toml(&file.name, &file.text)?;
        }
        let mut policies = Policies::default();
        for file in &self.policies {
            policies.add_toml(&file.name, &file.text)?;
        }
        Ok(Engine {
            calendars,
            policies,
        })
    }
}
